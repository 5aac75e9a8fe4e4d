"""The helpers folded out of the apps: sweep subcommand, sweep jobs, checkpoints, test checks."""

import argparse
import dataclasses
import json
from pathlib import Path

import pytest
import torch
from structgrad_app_common import (
    ArgumentParser,
    CLIError,
    Column,
    RunControl,
    SearchGroup,
    SearchOptions,
    Sweep,
    add_resume_flags,
    add_sweep_flags,
    check_names,
    read_jsonl,
    run_command,
    run_search,
    save_checkpoint,
    sweep_command,
)
from structgrad_app_common.app_checks import AppChecks
from structgrad_app_common.sweep import search_range
from structgrad_app_common.sweep_cli import report_sweep, sweep_base
from structgrad_app_common.testing import (
    PNG_SIGNATURE,
    append_record,
    assert_files,
    assert_png,
    assert_records_match,
    assert_subprocess_error,
    assert_sweep_errors,
    assert_sweep_outputs,
    last_checkpoint,
)
from structgrad_app_common.testing import ToyRun as Run
from structgrad_app_common.training import (
    open_log,
    open_run,
    save_if_best,
    save_state,
    write_config,
)


def _train(cfg):
    if cfg.lr < 0:
        raise CLIError("negative lr")
    if cfg.lr > 1e3:
        raise ValueError("scores contains NaN\nmore detail")
    return {"loss": cfg.lr * (cfg.seed + 1), "extra": 1}


SWEEP = Sweep(Run, _train, ("loss",), (Column("loss", "loss"),), score="loss", keep=("extra",))


def test_check_names_first_unknown_and_phrase():
    check_names("method", ["a", "b"], ["a", "b", "c"])
    with pytest.raises(CLIError, match=r"^unknown method 'x'; choose among: a, b$"):
        check_names("method", ["a", "x", "y"], ["a", "b"])
    with pytest.raises(CLIError, match=r"^unknown task 'z'; choose one of: t$"):
        check_names("task", ["z"], ["t"], phrase="choose one of")


def test_add_sweep_flags_defaults_help_and_options():
    parser = ArgumentParser(prog="x")
    add_sweep_flags(parser, methods=["a", "b"], trials=3, lr_range=(1e-3, 1e-2), tau_range=None)
    args = parser.parse_args([])
    assert args.methods == ["a", "b"] and args.trials == 3 and args.tau_range is None
    assert SearchOptions.from_args(args).lr_range == (1e-3, 1e-2)
    assert parser.parse_args(["--methods", "c"]).methods == ["c"]
    assert "methods to compare (a b)" in " ".join(parser.format_help().split())
    parser = ArgumentParser(prog="y")
    add_sweep_flags(
        parser, methods=["s"], trials=1, lr_range=(1, 2), tau_range=(1, 1), methods_help="methods"
    )
    assert "methods (s)" in " ".join(parser.format_help().split())


def test_sweep_base_and_report(tmp_path, capsys):
    base = sweep_base(Run(out="o"))
    assert not base.progress and base.overwrite and base.out == "o"
    records = [{"method": "a", "trial": 0, "seed": 1, "error": "boom"}, {"method": "b"}]
    assert report_sweep(records, "| t |", tmp_path) == 0
    out = capsys.readouterr().out
    assert out == f"failed: a trial 0 seed 1: boom\n| t |\n\ntable: {tmp_path / 'table.md'}\n"
    report_sweep(records, "T", "s", lambda r: f"<{r['method']}>")
    assert capsys.readouterr().out.startswith("failed: <a>: boom\nT\n")


def test_sweep_record_order_and_error():
    res = SWEEP.record(Run(out="r", seed=1, lr=0.2), 3)
    assert list(res) == ["method", "trial", "seed", "lr", "tau", "loss", "extra", "out"]
    assert res["trial"] == 3 and res["loss"] == pytest.approx(0.4) and res["out"] == "r"
    bad = SWEEP.record(Run(out="r", lr=-1.0), 0)
    assert bad["error"] == "negative lr" and "loss" not in bad
    # any other error of one run is its record too: it ended the sweep, table lost
    worse = SWEEP.record(Run(out="r", lr=1e4), 0)
    assert worse["error"] == "ValueError: scores contains NaN" and "loss" not in worse


def test_sweep_summarize_columns_failures_and_default_tau():
    sweep = Sweep(
        Run, _train, ("loss", "t", "o"), (Column("loss ×10", "loss", scale=10), Column("s", "t",
        decimals=0), Column("opt", "o", optional=True)), score="loss", by=("task", "method"),
        default_tau={"m": 0.5}, failure=None,
    )  # fmt: skip
    run = {"task": "x", "method": "m", "trial": 0, "lr": 0.1, "tau": None, "t": 2.0}
    recs = [{**run, "seed": 0, "loss": 1.0}, {**run, "seed": 1, "loss": 3.0}]
    recs.append({**run, "method": "n", "seed": 0, "tau": 1, "error": "e"})
    rows, table = sweep.summarize(recs)
    assert rows[1] == {"task": "x", "method": "n", "n": 0}
    assert table.splitlines() == [
        "| task | method | lr | τ | seeds | loss ×10 | s |",
        "|---|---|---|---|---|---|---|",
        "| x | m | 0.1 | 0.5 | 2 | 20 ± 10 | 2 |",
        "| x | n |  |  | 0 | failed |  |",
    ]
    assert "| opt |" in sweep.summarize([{**recs[0], "o": 1.0}])[1]


def test_save_state_and_save_if_best(tmp_path):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(1)
    save_state(tmp_path / "last.pt", model, opt, gen, step=3, config={"a": 1})
    state = last_checkpoint(tmp_path)
    assert state["step"] == 3 and state["config"] == {"a": 1}
    assert set(state) >= {"model", "optimizer", "generator", "torch_rng"}
    best = tmp_path / "best.pt"
    assert save_if_best(best, model, 2.0, 1.0, step=1) == 1.0 and not best.exists()
    assert save_if_best(best, model, 0.5, 1.0, step=2) == 0.5
    assert torch.load(best, weights_only=True)["step"] == 2
    assert save_if_best(best, model, 3.0, 1.0, higher=True, elbo=3.0) == 3.0
    assert torch.load(best, weights_only=True)["elbo"] == 3.0
    assert save_if_best(best, model, float("nan"), 1.0) == 1.0


def test_app_checks_fail(capsys):
    def main(argv):
        parser = ArgumentParser(prog="app")
        parser.add_argument("--n", type=int)
        parser.parse_args(argv)

    fail = AppChecks(main, "app").fail
    fail(capsys, ["--n", "x"], "invalid int value")
    with pytest.raises(AssertionError):
        fail(capsys, ["--n", "x"], "some other text")
    with pytest.raises(pytest.fail.Exception):  # no error at all
        fail(capsys, ["--n", "1"], "anything")


def test_smoke_train_runs_train_and_reads_final(tmp_path):
    seen = []

    def main(argv):
        seen.append(list(argv))
        out = Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "final.json").write_text(json.dumps({"lr": argv[-1]}))
        return 0 if argv[-1] != "bad" else 2

    checks = AppChecks(main, "app")
    assert checks.smoke_train(tmp_path / "run", "--lr", "0.5") == {"lr": "0.5"}
    out = str(tmp_path / "run")
    assert seen[0] == ["train", "--smoke", "--out", out, "--no-progress", "--lr", "0.5"]
    with pytest.raises(AssertionError, match="exited with 2"):
        checks.smoke_train(tmp_path / "run", "bad")


def test_file_checks(tmp_path):
    (tmp_path / "a.png").write_bytes(PNG_SIGNATURE + b"data")
    (tmp_path / "b.txt").write_text("x")
    assert_png(tmp_path / "a.png")
    assert_files(tmp_path, ["a.png", "b.txt"])
    (tmp_path / "c.png").write_bytes(b"\x89PNG no")
    (tmp_path / "e.txt").write_text("")
    for names in (["c.png"], ["e.txt"]):
        with pytest.raises(AssertionError):
            assert_files(tmp_path, names)
    with pytest.raises(FileNotFoundError):
        assert_files(tmp_path, ["missing"])


def test_append_record_and_records_match(tmp_path):
    path = tmp_path / "m.jsonl"
    append_record(path, {"step": 1, "loss": 1.0})
    append_record(path, {"step": 2, "loss": 2.0})
    recs = read_jsonl(path)
    assert recs == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 2.0}]
    near = [{"step": 1, "loss": 1.0 + 1e-9}, {"step": 2, "loss": 2.0}]
    assert_records_match(recs, near, ["step", "loss"], rel=1e-6)
    with pytest.raises(AssertionError):
        assert_records_match(recs, [{"step": 1, "loss": 1.1}, recs[1]], ["loss"], rel=1e-6)
    with pytest.raises(AssertionError):
        assert_records_match(recs, recs[:1], ["loss"], rel=1e-6)


def test_assert_subprocess_error(tmp_path):
    (tmp_path / "one_line.py").write_text(
        "import sys\nsys.stderr.write('one_line: error: x\\n')\nsys.exit(2)\n"
    )
    (tmp_path / "two_lines.py").write_text(
        "import sys\nsys.stderr.write('usage\\nerror\\n')\nsys.exit(2)\n"
    )
    assert_subprocess_error("one_line", [], cwd=tmp_path)
    with pytest.raises(AssertionError):
        assert_subprocess_error("two_lines", [], cwd=tmp_path)


def test_last_checkpoint_refuses_pickled_objects(tmp_path):
    torch.save({"step": 1, "obj": argparse.Namespace(a=1)}, tmp_path / "last.pt")
    with pytest.raises(Exception, match=r"weights_only|Unsupported"):
        last_checkpoint(tmp_path)


def _sweep_main(argv):
    def cmd(args):
        check_names("method", args.methods, ["a", "b"])
        search_range(args.lr_range)
        if args.tau_range is not None:
            search_range(args.tau_range)
        return 0

    def build():
        parser = ArgumentParser(prog="app")
        sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
        p = sub.add_parser("sweep", help="sweep")
        add_sweep_flags(p, methods=["a"], trials=2, lr_range=(0.1, 1.0), tau_range=None)
        p.set_defaults(func=cmd)
        return parser

    return run_command(build, argv, prog="app", single_thread_env=False)


def test_assert_sweep_errors(capsys):
    assert _sweep_main(["sweep", "--methods", "a", "b"]) == 0
    assert_sweep_errors(capsys, _sweep_main, ["sweep"], prog="app", method="a")
    with pytest.raises(AssertionError):  # wrong program name
        assert_sweep_errors(capsys, _sweep_main, ["sweep"], prog="other")


@dataclasses.dataclass(frozen=True)
class Steps:
    out: str
    lr: float = 0.1
    steps: int = 4


def _train_main(argv):
    """A toy training command: one record and one checkpoint per step."""

    def cmd(args):
        cfg = Steps(out=args.out, lr=args.lr)
        state = open_run(cfg.out, cfg, ["lr"], resume=args.resume, overwrite=False)
        step = 0 if state is None else int(state["step"])
        with open_log(cfg.out, state) as log:
            while step < cfg.steps:
                if args.stop_after is not None and step >= args.stop_after:
                    print(json.dumps({"stopped_at": step}))
                    return 0
                step += 1
                log.log({"step": step, "loss": cfg.lr * step})
                save_checkpoint(Path(cfg.out) / "last.pt", {"step": step, "config": {"lr": cfg.lr}})
        print(json.dumps({"steps": step}))
        return 0

    def build():
        parser = ArgumentParser(prog="app")
        parser.add_argument("--out")
        parser.add_argument("--lr", type=float, default=0.1)
        add_resume_flags(parser, unit="step", progress=False)
        parser.set_defaults(func=cmd)
        return parser

    return run_command(build, argv, prog="app", single_thread_env=False)


def test_run_interrupted_checks_and_logs(tmp_path, capsys):
    app = AppChecks(_train_main, "app")
    recs, ref = app.interrupted(
        capsys, [], tmp_path / "run", tmp_path / "ref", unit="step",
        stop_after=2, killed={"step": 3, "loss": 9.0}, changed=["--lr", "0.5"],
    )  # fmt: skip
    assert [r["step"] for r in recs] == [1, 2, 3, 4] and recs[2]["loss"] == pytest.approx(0.3)
    assert_records_match(recs, ref, ["step", "loss"], rel=1e-12)
    with pytest.raises(AssertionError):  # the checkpoint counts steps, not epochs
        app.interrupted(
            capsys, [], tmp_path / "r2", tmp_path / "f2", unit="epoch",
            stop_after=2, killed={"step": 3},
        )  # fmt: skip


@dataclasses.dataclass
class Controlled(RunControl):
    out: str
    lr: float = 0.1


def test_run_control_base_fields_checks_and_config_order(tmp_path):
    cfg = Controlled("o", stop_after=2)
    assert (cfg.out, cfg.lr, cfg.resume, cfg.threads, cfg.progress) == ("o", 0.1, False, 1, True)
    assert not cfg.stops_at(1) and cfg.stops_at(2) and not Controlled("o").stops_at(10**6)
    cfg.check_settings()
    with pytest.raises(CLIError, match="exclude each other"):
        Controlled("o", resume=True, overwrite=True).check_settings()
    with pytest.raises(CLIError, match="--stop-after must be >= 1"):
        Controlled("o", stop_after=0).check_settings()
    conf = write_config(tmp_path, Controlled(str(tmp_path), lr=0.5))
    keys = ["out", "lr", "resume", "overwrite", "stop_after", "threads", "device", "progress",
            "tensorboard"]  # fmt: skip
    # The app's tag (the top-level package of the config's class), then the
    # app's fields, then the base's.
    assert list(conf) == ["app", *keys] and conf["app"] == __name__.split(".")[0]
    assert json.loads((tmp_path / "config.json").read_text()) == conf
    job = {**dataclasses.asdict(cfg), "progress": False}
    assert Controlled(**job).progress is False  # sweep jobs round-trip


def test_search_options_from_args_and_seed_check():
    parser = ArgumentParser(prog="x")
    add_sweep_flags(parser, methods=["a"], trials=3, lr_range=(0.1, 1.0), tau_range=(1.0, 2.0))
    search = SearchOptions.from_args(parser.parse_args(["--seeds", "4", "--n-jobs", "1"]))
    assert search == SearchOptions(3, [4], (0.1, 1.0), (1.0, 2.0), n_jobs=1)
    with pytest.raises(CLIError, match=r"^--seeds needs at least one seed$"):
        SearchOptions(trials=1, seeds=[], lr_range=(1.0, 1.0), tau_range=None)


def test_run_search_groups_tau_and_outputs(tmp_path):
    base = Run(out=str(tmp_path), tau=7.0, progress=False)
    search = SearchOptions(2, [0, 1], (0.01, 0.1), (0.5, 2.0), n_jobs=1, backend="threading")
    groups = [SearchGroup(("a",), {"method": "a"}), SearchGroup(("t", "b"), {"method": "b"}, False)]
    records, table = run_search(SWEEP, base, search, groups)
    assert len(records) == 2 * 2 * 2 and table.startswith("| method | lr | τ | seeds | loss |")
    assert [(r["method"], r["trial"], r["seed"]) for r in records[:4]] == [
        ("a", 0, 0), ("a", 0, 1), ("a", 1, 0), ("a", 1, 1),
    ]  # fmt: skip
    a, b = ([r for r in records if r["method"] == m] for m in "ab")
    # Every group's draws start from the search seed; τ is drawn only where searched.
    assert a[0]["lr"] == b[0]["lr"] and a[0]["lr"] != a[2]["lr"] and b[0]["lr"] != b[2]["lr"]
    assert all(0.01 <= r["lr"] <= 0.1 and 0.5 <= r["tau"] <= 2.0 for r in a)
    assert {r["tau"] for r in b} == {7.0}
    assert b[3]["out"] == str(tmp_path / "t" / "b" / "trial1" / "seed1")
    assert read_jsonl(tmp_path / "sweep.jsonl") == records
    assert [r["n"] for r in json.loads((tmp_path / "summary.json").read_text())] == [2, 2]
    assert_sweep_outputs(tmp_path, rows=2, first="| a |", runs=8)
    with pytest.raises(AssertionError):
        assert_sweep_outputs(tmp_path, rows=1, first="| a", runs=8)
    no_tau = dataclasses.replace(search, tau_range=None, lr_range=(0.1, 0.1), overwrite=True)
    records, _ = run_search(SWEEP, base, no_tau, groups[:1])
    assert {(r["lr"], r["tau"]) for r in records} == {(0.1, 7.0)}
    with pytest.raises(CLIError, match="bad search range"):
        run_search(SWEEP, base, dataclasses.replace(search, lr_range=(1, 0)), [])


def test_sweep_command_prints_and_writes(tmp_path, capsys):
    parser = ArgumentParser(prog="x")
    add_sweep_flags(parser, methods=["a"], trials=1, lr_range=(0.1, 0.1), tau_range=None)
    args = parser.parse_args(["--seeds", "0", "--backend", "threading", "--n-jobs", "1"])
    base = Run(out=str(tmp_path))
    assert sweep_command(SWEEP, base, args, [SearchGroup(("a",), {"method": "a"})]) == 0
    assert capsys.readouterr().out.endswith(f"table: {tmp_path / 'table.md'}\n")
