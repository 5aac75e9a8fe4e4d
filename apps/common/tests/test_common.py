import json
import math
import os
import sys

import numpy as np
import pytest
import torch
from structgrad_app_common import (
    ArgumentParser,
    CLIError,
    JsonlLogger,
    atomic_save_npz,
    atomic_write_text,
    format_mean_se,
    load_checkpoint,
    markdown_table,
    mean_se,
    read_jsonl,
    run_main,
    run_parallel,
    save_checkpoint,
)
from structgrad_app_common.checkpoint import atomic_write_with
from structgrad_app_common.parallel import LOCAL_BACKENDS
from structgrad_app_common.sweep import aggregate, sample_trials, search_range


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_atomic_write_failure_keeps_old_file_and_no_partial(tmp_path):
    path = tmp_path / "ckpt.pt"
    atomic_write_text(path, "old")

    def crash(handle):
        handle.write(b"partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_write_with(path, crash)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["ckpt.pt"]
    with pytest.raises(RuntimeError):
        atomic_write_with(tmp_path / "new.pt", crash)
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_checkpoint_round_trip_weights_only(tmp_path):
    state = {"step": 3, "w": torch.arange(4.0), "nested": {"best": -1.5, "name": "x"}}
    save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(tmp_path / "c.pt")
    assert back["step"] == 3 and back["nested"] == {"best": -1.5, "name": "x"}
    assert torch.equal(back["w"], state["w"])


class _Payload:
    """A pickle that would run code: ``os.system`` on load."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["pickle", "torch.save", "plain pickle", "text"])
def test_a_foreign_checkpoint_is_one_line_and_never_run(tmp_path, how, recwarn):
    import pickle

    marker, path = tmp_path / "ran", tmp_path / "last.pt"
    obj = {"a": 1} if how == "plain pickle" else {"step": 1, "x": _Payload(marker)}
    if how == "torch.save":
        torch.save(obj, path)
    elif how == "text":  # torch read it as a legacy file: KeyError: 101
        path.write_text("epoch 3, loss 0.5\n")
    else:
        path.write_bytes(pickle.dumps(obj, protocol=4))
    with pytest.raises(CLIError, match=r"^cannot read checkpoint .*: not a checkpoint of") as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message and "weights_only" not in message  # not torch's advice
    assert not marker.exists() and not recwarn.list  # no code ran, no torch warning


def test_npz_refuses_objects(tmp_path):
    atomic_save_npz(tmp_path / "d.npz", {"x": np.ones(3)})
    with np.load(tmp_path / "d.npz", allow_pickle=False) as data:
        assert data["x"].sum() == 3
    with pytest.raises(ValueError, match="pickle"):
        atomic_save_npz(tmp_path / "e.npz", {"x": np.array([{}], dtype=object)})


def test_jsonl_resume_drops_records_after_checkpoint(tmp_path):
    path = tmp_path / "m.jsonl"
    with JsonlLogger(path) as log:
        for step in range(6):
            log.log({"step": step, "loss": float(step), "bad": math.nan})
    with open(path, "a") as f:
        f.write('{"step": 9, "cut')  # a line cut by a crash
    with JsonlLogger(path, resume_step=3) as log:
        log.log({"step": 4, "loss": 40.0})
    recs = read_jsonl(path)
    assert [r["step"] for r in recs] == [0, 1, 2, 3, 4]
    assert recs[0]["bad"] is None and recs[-1]["loss"] == 40.0
    with JsonlLogger(path) as log:
        pass
    assert read_jsonl(path) == []
    json.dumps(recs)


def test_a_damaged_line_inside_a_log_is_skipped_with_a_warning(tmp_path, capsys):
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"a": oops\n\n{"a": 3}\n{"a": 4, "cu')
    assert read_jsonl(path) == [{"a": 1}, {"a": 3}]
    assert capsys.readouterr().err == f"warning: {path}: line 2 is not JSON and is skipped\n"


def test_mean_se_on_fixed_numbers():
    mean, se, n = mean_se([1.0, 2.0, 3.0, 4.0])
    assert n == 4 and mean == 2.5
    assert se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)  # 0.6455
    assert se == pytest.approx(0.6454972243679028)
    assert mean_se([5.0, None, math.nan])[:1] == (5.0,) and math.isnan(mean_se([5.0])[1])
    assert math.isnan(mean_se([])[0])


def test_aggregate_groups_and_table():
    records = [
        {"method": "a", "elbo": -10.0, "prec": 0.5},
        {"method": "a", "elbo": -12.0, "prec": 0.7},
        {"method": "b", "elbo": -20.0, "prec": None},
    ]
    rows = aggregate(records, ["method"], ["elbo", "prec"])
    assert [r["method"] for r in rows] == ["a", "b"]
    assert rows[0]["n"] == 2 and rows[0]["elbo_mean"] == -11.0
    assert rows[0]["elbo_se"] == pytest.approx(1.0)  # std ddof=1 = sqrt(2), / sqrt(2)
    assert rows[0]["prec_se"] == pytest.approx(0.1)
    assert math.isnan(rows[1]["prec_mean"])
    assert format_mean_se(-11.0, 1.0) == "-11 ± 1"
    assert format_mean_se(math.nan, 1.0) == "n/a"
    assert format_mean_se(-2767.4, 43.2) == "-2767 ± 43"
    assert format_mean_se(-2767.4, 143.2) == "-2767 ± 143"
    assert format_mean_se(0.2841, 0.0623) == "0.284 ± 0.062"
    table = markdown_table(["m", "x"], [["a|b", 1]])
    assert table.splitlines() == ["| m | x |", "|---|---|", "| a\\|b | 1 |"]


def test_log_uniform_and_trials():
    space = {"lr": search_range((1e-4, 1e-2)), "k": [1, 2], "fixed": 7}
    trials = sample_trials(space, 200, seed=1)
    lrs = np.array([t["lr"] for t in trials])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-2
    assert 0.2 < np.mean(np.log10(lrs) < -3) < 0.8  # log-uniform: half below the log-midpoint
    assert {t["k"] for t in trials} == {1, 2} and all(t["fixed"] == 7 for t in trials)
    assert trials == sample_trials(space, 200, seed=1)
    assert list(trials[0]) == ["lr", "k", "fixed"] and type(trials[0]["lr"]) is float
    assert sample_trials({"lr": search_range((0.1, 0.1))}, 3) == [{"lr": 0.1}] * 3
    with pytest.raises(CLIError, match="bad search range"):
        search_range((0.0, 1.0))
    for bounds in ((math.inf, math.inf), (1e-3, math.inf), (math.nan, 1.0)):
        with pytest.raises(CLIError, match="both finite"):  # inf passed, and every run failed
            search_range(bounds)


@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
def test_run_parallel(backend):
    # A builtin: loky workers unpickle the function by reference, and test
    # modules (imported with importlib mode) are not importable there.
    # (multiprocessing failed: joblib gives it no unordered generator.)
    tasks = [{"object": i * i} for i in range(5)]
    seen = []
    out = run_parallel(str, tasks, n_jobs=2, backend=backend, on_result=lambda *r: seen.append(r))
    assert out == ["0", "1", "4", "9", "16"] and sorted(seen) == list(enumerate(out))


@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
def test_run_parallel_raises_a_failing_task(backend):
    # multiprocessing hung: its forked workers inherited the sweep's SIGTERM
    # handler, so the pool's terminate never ended them. In a subprocess, with
    # a timeout, so that a hang fails the test instead of the run.
    import subprocess

    code = (
        "import time\n"
        "from structgrad_app_common import run_parallel\n"
        "def work(delay, fail=False):\n"
        "    time.sleep(delay)\n"
        "    if fail:\n"
        "        raise ValueError('diverged')\n"
        "tasks = [{'delay': 0.1}, {'delay': 2.0}, {'delay': 0.5, 'fail': True}, {'delay': 0.1}]\n"
        "try:\n"
        f"    run_parallel(work, tasks, n_jobs=2, backend={backend!r})\n"
        "except ValueError:\n"
        "    print('raised')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "raised", done.stderr


def test_one_line_errors(capsys):
    parser = ArgumentParser(prog="app")
    parser.add_argument("--n", type=int, required=True)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--n", "x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("app: error:")

    def main(argv):
        raise CLIError("bad\ninput")

    with pytest.raises(SystemExit) as exc:
        run_main(main, [], prog="app")
    assert exc.value.code == 2
    assert capsys.readouterr().err == "app: error: bad input\n"
    assert run_main(lambda argv: None, [], prog="app") == 0
    assert sys.stderr is not None


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ValueError("scores contain NaN"), "ValueError: scores contain NaN"),
        (IsADirectoryError(21, "Is a directory"), "IsADirectoryError"),
        (EOFError("truncated"), "EOFError: truncated"),
    ],
)
def test_input_errors_are_one_line_unless_traceback_asked(capsys, monkeypatch, error, shown):
    def main(argv):
        raise error

    monkeypatch.delenv("STRUCTGRAD_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as exc:
        run_main(main, [], prog="app")
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"app: error: {shown}")
    assert "STRUCTGRAD_TRACEBACK=1" in err
    monkeypatch.setenv("STRUCTGRAD_TRACEBACK", "1")
    with pytest.raises(type(error)):
        run_main(main, [], prog="app")
    with pytest.raises(KeyError):  # a programming error keeps its traceback
        run_main(lambda argv: {}["x"], [], prog="app")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_bad_checkpoints_are_cli_errors(tmp_path):
    torch.save({"x": _Evil()}, tmp_path / "evil.pt")
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04 not a whole archive")
    torch.save([1, 2], tmp_path / "list.pt")
    for name, match in [("evil.pt", "cannot read"), ("cut.pt", "cannot read"), ("list.pt", "list")]:
        with pytest.raises(CLIError, match=match):
            load_checkpoint(tmp_path / name)
    with pytest.raises(CLIError, match="cannot read"):
        load_checkpoint(tmp_path / "missing.pt")


def test_atomic_files_get_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640


def test_float_flag_types():
    import argparse

    from structgrad_app_common import nonnegative_float, positive_float, positive_range

    assert positive_float("1e-3") == 1e-3 and nonnegative_float("0") == 0.0
    assert positive_range("inf") == math.inf
    for kind, bad in [
        (positive_float, ["0", "-1", "inf", "nan", "x"]),
        (nonnegative_float, ["-1e-9", "inf", "nan"]),
        (positive_range, ["0", "-1", "nan"]),
    ]:
        for text in bad:
            with pytest.raises(argparse.ArgumentTypeError):
                kind(text)
