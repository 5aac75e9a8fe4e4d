import argparse
import dataclasses
import json
import math

import pytest
import torch
from structgrad_app_common import (
    ArgumentParser,
    CLIError,
    SearchOptions,
    add_joblib_flags,
    add_resume_flags,
    config_from_args,
    load_checkpoint,
    positive_int,
    print_failures,
    read_jsonl,
    run_command,
    run_trials,
    save_checkpoint,
    seed_int,
)
from structgrad_app_common.flags import add_search_flags, float_pair
from structgrad_app_common.plots import save_figure, save_panels
from structgrad_app_common.runcontrol import check_run_flags
from structgrad_app_common.sweep import best_trials, search_range, write_sweep
from structgrad_app_common.testing import assert_cli_error, assert_every_flag_has_help
from structgrad_app_common.training import (
    derived_generator,
    open_log,
    open_run,
    restore_state,
    shuffled,
    training_state,
    write_config,
    write_final,
)


@dataclasses.dataclass
class Config:
    out: str
    lr: float = 0.1
    epochs: int = 10
    hidden: tuple[int, ...] = (4, 2)
    resume: bool = False


def test_positive_int_and_float_pair():
    assert positive_int("3") == 3
    for bad, needle in (("0", "must be >= 1"), ("x", "expected an integer")):
        with pytest.raises(argparse.ArgumentTypeError, match=needle):
            positive_int(bad)
    assert float_pair("1e-3,0.5") == (1e-3, 0.5)
    with pytest.raises(argparse.ArgumentTypeError, match="LOW,HIGH"):
        float_pair("1,2,3")
    assert seed_int("0") == 0 and seed_int(str(2**63 - 1)) == 2**63 - 1
    for bad in ("-1", str(2**63), "1e3"):  # torch and numpy refuse them with other words
        with pytest.raises(argparse.ArgumentTypeError, match=r"seed in|expected an integer"):
            seed_int(bad)


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="app")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    p = sub.add_parser("train", help="train")
    add_resume_flags(p, unit="epoch")
    add_joblib_flags(p)
    p.add_argument("--lr", type=float, default=0.1, help="lr")
    p.add_argument("--epochs", type=positive_int, default=10, help="epochs")
    p.add_argument("--smoke", action="store_true", help="tiny")
    p.set_defaults(func=lambda args: 3 if args.resume else 0)
    q = sub.add_parser("fail", help="fails")
    q.set_defaults(func=lambda args: (_ for _ in ()).throw(CLIError("bad\nthing")))
    return parser


def test_shared_flags_and_help():
    args = _parser().parse_args(["train", "--resume", "--stop-after", "2", "--n-jobs", "-1"])
    assert (args.resume, args.overwrite, args.stop_after, args.no_progress) == (
        True,
        False,
        2,
        False,
    )
    assert (args.n_jobs, args.backend) == (-1, "loky")
    assert "epoch" in _parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert_every_flag_has_help(_parser())
    p = argparse.ArgumentParser()
    add_resume_flags(p, unit="step", stop_after=False, progress=False)
    assert {a.dest for a in p._actions} == {"help", "resume", "overwrite"}


def test_config_from_args_applies_smoke_where_default():
    args = argparse.Namespace(lr=0.5, epochs=10, smoke=True, unrelated=1)
    c = config_from_args(Config, args, {"lr": 0.01, "epochs": 2}, out="o")
    assert c == Config(out="o", lr=0.5, epochs=2)  # the non-default --lr wins
    args.smoke = False
    assert config_from_args(Config, args, {"epochs": 2}, out="o").epochs == 10


def test_smoke_presets_leave_flags_given_at_their_default_value():
    # `--smoke --epochs 10` asked for 10 epochs: the flag was given, though 10 is the default.
    parser = ArgumentParser(prog="app")
    sub = parser.add_subparsers(dest="command", parser_class=ArgumentParser)
    train = sub.add_parser("train")
    train.add_argument("--smoke", action="store_true")
    for name, default in (("lr", 0.1), ("epochs", 10)):
        train.add_argument(f"--{name}", type=type(default), default=default)
    presets = {"lr": 0.01, "epochs": 2}
    args = parser.parse_args(["train", "--smoke", "--epochs", "10"])
    assert args.given_flags == {"smoke", "epochs"}
    assert config_from_args(Config, args, presets, out="o") == Config(out="o", lr=0.01, epochs=10)
    args = parser.parse_args(["train", "--smoke"])
    assert config_from_args(Config, args, presets, out="o") == Config(out="o", lr=0.01, epochs=2)
    # Absent positionals are not flags given; intermixed parsing keeps both passes' flags.
    other = ArgumentParser(prog="app")
    other.add_argument("where", nargs="*")
    other.add_argument("--lr", type=float, default=0.1)
    assert other.parse_args(["--lr", "0.1"]).given_flags == {"lr"}
    assert other.parse_intermixed_args(["x", "--lr", "0.1", "y"]).given_flags == {"lr"}


def test_run_command_and_one_line_errors(capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    seen = []
    assert run_command(_parser, ["train", "--resume"], prog="app", prepare=seen.append) == 3
    assert seen[0].command == "train"
    import os

    assert os.environ["OMP_NUM_THREADS"] == "1"

    def main(argv):
        return run_command(_parser, argv, prog="app")

    assert_cli_error(capsys, main, ["fail"], "bad thing", prog="app")
    assert_cli_error(capsys, main, ["train", "--epochs", "0"], "must be >= 1", prog="app")
    assert_cli_error(
        capsys, main, ["train", "--resume", "--overwrite", "x"], "unrecognized", prog="app"
    )


def test_print_failures(capsys):
    records = [
        {"method": "a", "trial": 0, "seed": 1, "error": "boom"},
        {"task": "t", "method": "b", "trial": 2, "seed": 3, "error": "bang"},
        {"method": "c", "trial": 0, "seed": 0},
    ]
    print_failures(records)
    assert capsys.readouterr().out.splitlines() == [
        "failed: a trial 0 seed 1: boom",
        "failed: t b trial 2 seed 3: bang",
    ]
    print_failures(records[:1], lambda r: f"{r['method']}/{r['seed']}")
    assert capsys.readouterr().out == "failed: a/1: boom\n"


def test_check_run_flags():
    check_run_flags(resume=True, overwrite=False, stop_after=None)
    with pytest.raises(CLIError, match="exclude each other"):
        check_run_flags(resume=True, overwrite=True, stop_after=None)
    with pytest.raises(CLIError, match="--stop-after must be >= 1"):
        check_run_flags(resume=False, overwrite=False, stop_after=0)


def test_open_run_resume_and_overwrite(tmp_path):
    out = tmp_path / "run"
    c = Config(out=str(out))
    assert open_run(out, c, ["lr"], resume=False, overwrite=False) is None
    with pytest.raises(CLIError, match="no checkpoint"):
        open_run(out, c, ["lr"], resume=True, overwrite=False)
    conf = write_config(out, c)
    assert json.loads((out / "config.json").read_text()) == conf
    assert conf["hidden"] == [4, 2]
    save_checkpoint(out / "last.pt", {"config": conf, "epoch": 1})
    with pytest.raises(CLIError, match="already holds a run"):
        open_run(out, c, ["lr"], resume=False, overwrite=False)
    assert open_run(out, c, ["lr"], resume=False, overwrite=True) is None
    # a tuple saved through JSON comes back as a list and still matches
    assert open_run(out, c, ["lr", "hidden"], resume=True, overwrite=False)["epoch"] == 1
    changed = dataclasses.replace(c, lr=0.2, hidden=(4,))
    with pytest.raises(CLIError, match="settings differ from the checkpoint: lr, hidden"):
        open_run(out, changed, ["lr", "hidden", "epochs"], resume=True, overwrite=False)
    # A setting the checkpoint predates counts as its default: resuming at the
    # default works, anything else is a change.
    older = {k: v for k, v in conf.items() if k != "lr"}
    save_checkpoint(out / "last.pt", {"config": older, "epoch": 2})
    assert open_run(out, c, ["lr"], resume=True, overwrite=False)["epoch"] == 2
    with pytest.raises(CLIError, match="differ from the checkpoint: lr"):
        open_run(out, dataclasses.replace(c, lr=0.5), ["lr"], resume=True, overwrite=False)


def test_open_log_cuts_back_on_resume(tmp_path):
    with open_log(tmp_path, None, step_key="epoch") as log:
        for e in (1, 2, 3):
            log.log({"epoch": e})
    with open_log(tmp_path, {"epoch": 2}, step_key="epoch") as log:
        log.log({"epoch": 3, "again": True})
    assert read_jsonl(tmp_path / "metrics.jsonl") == [
        {"epoch": 1},
        {"epoch": 2},
        {"epoch": 3, "again": True},
    ]
    assert write_final(tmp_path, {"x": math.nan}) == {"x": math.nan}
    assert json.loads((tmp_path / "final.json").read_text()) == {"x": None}


def test_generators_and_orders_are_reproducible():
    a = torch.rand(3, generator=derived_generator(5, 7))
    assert torch.equal(a, torch.rand(3, generator=torch.Generator().manual_seed(5 * 1_000_003 + 7)))
    p = shuffled(10, seed=1, epoch=2)
    assert sorted(p.tolist()) == list(range(10))
    assert torch.equal(p, shuffled(10, seed=1, epoch=2))
    assert not torch.equal(p, shuffled(10, seed=1, epoch=3))


def test_every_accepted_seed_derives_a_generator():
    # seed * stride + index passes torch's unsigned 64-bit range for seeds above
    # about 1.8e13; below it the stream stays the one seeded directly.
    big = 2**63 - 1
    assert torch.rand(2, generator=derived_generator(big, 3)).shape == (2,)
    expected = torch.Generator().manual_seed((big * 1_000_003 + 3) % 2**64)
    assert torch.equal(
        torch.rand(2, generator=derived_generator(big, 3)), torch.rand(2, generator=expected)
    )
    seed = 18_446_688_733_600  # the largest seeds that worked before are unchanged
    direct = torch.Generator().manual_seed(seed * 1_000_003 + 9)
    assert torch.equal(
        torch.rand(2, generator=derived_generator(seed, 9)), torch.rand(2, generator=direct)
    )
    assert sorted(shuffled(5, seed=big, epoch=1).tolist()) == list(range(5))


def test_training_state_round_trip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    gen = torch.Generator().manual_seed(3)
    save_checkpoint(tmp_path / "last.pt", training_state(model, opt, gen, step=4))
    expected = (torch.rand(2, generator=gen), torch.rand(2))
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 4
    model2 = torch.nn.Linear(2, 1)
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.1)
    gen2 = torch.Generator()
    restore_state(state, model2, opt2, gen2)
    assert torch.equal(model2.weight, model.weight)
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert torch.equal(torch.rand(2, generator=gen2), expected[0])
    assert torch.equal(torch.rand(2), expected[1])


def _trial(**kw):
    return {**kw, "doubled": 2 * kw["x"]}


def test_search_range_run_trials_and_write_sweep(tmp_path):
    assert search_range((0.1, 1.0)).support() == (0.1, 1.0)
    with pytest.raises(CLIError, match="bad search range"):
        search_range((1.0, 0.1))
    tasks = [{"x": 1}, {"x": 2}]
    assert run_trials(_trial, tasks, n_jobs=1, backend="threading")[1]["doubled"] == 4
    with pytest.raises(CLIError, match="joblib backend 'nope' failed"):
        run_trials(_trial, tasks, n_jobs=1, backend="nope")
    # A task's own ValueError is the task's (it was reported as the backend failing).
    with pytest.raises(ValueError, match="malformed string"):
        run_trials(complex, [{"real": "nan?"}], n_jobs=1, backend="threading")
    write_sweep(tmp_path, [{"a": math.inf}], [{"b": 1}], "| t |")
    assert read_jsonl(tmp_path / "sweep.jsonl") == [{"a": None}]
    assert json.loads((tmp_path / "summary.json").read_text()) == [{"b": 1}]
    assert (tmp_path / "table.md").read_text() == "| t |\n"


def _rec(method, trial, seed, valid, lr=0.1, **extra):
    return {
        "method": method,
        "trial": trial,
        "seed": seed,
        "valid": valid,
        "lr": lr,
        "tau": 1.0,
        **extra,
    }


def test_best_trials_lowest_highest_and_failures():
    records = [
        _rec("a", 0, 0, 3.0, lr=0.1),
        _rec("a", 0, 1, 5.0, lr=0.1),
        _rec("a", 1, 0, 1.0, lr=0.2),
        _rec("a", 1, 1, 2.0, lr=0.2),
        _rec("a", 2, 0, math.nan, lr=0.3),
        _rec("b", 0, 0, 1.0, error="boom"),
    ]
    low, failed = best_trials(records, ["method"], ["valid"], score="valid")
    assert (low["trial"], low["lr"], low["n"], low["valid_mean"]) == (1, 0.2, 2, 1.5)
    assert failed == {"method": "b", "n": 0, "error": "every trial failed"}
    high, failed = best_trials(
        records, ["method"], ["valid"], score="valid", higher=True, failure=None
    )
    assert (high["trial"], high["lr"]) == (0, 0.1)
    assert failed == {"method": "b", "n": 0}


def test_save_figure_and_panels(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    path = save_panels(fig, axes, tmp_path / "sub" / "a.png", title="t")
    assert path.read_bytes()[:4] == b"\x89PNG" and not plt.get_fignums()
    fig, _ = plt.subplots()
    assert save_figure(fig, tmp_path / "b.png", dpi=50, tight=True).read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png", "sub"]


def test_add_search_flags_defaults_and_help():
    parser = ArgumentParser(prog="app")
    add_search_flags(parser, trials=5, lr_range=(1e-4, 1e-2), tau_range=None)
    args = parser.parse_args(["--lr-range", "0.1,0.1"])
    assert (args.out, args.trials, args.seeds, args.search_seed) == ("runs/sweep", 5, [0, 1, 2], 0)
    assert (args.lr_range, args.tau_range, args.n_jobs, args.backend) == (
        (0.1, 0.1),
        None,
        2,
        "loky",
    )
    assert SearchOptions.from_args(args) == SearchOptions(
        trials=5,
        seeds=[0, 1, 2],
        lr_range=(0.1, 0.1),
        tau_range=None,
        search_seed=0,
        n_jobs=2,
        backend="loky",
    )
    text = " ".join(parser.format_help().split())
    assert "(0.0001,0.01; LOW=HIGH fixes it)" in text and "each method's τ" in text


def test_sweep_guards() -> None:
    # Every run failed: exit 1 with one line (sweeps exited 0 on a table of failures).
    from structgrad_app_common import sweep_exit_code
    from structgrad_app_common.argtypes import jobs_int
    from structgrad_app_common.runcontrol import check_unique

    assert sweep_exit_code([{"error": "x"}, {"error": "y"}], "app") == 1
    assert sweep_exit_code([{"error": "x"}, {"loss": 1.0}], "app") == 0
    assert sweep_exit_code([], "app") == 0
    with pytest.raises(CLIError, match="seed 0 is listed twice"):
        check_unique("seed", [0, 1, 0])
    with pytest.raises(argparse.ArgumentTypeError, match="got 0"):
        jobs_int("0")
    assert jobs_int("-1") == -1 and jobs_int("3") == 3


def test_no_single_item_batches() -> None:
    # BatchNorm cannot train on one item: a last batch of one joins the one before.
    from structgrad_app_common.batches import epoch_batch, steps_per_epoch

    assert steps_per_epoch(65, 64, no_single=True) == 1
    assert steps_per_epoch(129, 64, no_single=True) == 2 and steps_per_epoch(129, 64) == 3
    sizes = [len(epoch_batch(s, 129, 64, seed=0, no_single=True)) for s in (1, 2, 3, 4)]
    assert sizes == [64, 65, 64, 65]
    assert sorted(
        torch.cat([epoch_batch(s, 129, 64, seed=0, no_single=True) for s in (1, 2)]).tolist()
    ) == list(range(129))


def test_resuming_with_a_lost_log_warns(tmp_path, capsys) -> None:
    # The records before the checkpoint vanished without a word.
    from structgrad_app_common import JsonlLogger

    with JsonlLogger(tmp_path / "m.jsonl", resume_step=3) as log:
        log.log({"step": 4, "loss": 1.0})
    assert "holds no record up to the checkpoint's step 3" in capsys.readouterr().err
    with JsonlLogger(tmp_path / "m.jsonl", resume_step=4) as log:  # its records are there
        log.log({"step": 5, "loss": 1.0})
    assert capsys.readouterr().err == ""
