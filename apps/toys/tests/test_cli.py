import json
import subprocess
import sys

import pytest
import torch
from structgrad_app_common import read_jsonl
from structgrad_app_common.app_checks import AppChecks
from structgrad_app_common.testing import (
    append_record,
    assert_png,
    assert_subprocess_error,
    last_checkpoint,
)
from toys import plots
from toys.cli import build_parser, main
from toys.methods import applicable
from toys.problems import STRUCTURES

PAIRS = [(s, e) for s in STRUCTURES for e in applicable(s)]
APP = AppChecks(main, "toys", build_parser)


@pytest.mark.parametrize(("structure", "estimator"), PAIRS)
def test_smoke_every_structure_and_estimator(tmp_path, capsys, structure, estimator):
    out = tmp_path / "run"
    argv = ["run", "--smoke", "--structure", structure, "--estimator", estimator]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["steps"] == 20 and not final["diverged"]
    recs = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in recs] == [0, 10, 20]
    for r in recs:
        assert r["mean_loss"] >= final["optimum"] - 1e-6
        assert r["grad_std"] >= 0 and r["gap"] == pytest.approx(r["mean_loss"] - final["optimum"])
    assert_png(out / "curve.png")
    state = last_checkpoint(out)  # no pickled objects
    theta = state["model"]["theta"]
    assert state["step"] == 20 and theta.shape[-1] == 5
    assert not torch.equal(theta, torch.zeros_like(theta)) or estimator == "ste"


def test_config_read_back_and_device(tmp_path, capsys):
    argv = ["run", "--smoke", "--structure", "k_subset", "--estimator", "relax", "--no-progress"]
    APP.config_and_device(capsys, argv, tmp_path)


@pytest.mark.parametrize("estimator", ["t-reinforce+", "relax"])
def test_resume_continues_without_duplicates(tmp_path, capsys, estimator):
    out, ref = tmp_path / "run", tmp_path / "ref"
    args = ["run", "--smoke", "--no-progress", "--structure", "matching", "--estimator",
            estimator, "--iters", "20", "--eval-every", "5"]  # fmt: skip
    recs, ref_recs = APP.interrupted(
        capsys, args, out, ref, unit="step", stop_after=7,
        killed={"step": 10, "mean_loss": 1.0}, changed=["--lr", "0.1"],
    )  # fmt: skip
    assert [r["step"] for r in recs] == [0, 5, 10, 15, 20]
    # The interrupted run ends exactly where an uninterrupted one does.
    for a, b in zip(recs, ref_recs, strict=True):
        assert a["mean_loss"] == b["mean_loss"] and a["grad_std"] == pytest.approx(b["grad_std"])
        # The training-loss window (steps 6..10 here) spans the stop: checkpointed.
        if b["train_loss"] is not None:  # None at step 0
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-12)
    assert torch.equal(
        last_checkpoint(out)["model"]["theta"], last_checkpoint(ref)["model"]["theta"]
    )


def test_resume_and_plots_skip_hand_edited_records(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--smoke", "--no-progress", "--structure", "k_subset", "--estimator", "sst",
            "--out", str(out)]  # fmt: skip
    assert main([*argv, "--stop-after", "10"]) == 0
    for bad in ([1, 2], {"mean_loss": 1.0}, {"step": "five", "mean_loss": 1.0}):
        append_record(out / "metrics.jsonl", bad)
    assert main([*argv, "--resume"]) == 0
    assert "line 3 is not a JSON object and is skipped" in capsys.readouterr().err
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == [0, 10, 20]
    bad = [{"mean_loss": 1.0}, {"step": "x", "mean_loss": 1.0, "grad_std": "y"}]
    runs = {"sst": [*bad, {"step": 0, "mean_loss": 1.0, "grad_std": 0.1}]}
    assert_png(plots.plot_runs(runs, tmp_path / "p.png", title="edited"))


def test_bad_flags_one_line_errors(tmp_path, capsys):
    run = ["run", "--smoke", "--out", str(tmp_path / "r")]
    APP.fail(capsys, [*run, "--structure", "tree", "--estimator", "relax"], "unknown structure")
    APP.fail(capsys, [*run, "--structure", "matching", "--estimator", "magic"], "unknown estimator")
    APP.fail(capsys, [*run, "--structure", "matching", "--estimator", "imle"], "does not apply")
    APP.fail(capsys, [*run, "--structure", "binary_tree", "--estimator", "sst"], "does not apply")
    base = [*run, "--structure", "matching", "--estimator", "relax"]
    APP.fail(capsys, [*base, "--resume"], "no checkpoint")
    APP.fail(capsys, [*base, "--resume", "--overwrite"], "exclude each other")
    APP.fail(capsys, [*base, "--iters", "0"], "must be >= 1")
    APP.fail(capsys, [*base, "--num-mc", "1"], "--num-mc must be >= 2")
    APP.fail(capsys, [*base, "--lr", "-1"], "argument --lr: must be a finite number > 0")
    APP.fail(capsys, [*base, "--dim", "x"], "expected an integer")
    sub = ["run", "--smoke", "--out", str(tmp_path / "s"), "--structure", "k_subset"]
    APP.fail(capsys, [*sub, "--estimator", "sst", "--tau", "0"], "--tau must be > 0")
    APP.fail(capsys, [*sub, "--estimator", "sst", "--lam", "nan"], "--lam must be > 0, got nan")
    APP.fail(capsys, [*sub, "--estimator", "relax", "--k", "5"], "--k must lie in [1, 4]")
    APP.fail(capsys, [*sub, "--estimator", "t-reinforce+", "--plus-samples", "1"], "plus-samples")
    APP.fail(capsys, ["run", "--structure", "matching"], "required")
    APP.fail(capsys, ["frobnicate"], "invalid choice")
    APP.fail(capsys, ["all", "--smoke", "--structures", "nope"], "unknown structure")
    APP.fail(capsys, ["all", "--smoke", "--estimators", "nope"], "unknown estimator")
    APP.fail(
        capsys,
        ["all", "--smoke", "--structures", "matching", "--estimators", "imle"],
        "no (structure, estimator) pair",
    )


test_every_flag_has_help = APP.help_test()


def test_all_smoke_table_and_resume(tmp_path, capsys):
    out = tmp_path / "all"
    argv = ["all", "--smoke", "--out", str(out), "--structures", "matching", "k_subset",
            "--estimators", "t-reinforce", "imle", "--n-jobs", "1"]  # fmt: skip
    assert main(argv) == 0
    table = (out / "table.md").read_text().splitlines()
    assert len(table) == 2 + 3  # matching/t-reinforce, k_subset/t-reinforce, k_subset/imle
    # dim 5 (smoke): the reference numbers (dim 10) are left out of the table.
    assert table[2].startswith("| matching | t-reinforce | -5 |") and "(-5.9)" not in table[2]
    assert "@20" in table[3] and (out / "matching.png").exists()
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 3
    from toys.sweep import table as make_table

    assert "(-5.9)" in make_table(results, with_reference=True).splitlines()[2]
    capsys.readouterr()
    APP.fail(capsys, argv, "already holds a run")
    assert main([*argv, "--resume"]) == 0  # every run finished: nothing to do, same table
    assert (out / "table.md").read_text().splitlines() == table
    # A finished run is kept only with its own settings (it was reported as the new ones).
    APP.fail(capsys, [*argv, "--resume", "--tau", "3"], "config.json': tau")
    APP.fail(capsys, [*argv, "--resume", "--overwrite"], "exclude each other")
    APP.fail(capsys, [*argv, "--seed", "5"], "takes --seeds")  # it was ignored
    APP.fail(capsys, [*argv, "--seeds", "1", "1"], "seed 1 is listed twice")
    APP.fail(capsys, [*argv, "--device", "cuda"], "CUDA is not available")


def test_module_entry_point_subprocess(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "toys", "all", "--smoke", "--out", str(tmp_path),
         "--structures", "binary_tree", "--estimators", "t-reinforce+", "relax"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "| binary_tree | relax |" in proc.stdout and (tmp_path / "binary_tree.png").exists()
    argv = ["run", "--structure", "matching", "--estimator", "sst"]
    assert_subprocess_error("toys", argv, cwd=tmp_path)


def test_threading_backend_is_reproducible(tmp_path, capsys):
    # RELAX critics initialise from torch's global RNG, which threads share.
    def losses(out):
        argv = ["all", "--smoke", "--out", str(out), "--structures", "matching",
                "--estimators", "relax", "--seeds", "1", "2", "3", "4",
                "--backend", "threading", "--n-jobs", "4"]  # fmt: skip
        assert main(argv) == 0
        return [json.loads(f.read_text())["losses"] for f in sorted(out.glob("*/*/final.json"))]

    first = losses(tmp_path / "a")
    assert len(first) == 4 and first == losses(tmp_path / "b")


def test_all_on_a_dask_cluster_matches_a_local_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    argv = ["all", "--smoke", "--structures", "matching", "--estimators", "relax", "imle",
            "--seeds", "1", "2"]  # fmt: skip
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main([*argv, "--out", str(local), "--n-jobs", "1"]) == 0
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    try:
        assert main([*argv, "--out", str(remote), "--scheduler", cluster.scheduler_address]) == 0
    finally:
        cluster.close()
    assert (remote / "table.md").read_text() == (local / "table.md").read_text()


def test_a_diverging_run_says_why(tmp_path):
    argv = ["run", "--smoke", "--no-progress", "--structure", "k_subset", "--estimator", "sst",
            "--lr", "1e38"]  # fmt: skip
    final = APP.stops_with_reason(argv, tmp_path / "run", "update overflowed at step 1")
    last = read_jsonl(tmp_path / "run" / "metrics.jsonl")[-1]
    assert last == {"step": 1, "split": "stopped", "reason": final["stopped"]}
