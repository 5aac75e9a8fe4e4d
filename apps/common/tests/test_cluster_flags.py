"""Sweep --resume, the joblib / Dask flags and the TensorBoard mirror of the metrics log."""

import dataclasses
import json
import sys
from typing import ClassVar

import pytest
from structgrad_app_common import (
    ArgumentParser,
    CLIError,
    Column,
    JsonlLogger,
    RunControl,
    SearchGroup,
    SearchOptions,
    Sweep,
    add_joblib_flags,
    add_run_flags,
    add_sweep_flags,
    read_back,
    read_jsonl,
    run_search,
)
from structgrad_app_common import parallel as parallel_mod
from structgrad_app_common import sweep as sweep_mod
from structgrad_app_common.jsonl import TensorBoardMirror, require_tensorboard
from structgrad_app_common.testing import ToyRun as Run
from structgrad_app_common.training import open_log, write_config

#: The runs ``_train`` carried out, and the run it fails on (as a killed sweep).
CALLS: list[tuple[int, int]] = []
FAIL_ON: list[tuple[int, int]] = []
#: Runs that raise an error (a failed record, the sweep goes on).
BROKEN: list[tuple[int, int]] = []


def _train(cfg):
    trial = int(cfg.out.split("trial")[1].split("/")[0])
    if (trial, cfg.seed) in FAIL_ON:
        raise KeyboardInterrupt("killed")  # (an error of the run is a record, see test_folded)
    CALLS.append((trial, cfg.seed))
    if (trial, cfg.seed) in BROKEN:
        raise MemoryError("out of memory")
    return {"loss": cfg.lr * (cfg.seed + 1) * cfg.epochs}


SWEEP = Sweep(Run, _train, ("loss",), (Column("loss", "loss"),), score="loss")
GROUPS = [SearchGroup(("a",), {"method": "a"})]


def _search(**changes):
    search = SearchOptions(2, [0, 1], (0.01, 0.1), None, n_jobs=1, backend="threading")
    return dataclasses.replace(search, **changes)


def test_sweep_resume_skips_the_recorded_runs(tmp_path):
    base = Run(out=str(tmp_path))
    CALLS.clear()
    FAIL_ON[:] = [(1, 1)]  # the sweep dies on its last run
    try:
        with pytest.raises(KeyboardInterrupt, match="killed"):
            run_search(SWEEP, base, _search(), GROUPS)
    finally:
        FAIL_ON.clear()
    assert CALLS == [(0, 0), (0, 1), (1, 0)]
    assert [(r["trial"], r["seed"]) for r in read_jsonl(tmp_path / "sweep.jsonl")] == CALLS
    saved = json.loads((tmp_path / "sweep_config.json").read_text())
    want = {"method": "a", "seed": 0, "lr": 0.1, "tau": 1.0, "epochs": 3}
    assert saved == want  # the run control (progress, overwrite) is not a setting

    CALLS.clear()
    records, table = run_search(SWEEP, base, _search(resume=True), GROUPS)
    assert CALLS == [(1, 1)]  # only the run the log lacks
    assert [(r["trial"], r["seed"]) for r in records] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert read_jsonl(tmp_path / "sweep.jsonl") == records and "| a |" in table
    fresh = tmp_path / "fresh"
    again, _ = run_search(SWEEP, dataclasses.replace(base, out=str(fresh)), _search(), GROUPS)
    assert [{**r, "out": None} for r in again] == [{**r, "out": None} for r in records]

    CALLS.clear()
    run_search(SWEEP, base, _search(resume=True, seeds=[0, 1, 2]), GROUPS)
    assert CALLS == [(0, 2), (1, 2)]  # more seeds: only the new runs
    CALLS.clear()
    run_search(SWEEP, base, _search(resume=True, search_seed=5), GROUPS)
    assert len(CALLS) == 4  # other draws: other (lr, τ), nothing to skip
    differ = r"^--resume: settings differ from those in '.*sweep_config.json': epochs$"
    with pytest.raises(CLIError, match=differ):
        run_search(SWEEP, dataclasses.replace(base, epochs=4), _search(resume=True), GROUPS)
    with pytest.raises(CLIError, match=r"^--resume: no sweep .*sweep.jsonl"):
        run_search(SWEEP, Run(out=str(tmp_path / "none")), _search(resume=True), GROUPS)
    (tmp_path / "sweep_config.json").write_text("{oops")
    with pytest.raises(CLIError, match=r"^--resume: cannot check the settings in"):
        run_search(SWEEP, base, _search(resume=True), GROUPS)


def test_resume_runs_a_failed_run_again(tmp_path):
    # A failed record was kept, so --resume never retried a run that failed
    # for the machine's sake (out of memory, a full disk) or a bug fixed since.
    base = Run(out=str(tmp_path))
    CALLS.clear()
    BROKEN[:] = [(0, 1)]
    try:
        records, _ = run_search(SWEEP, base, _search(), GROUPS)
    finally:
        BROKEN.clear()
    assert [r.get("error") for r in records] == [None, "MemoryError: out of memory", None, None]
    CALLS.clear()
    records, _ = run_search(SWEEP, base, _search(resume=True), GROUPS)
    assert CALLS == [(0, 1)] and not any("error" in r for r in records)
    assert [(r["trial"], r["seed"]) for r in read_jsonl(tmp_path / "sweep.jsonl")] == [
        (0, 0), (0, 1), (1, 0), (1, 1)
    ]  # fmt: skip


def test_a_sweep_folder_is_not_overwritten_unless_asked(tmp_path):
    """A second sweep into a folder holding one is refused: it retrained every run.

    Its ``sweep.jsonl`` (the finished runs) was rewritten without them, as
    ``train`` refuses a folder holding a run without ``--resume`` / ``--overwrite``.
    """
    base = Run(out=str(tmp_path))
    CALLS.clear()
    first, _ = run_search(SWEEP, base, _search(), GROUPS)
    held = (tmp_path / "sweep.jsonl").read_text()
    with pytest.raises(CLIError, match=r"already holds a sweep \(sweep.jsonl\); pass --resume"):
        run_search(SWEEP, base, _search(), GROUPS)
    assert (tmp_path / "sweep.jsonl").read_text() == held and len(CALLS) == 4
    again, _ = run_search(SWEEP, base, _search(overwrite=True), GROUPS)
    assert len(CALLS) == 8 and [r["loss"] for r in again] == [r["loss"] for r in first]
    with pytest.raises(CLIError, match="--resume and --overwrite exclude each other"):
        _search(resume=True, overwrite=True)
    parser = ArgumentParser()
    add_sweep_flags(parser, methods=("a",), trials=1, lr_range=(0.1, 0.1), tau_range=None)
    args = parser.parse_args(["--overwrite"])
    assert SearchOptions.from_args(args).overwrite and "--overwrite" in parser.format_help()


def test_sweep_resume_checks_the_fields_a_single_run_may_change(tmp_path):
    # A run's FREE fields (epochs, data...) may change when it resumes; a sweep's
    # may not: its recorded runs would be averaged with runs of other settings.
    @dataclasses.dataclass
    class Cfg(RunControl):
        FREE: ClassVar = ("epochs",)
        out: str
        method: str = "a"
        seed: int = 0
        lr: float = 0.1
        tau: float = 1.0
        epochs: int = 3

    sweep = dataclasses.replace(SWEEP, config=Cfg)
    base = Cfg(str(tmp_path))
    run_search(sweep, base, _search(), GROUPS)
    with pytest.raises(CLIError, match=r"settings differ from those in .*: epochs$"):
        run_search(sweep, dataclasses.replace(base, epochs=30), _search(resume=True), GROUPS)
    run_search(sweep, dataclasses.replace(base, threads=2), _search(resume=True), GROUPS)


def _sweep_parser():
    parser = ArgumentParser(prog="app")
    add_sweep_flags(parser, methods=["a"], trials=1, lr_range=(0.1, 0.1), tau_range=None)
    return parser


def _parse_error(capsys, parser, argv):
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_backend_choices_and_retired_backends(capsys, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    args = _sweep_parser().parse_args(["--backend", "multiprocessing", "--resume"])
    assert (args.backend, args.scheduler, args.resume) == ("multiprocessing", None, True)
    for old in ("dask", "ray"):
        err = _parse_error(capsys, _sweep_parser(), ["--backend", old])
        assert f"'{old}' is no longer a backend: run on a Dask cluster with --scheduler" in err
        assert "loky, threading, multiprocessing" in err
    err = _parse_error(capsys, _sweep_parser(), ["--backend", "nope"])
    assert "unknown joblib backend 'nope'; choose loky, threading, multiprocessing; or" in err
    local = ArgumentParser(prog="app")
    add_joblib_flags(local)  # a command without --scheduler (toys all, nri reproduce)
    assert "scheduler" not in vars(local.parse_args([]))
    err = _parse_error(capsys, local, ["--backend", "ray"])
    assert "this command runs on this machine only" in err
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.1:8786")
    assert _sweep_parser().parse_args([]).scheduler == "tcp://10.0.0.1:8786"
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "")
    assert _sweep_parser().parse_args([]).scheduler is None


def test_scheduler_needs_dask_and_no_backend(monkeypatch):
    with pytest.raises(CLIError, match="drop --backend threading"):
        _search(scheduler="tcp://h:8786")
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(CLIError) as err:
        _search(scheduler="tcp://h:8786", backend="loky")
    assert str(err.value) == (
        '--scheduler needs Dask\'s distributed scheduler: pip install "dask[distributed]"'
    )
    with pytest.raises(CLIError, match=r"pip install \"dask\[distributed\]\""):
        sweep_mod.run_parallel(str, [], scheduler="tcp://h:8786")


def test_scheduler_that_does_not_answer(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(parallel_mod, "CONNECT_TIMEOUT", 1)  # dask_client reads it there
    with pytest.raises(CLIError, match=r"^--scheduler tcp://127.0.0.1:9: no Dask scheduler"):
        sweep_mod.run_parallel(str, [{"object": 1}], scheduler="tcp://127.0.0.1:9")
    with pytest.raises(CLIError, match=r"^--scheduler nonsense: no Dask scheduler answered"):
        sweep_mod.run_parallel(str, [{"object": 1}], scheduler="nonsense")


def test_run_parallel_reports_results_as_they_finish():
    seen = []
    tasks = [{"object": i} for i in range(4)]
    out = sweep_mod.run_parallel(
        str, tasks, n_jobs=2, backend="threading", on_result=lambda i, r: seen.append((i, r))
    )
    assert out == ["0", "1", "2", "3"] and sorted(seen) == list(enumerate(out))


def test_run_parallel_starts_no_more_workers_than_tasks(monkeypatch):
    # --n-jobs 1000 started 1000 workers for one run (13.7 s at 30, not done at 1000).
    asked = []
    import joblib

    real = joblib.Parallel

    def recording(*args, **kwargs):
        asked.append(kwargs["n_jobs"])
        return real(*args, **kwargs)

    monkeypatch.setattr(joblib, "Parallel", recording)  # (run_parallel imports it late)
    tasks = [{"object": i} for i in range(3)]
    for n_jobs, want in ((1000, 3), (2, 2), (1, 1), (-1, -1)):
        assert sweep_mod.run_parallel(str, tasks, n_jobs=n_jobs, backend="threading") == [
            "0", "1", "2"
        ]  # fmt: skip
        assert asked.pop() == want
    # one task keeps a worker of its own (n_jobs=1 would run it in this process)
    assert sweep_mod.run_parallel(str, tasks[:1], n_jobs=8, backend="threading") == ["0"]
    assert asked.pop() == 2


def _scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def test_tensorboard_mirror_writes_numeric_fields_and_purges_on_resume(tmp_path):
    pytest.importorskip("tensorboard")
    tb = tmp_path / "tb"
    with JsonlLogger(tmp_path / "m.jsonl", tensorboard=tb) as log:
        log.log({"step": 1, "split": "train", "loss": 0.5, "diverged": False, "note": "x"})
        log.log({"step": 1, "split": "valid", "loss": 0.25, "nan": float("nan"), "d": {"a": 1}})
        log.log({"step": 2, "loss": 2, "n": 7})
        log.log({"loss": 9.0})  # no step: the JSONL only
    assert _scalars(tb) == {
        "train/loss": [(1, 0.5)],
        "valid/loss": [(1, 0.25)],
        "loss": [(2, 2.0)],
        "n": [(2, 7.0)],
    }
    assert len(read_jsonl(tmp_path / "m.jsonl")) == 4
    # A run resumed from its step-1 checkpoint writes step 2 again: shown once.
    with JsonlLogger(tmp_path / "m.jsonl", resume_step=1, tensorboard=tb) as log:
        log.log({"step": 2, "loss": 3.0})
    assert _scalars(tb)["loss"] == [(2, 3.0)]


def test_open_log_reads_the_tensorboard_setting_of_config_json(tmp_path):
    pytest.importorskip("tensorboard")

    @dataclasses.dataclass
    class Cfg(RunControl):
        out: str

    run = tmp_path / "run"
    write_config(run, Cfg(str(run), tensorboard=str(tmp_path / "tb")))
    with open_log(run, None, step_key="epoch") as log:
        log.log({"epoch": 1, "loss": 1.5})
    assert _scalars(tmp_path / "tb") == {"loss": [(1, 1.5)]}
    write_config(run, Cfg(str(run)))
    with open_log(run, None) as log:
        assert log.mirror is None
    with open_log(run, None, tensorboard=tmp_path / "tb2") as log:
        assert log.mirror is not None
    Cfg("o", tensorboard=str(tmp_path)).check_settings()
    with pytest.raises(CLIError, match=r"^--tensorboard needs a folder$"):
        Cfg("o", tensorboard=" ").check_settings()


def test_tensorboard_without_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    message = r"^--tensorboard needs the tensorboard package: pip install tensorboard$"
    with pytest.raises(CLIError, match=message):
        require_tensorboard()
    with pytest.raises(CLIError, match=message):
        TensorBoardMirror(tmp_path)

    @dataclasses.dataclass
    class Cfg(RunControl):
        out: str

    with pytest.raises(CLIError, match=message):
        Cfg("o", tensorboard=str(tmp_path)).check_settings()


def test_tensorboard_flag_on_runs_only_and_not_read_back(tmp_path):
    parser = ArgumentParser(prog="app")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_flags(sub.add_parser("train"), unit="epoch")
    add_run_flags(sub.add_parser("sweep"))
    assert parser.parse_args(["train", "--tensorboard", "tb"]).tensorboard == "tb"
    assert "tensorboard" not in vars(parser.parse_args(["sweep"]))
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({"tensorboard": "old", "threads": 3}))
    read_back(parser, ["train", "--config", str(saved)])
    args = parser.parse_args(["train"])
    assert (args.tensorboard, args.threads) == (None, 3)


def test_sweep_flags_do_not_clash_with_run_flags():
    # The sweep's --resume (skip recorded runs) beside the run flags of a sweep.
    parser = _sweep_parser()
    add_run_flags(parser)
    assert parser.parse_args(["--resume", "--threads", "2"]).resume is True


def test_cluster_runs_get_absolute_paths(tmp_path, monkeypatch):
    from structgrad_app_common.trials import _absolute

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        out: str
        data: str | None = None
        method: str = "indep"

    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.npz").write_bytes(b"")
    (tmp_path / "indep").mkdir()  # a folder named like a method is left alone
    cfg = _absolute(Cfg("runs/s", "d.npz"), ("data",))
    assert cfg == Cfg(str(tmp_path / "runs" / "s"), str(tmp_path / "d.npz"), "indep")
    assert _absolute(Cfg("/abs", "missing.npz"), ("data",)) == Cfg("/abs", "missing.npz")
    assert _absolute(Cfg("o"), ("data", "nope")).data is None


_SLEEPING_SWEEP = """
import os, sys, time
from structgrad_app_common import run_parallel

def trial(folder, i):
    open(os.path.join(folder, f"{i}.pid"), "w").write(str(os.getpid()))
    time.sleep(120)

if __name__ == "__main__":
    run_parallel(trial, [{"folder": sys.argv[1], "i": i} for i in range(2)], n_jobs=2)
"""


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGHUP", "SIGKILL"])
def test_a_stopped_sweep_ends_its_workers(tmp_path, signum):
    """A SIGTERM/SIGHUP/SIGKILL to the sweep ends its loky workers, which otherwise train on."""
    import os
    import signal
    import subprocess
    import time

    script = tmp_path / "sweep.py"
    script.write_text(_SLEEPING_SWEEP)
    sweep = subprocess.Popen([sys.executable, str(script), str(tmp_path)])
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    assert len(workers) == 2
    number = getattr(signal, signum)
    sweep.send_signal(number)
    # Python's handler exits with 128 + signal; a SIGKILL is the child's -signal.
    assert sweep.wait(timeout=60) == (-number if signum == "SIGKILL" else 128 + number)

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 30
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, workers))
