import json
import subprocess
import sys

import pytest
from nri_graph_layout.cli import build_parser, main
from structgrad_app_common import read_jsonl
from structgrad_app_common.app_checks import AppChecks
from structgrad_app_common.testing import (
    assert_files,
    assert_subprocess_error,
    assert_sweep_outputs,
    last_checkpoint,
)

APP = AppChecks(main, "nri_graph_layout", build_parser)


def test_smoke_train_writes_everything(tmp_path, capsys):
    out = tmp_path / "run"
    final = APP.smoke_train(out)
    for key in ("test_elbo", "test_precision", "test_recall"):
        assert isinstance(final[key], float)
    assert final["steps"] == 4 and final["test_elbo"] < 0
    assert_files(
        out, ("metrics.jsonl", "curves.png", "graph.png", "best.pt", "last.pt", "config.json")
    )
    recs = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in recs if r["split"] == "valid"] == [0, 2, 4]
    assert [r["step"] for r in recs if r["split"] == "train"] == [1, 2, 3, 4]
    assert json.loads(capsys.readouterr().out)["method"] == "tree-sst"
    # Checkpoints load with weights_only=True (no pickled objects).
    assert last_checkpoint(out)["step"] == 4


def test_config_read_back_and_device(tmp_path, capsys):
    argv = ["train", "--smoke", "--method", "indep", "--no-progress"]
    APP.config_and_device(capsys, argv, tmp_path)


@pytest.mark.parametrize("method", ["indep", "tree-reinforce", "topk-sst"])
def test_smoke_other_methods(tmp_path, method):
    out = tmp_path / method
    assert APP.smoke_train(out, "--method", method)["method"] == method


def test_resume_continues_without_duplicates(tmp_path, capsys):
    args = ["train", "--smoke", "--no-progress", "--iterations", "6", "--eval-every", "2"]
    recs, ref_recs = APP.interrupted(
        capsys, args, tmp_path / "run", tmp_path / "ref",
        unit="step", stop_after=3, killed={"step": 4, "split": "train", "loss": 1.0},
        changed=["--lr", "0.1"],
    )  # fmt: skip
    train = [r["step"] for r in recs if r["split"] == "train"]
    valid = [r["step"] for r in recs if r["split"] == "valid"]
    assert train == [1, 2, 3, 4, 5, 6] and valid == [0, 2, 4, 6]
    # The interrupted run ends where an uninterrupted one does.
    assert [r["step"] for r in ref_recs] == [r["step"] for r in recs]
    for a, b in zip(recs, ref_recs, strict=True):
        assert a.get("loss", a.get("elbo")) == pytest.approx(b.get("loss", b.get("elbo")), rel=1e-4)


def test_resume_refuses_other_data_but_takes_a_moved_copy(tmp_path, capsys):
    # --data is free on resume (a moved file), so a run resumed on another data
    # set went on and was recorded as one run on the new file.
    gen = ["generate", "--num-train", "40", "--num-valid", "10", "--num-test", "10"]
    gen += ["--num-vertices", "4", "--num-timesteps", "5", "--no-progress"]
    a, b, out = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "run"
    assert main([*gen, "--out", str(a)]) == 0
    assert main([*gen, "--data-seed", "7", "--out", str(b)]) == 0
    run = ["train", "--smoke", "--no-progress", "--out", str(out)]
    assert main([*run, "--data", str(a), "--stop-after", "2"]) == 0
    capsys.readouterr()
    APP.fail(capsys, [*run, "--data", str(b), "--resume"], "holds other data than the run")
    (tmp_path / "moved.npz").write_bytes(a.read_bytes())
    assert main([*run, "--data", str(tmp_path / "moved.npz"), "--resume"]) == 0


def test_bad_input_one_line_errors(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for command in ("train", "quickstart"):  # was a FileExistsError naming no flag
        APP.fail(capsys, [command, "--smoke", "--out", str(afile)], "is a file, not a folder")
    APP.fail(capsys, ["generate", "--out", str(tmp_path)], "is a folder; give the .npz file")
    for command in ("quickstart", "reproduce"):  # they had no --device
        APP.fail(capsys, [command, "--smoke", "--device", "cuda"], "CUDA is not available")
    APP.fail(
        capsys, ["train", "--smoke", "--out", str(tmp_path / "a"), "--resume"], "no checkpoint"
    )
    APP.fail(
        capsys,
        ["train", "--smoke", "--method", "tree-magic", "--out", str(tmp_path)],
        "unknown method",
    )
    APP.fail(
        capsys,
        [
            "train",
            "--smoke",
            "--method",
            "tree-reinforce",
            "--straight-through",
            "--out",
            str(tmp_path),
        ],
        "score-function",
    )
    APP.fail(
        capsys,
        ["train", "--smoke", "--method", "tree-st-sst", "--straight-through"],
        "'tree-st-sst' is already straight-through: drop --straight-through",
    )
    APP.fail(
        capsys,
        ["train", "--smoke", "--method", "tree-imle", "--straight-through"],
        "not to the perturb-and-MAP method 'tree-imle'",
    )
    APP.fail(capsys, ["train", "--smoke", "--method", "tree-sst", "--symmetric"], "--symmetric")
    APP.fail(
        capsys, ["train", "--smoke", "--method", "tree-sst", "--num-samples", "2"], "score-function"
    )
    # The leave-one-out baseline needs two draws: was a ValueError (exit 1).
    loo = ["--method", "tree-e-reinforce+", "--num-samples", "1", "--out", str(tmp_path / "l")]
    APP.fail(
        capsys, ["train", "--smoke", *loo], "--num-samples must be >= 2 for 'tree-e-reinforce+'"
    )
    APP.fail(capsys, ["sweep", "--smoke", "--methods", *loo[1:]], "--num-samples must be >= 2")
    # A refused setting left the smoke data set behind in the new --out folder.
    soft = ["--smoke", "--soft-steps", "3", "--out", str(tmp_path / "soft")]
    for command in (["train", "--method", "indep"], ["sweep", "--methods", "indep"]):
        APP.fail(capsys, [*command, *soft], "--soft-steps applies with --straight-through only")
        assert not (tmp_path / "soft").exists()
    APP.fail(capsys, ["train", "--data", str(tmp_path / "none.npz")], "not found")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    APP.fail(
        capsys,
        ["train", "--data", str(bad)],
        "not a structgrad data file (expected an .npz written by `generate`)",
    )
    APP.fail(capsys, ["train"], "--data is required")
    APP.fail(capsys, ["train", "--smoke", "--iterations", "0"], "must be >= 1")
    APP.fail(capsys, ["frobnicate"], "invalid choice")
    APP.sweep_errors(capsys, tmp_path / "s")
    # every run failed on it, one by one, before the sweep said so (exit 1)
    missing = ["sweep", "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "m")]
    APP.fail(capsys, missing, "none.npz' does not exist")


test_every_flag_has_help = APP.help_test()


def test_sweep_smoke_checks_each_swept_method(tmp_path, capsys):
    # The check before the smoke data took the default method (tree-sst), not
    # the swept ones: a valid indep-only setting was refused.
    argv = ["sweep", "--smoke", "--methods", "indep", "--kl", "categorical", "--trials", "1",
            "--seeds", "0", "--n-jobs", "1", "--out", str(tmp_path / "s")]  # fmt: skip
    assert main(argv) == 0
    assert "| indep |" in capsys.readouterr().out


def test_sweep_smoke_threading(tmp_path):
    out = tmp_path / "sweep"
    argv = ["sweep", "--smoke", "--out", str(out), "--methods", "tree-sst", "indep",
            "--trials", "1", "--seeds", "0", "1", "--backend", "threading"]  # fmt: skip
    assert main(argv) == 0
    assert_sweep_outputs(out, rows=2, first="| tree-sst |", runs=4)


def test_quickstart_smoke_subprocess(tmp_path):
    # The main job end to end in its own process (one worker: joblib runs in-process).
    argv = ["quickstart", "--smoke", "--n-jobs", "1", "--seeds", "0", "--out", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, "-m", "nri_graph_layout", *argv],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "| tree-sst |" in proc.stdout and "| indep |" in proc.stdout
    assert "graph.png" in proc.stdout and (tmp_path / "table.md").exists()
    assert_subprocess_error("nri_graph_layout", ["train", "--method", "x", "--smoke"], cwd=tmp_path)


def test_generate_command_round_trip(tmp_path, capsys):
    from nri_graph_layout.data import load

    path = tmp_path / "d.npz"
    argv = ["generate", "--num-train", "6", "--num-valid", "2", "--num-test", "2",
            "--num-vertices", "5", "--num-timesteps", "3", "--out", str(path),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    ds = load(path)
    assert ds.trajectories["train"].shape == (6, 5, 3, 2) and ds.edges["test"].shape == (2, 5, 5)


def test_unknown_backend_is_one_line(tmp_path, capsys):
    argv = ["sweep", "--smoke", "--methods", "indep", "--trials", "1", "--seeds", "0",
            "--backend", "no-such-backend", "--out", str(tmp_path)]  # fmt: skip
    APP.fail(capsys, argv, "joblib backend")
