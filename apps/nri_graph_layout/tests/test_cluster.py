"""``sweep --scheduler`` on a local Dask cluster, and ``train --tensorboard``."""

import faulthandler
import json
import time

import pytest
from nri_graph_layout.cli import main
from structgrad_app_common import read_jsonl
from structgrad_app_common.testing import assert_cli_error, assert_sweep_outputs

SWEEP = ["sweep", "--smoke", "--methods", "tree-sst", "indep", "--trials", "1",
         "--seeds", "0", "1"]  # fmt: skip
#: Fields that differ between two sweeps of the same runs (paths, timings).
VARYING = ("out", "plots", "seconds")
#: Seconds after which a hung cluster test dumps every thread's stack and exits.
WATCHDOG = 300


def _same(record):
    return {k: v for k, v in record.items() if k not in VARYING}


def _assert_records_close(got, want):
    """The same records but the varying fields, floats within float32 precision."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        a, b = _same(a), _same(b)
        assert sorted(a) == sorted(b)
        for key, value in b.items():
            if isinstance(value, float):
                assert a[key] == pytest.approx(value, rel=1e-6), key
            else:
                assert a[key] == value, key


def _assert_scalars_close(got, want):
    assert sorted(got) == sorted(want)
    for tag, points in want.items():
        assert [s for s, _ in got[tag]] == [s for s, _ in points], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag


def _table(folder):
    """table.md without its last column (seconds per run)."""
    lines = (folder / "table.md").read_text().splitlines()
    return [line.rsplit("|", 2)[0] for line in lines]


def _own_clients(cluster):
    """The scheduler's clients but its own and the workers'."""
    names = cluster.scheduler.clients
    return [c for c in names if c != "fire-and-forget" and not c.startswith("Client-worker-")]


def test_sweep_on_a_dask_cluster_matches_a_local_sweep_and_resumes(tmp_path):
    distributed = pytest.importorskip("distributed")
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main([*SWEEP, "--out", str(local), "--n-jobs", "1"]) == 0  # in this process
    faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    try:
        address = cluster.scheduler_address
        assert main([*SWEEP, "--out", str(remote), "--scheduler", address]) == 0
        done = read_jsonl(remote / "sweep.jsonl")
        _assert_records_close(done, read_jsonl(local / "sweep.jsonl"))
        assert [sorted(r) for r in done] == [sorted(r) for r in read_jsonl(local / "sweep.jsonl")]
        assert_sweep_outputs(remote, rows=2, first="| tree-sst |", runs=4)
        assert _table(remote) == _table(local)
        deadline = time.monotonic() + 10
        while _own_clients(cluster) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _own_clients(cluster) == []  # the sweep closed its client

        # Killed after two runs: the log holds those; --resume runs the other two.
        (remote / "sweep.jsonl").write_text("".join(json.dumps(r) + "\n" for r in done[:2]))
        finals = [remote / r["method"] / f"trial{r['trial']}" / f"seed{r['seed']}" / "final.json"
                  for r in done]  # fmt: skip
        before = [f.stat().st_mtime_ns for f in finals]
        argv = [*SWEEP, "--out", str(remote), "--scheduler", address, "--resume"]
        assert main(argv) == 0
        after = [f.stat().st_mtime_ns for f in finals]
        assert [b == a for b, a in zip(before, after, strict=True)] == [True, True, False, False]
        again = read_jsonl(remote / "sweep.jsonl")
        _assert_records_close(again, done)
        assert _table(remote) == _table(local)
    finally:
        cluster.close()
        faulthandler.cancel_dump_traceback_later()


def test_retired_backends_are_one_line_errors(tmp_path, capsys):
    argv = [*SWEEP, "--out", str(tmp_path)]
    for old in ("dask", "ray"):
        assert_cli_error(capsys, main, [*argv, "--backend", old], "--scheduler ADDRESS",
                         prog="nri_graph_layout")  # fmt: skip


def _scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def _expected(records):
    """The scalars a record log should mirror: ``[split/]field`` → ``[(step, value)]``."""
    tags: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        prefix = f"{r['split']}/" if "split" in r else ""
        for key, value in r.items():
            if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                tags.setdefault(prefix + key, []).append((r["step"], value))
    return tags


def test_train_tensorboard_mirrors_the_jsonl_and_is_free_on_resume(tmp_path):
    pytest.importorskip("tensorboard")
    out, tb = tmp_path / "run", tmp_path / "tb"
    train = ["train", "--smoke", "--no-progress", "--out", str(out)]
    assert main([*train, "--tensorboard", str(tb)]) == 0
    expected = _expected(read_jsonl(out / "metrics.jsonl"))
    assert {"train/loss", "valid/nll"} <= set(expected)
    _assert_scalars_close(_scalars(tb), expected)
    assert json.loads((out / "config.json").read_text())["tensorboard"] == str(tb)

    # --tensorboard is a run control: a resumed run may add or change it.
    stopped = tmp_path / "stopped"
    assert main(["train", "--smoke", "--no-progress", "--out", str(stopped),
                 "--stop-after", "2"]) == 0  # fmt: skip
    later = tmp_path / "tb-later"
    assert main(["train", "--smoke", "--no-progress", "--out", str(stopped), "--resume",
                 "--tensorboard", str(later)]) == 0  # fmt: skip
    resumed = [r for r in read_jsonl(stopped / "metrics.jsonl") if r["step"] > 2]
    _assert_scalars_close(_scalars(later), _expected(resumed))


def test_quickstart_on_a_dask_cluster_matches_a_local_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    argv = ["quickstart", "--smoke", "--seeds", "0"]
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main([*argv, "--out", str(local), "--n-jobs", "1"]) == 0
    faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    try:
        assert main([*argv, "--out", str(remote), "--scheduler", cluster.scheduler_address]) == 0
        got = json.loads((remote / "table.json").read_text())
        want = json.loads((local / "table.json").read_text())
        _assert_records_close(got, want)  # restarts on the cluster, the same kept runs
    finally:
        cluster.close()
        faulthandler.cancel_dump_traceback_later()
