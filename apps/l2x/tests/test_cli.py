import json

import pytest
from l2x.cli import build_parser, main
from l2x.methods import method_names
from structgrad_app_common import read_jsonl
from structgrad_app_common.app_checks import AppChecks
from structgrad_app_common.testing import (
    assert_files,
    assert_records_match,
    assert_sweep_outputs,
    last_checkpoint,
)

TINY = ["--smoke", "--no-progress", "--num-train", "96", "--num-valid", "32", "--num-test", "64"]
APP = AppChecks(main, "l2x", build_parser)


def test_smoke_train_writes_everything(tmp_path, capsys):
    out = tmp_path / "run"
    final = APP.smoke_train(out)
    assert final["task"] == "orange_skin" and final["k"] == 4 and final["epochs"] == 2
    for key in ("test_accuracy", "test_precision", "test_median_rank", "test_loss"):
        assert isinstance(final[key], float)
    assert 2.5 <= final["test_median_rank"] <= 8.5 and len(final["test_frequency"]) == 10
    assert_files(out, ("metrics.jsonl", "curves.png", "selection.png", "best.pt", "last.pt"))
    assert [r["epoch"] for r in read_jsonl(out / "metrics.jsonl")] == [1, 2]
    assert json.loads(capsys.readouterr().out)["method"] == "sst"
    assert last_checkpoint(out)["epoch"] == 2
    assert main(["eval", "--run", str(out)]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["test_accuracy"] == pytest.approx(final["test_accuracy"])
    APP.fail(capsys, ["eval", "--run", str(out), "--device", "cuda"], "CUDA is not available")
    saved = json.loads((out / "config.json").read_text())
    assert saved["app"] == "l2x"
    (out / "config.json").write_text(json.dumps({**saved, "app": "dvae"}))
    APP.fail(capsys, ["eval", "--run", str(out)], "written by 'dvae', not l2x")


@pytest.mark.parametrize("method", method_names())
def test_smoke_every_method(tmp_path, method):
    out = tmp_path / method
    argv = ["train", *TINY, "--task", "switch", "--method", method, "--out", str(out)]
    assert main(argv) == 0
    final = json.loads((out / "final.json").read_text())
    assert final["method"] == method and final["k"] == 5 and not final["diverged"]


def test_config_read_back_and_device(tmp_path, capsys):
    argv = ["train", *TINY, "--task", "xor", "--method", "imle", "--epochs", "1"]
    APP.config_and_device(capsys, argv, tmp_path)


def test_resume_continues_without_duplicates(tmp_path, capsys):
    args = ["train", *TINY, "--task", "xor", "--method", "aimle", "--epochs", "3"]
    recs, ref_recs = APP.interrupted(
        capsys, args, tmp_path / "run", tmp_path / "ref", unit="epoch",
        stop_after=1, killed={"epoch": 2, "train_loss": 1.0}, changed=["--lr", "0.1"],
    )  # fmt: skip
    assert [r["epoch"] for r in recs] == [1, 2, 3]
    # The interrupted run ends where an uninterrupted one does (AIMLE's β included).
    assert_records_match(recs, ref_recs, ("train_loss", "valid_loss"), rel=1e-5)


def test_beer_smoke_and_eval(tmp_path, beer_folder, capsys):
    folder, out = beer_folder(), tmp_path / "beer-run"
    argv = [
        "train",
        "--task",
        "beer",
        "--data",
        str(folder),
        "--max-len",
        "12",
        "--k",
        "3",
        "--method",
        "imle",
        "--smoke",
        "--no-progress",
        "--batch-size",
        "8",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["task"] == "beer" and final["k"] == 3
    assert 0 <= final["test_subset_precision"] <= 1 and final["test_mse"] >= 0
    assert (out / "curves.png").exists() and not (out / "selection.png").exists()
    assert main(["eval", "--run", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["test_mse"] == pytest.approx(final["test_mse"])
    (folder / "annotations.json").unlink()
    APP.fail(capsys, ["eval", "--run", str(out)], "file not found")


def test_bad_input_one_line_errors(tmp_path, capsys):
    o = ["--out", str(tmp_path / "x")]
    APP.fail(capsys, ["train", "--smoke", *o, "--resume"], "no checkpoint")
    APP.fail(capsys, ["train", "--smoke", *o, "--method", "magic"], "unknown method")
    # A sweep whose every run fails exits 1 (it exited 0 on a table of failures);
    # here every run finds no BeerAdvocate files in --data
    sweep = ["sweep", "--smoke", "--tasks", "beer", "--methods", "sst", "--trials", "1"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*sweep, "--seeds", "0", "--n-jobs", "1", *o, "--data", str(empty)]) == 1
    assert "every run of the sweep failed" in capsys.readouterr().err
    # BatchNorm cannot train on one item (it crashed mid-run)
    APP.fail(capsys, ["train", "--smoke", *o, "--num-train", "1"], "--num-train must be >= 2")
    APP.fail(capsys, ["train", "--smoke", *o, "--task", "spiral"], "unknown task")
    APP.fail(capsys, ["train", "--smoke", *o, "--task", "beer"], "--data is required")
    APP.fail(
        capsys,
        ["train", "--smoke", *o, "--task", "beer", "--data", str(tmp_path / "no")],
        "is not a folder",
    )
    APP.fail(capsys, ["train", "--smoke", *o, "--data", str(tmp_path)], "beer task only")
    APP.fail(capsys, ["train", "--smoke", *o, "--method", "ste", "--lam", "3"], "--lam")
    APP.fail(
        capsys,
        ["train", "--smoke", *o, "--method", "imle", "--aimle-difference", "central"],
        "aimle only",
    )
    APP.fail(
        capsys, ["train", "--smoke", *o, "--method", "sst", "--num-samples", "2"], "score-function"
    )
    APP.fail(capsys, ["train", "--smoke", *o, "--method", "blackbox", "--tau", "1"], "--tau")
    # The leave-one-out baseline needs two draws: was a ValueError (exit 1).
    loo = ["--method", "e-reinforce+", "--num-samples", "1"]
    APP.fail(capsys, ["train", "--smoke", *o, *loo], "--num-samples must be >= 2")
    APP.fail(capsys, ["sweep", "--smoke", *o, "--methods", *loo[1:]], "--num-samples must be >= 2")
    APP.fail(capsys, ["train", "--smoke", *o, "--k", "10"], "--k must be in [1, 9]")
    APP.fail(capsys, ["train", "--smoke", *o, "--epochs", "0"], "must be >= 1")
    APP.fail(capsys, ["train", "--smoke", *o, "--lam", "nan"], "--lam must be > 0, got nan")
    APP.fail(capsys, ["train", "--smoke", *o, "--resume", "--overwrite"], "exclude each other")
    APP.fail(capsys, ["eval", "--run", str(tmp_path)], "holds no run")
    APP.fail(capsys, ["frobnicate"], "invalid choice")
    APP.sweep_errors(capsys, tmp_path / "s")


test_every_flag_has_help = APP.help_test()


def test_every_score_function_method_takes_num_samples():
    """The score-function methods come from ``structgrad.models.method_info``, not a table."""
    from l2x.methods import method_names, resolve

    from structgrad.models import method_info

    score = [
        m for m in method_names() if m not in ("softsub", "l2x") and not method_info(m).pathwise
    ]
    assert {"reinforce", "e-reinforce", "t-reinforce", "e-reinforce+", "relax"} <= set(score)
    for name in score:
        assert resolve(name, k=2, n=5, num_samples=3).options["samples"] == 3


def test_sweep_smoke_threading(tmp_path):
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        *TINY[:1],
        *TINY[2:],
        "--out",
        str(out),
        "--tasks",
        "xor",
        "--methods",
        "sst",
        "ste",
        "--trials",
        "2",
        "--seeds",
        "0",
        "1",
        "--tau-range",
        "0.3,3",
        "--backend",
        "threading",
    ]
    assert main(argv) == 0
    assert_sweep_outputs(out, rows=2, first="| xor | sst |", runs=8)


def test_a_diverging_run_says_why(tmp_path):
    argv = ["train", "--smoke", "--no-progress", "--lr", "1e38"]
    APP.stops_with_reason(argv, tmp_path / "run", "update overflowed at step 1")


def test_eval_checks_the_saved_config_like_config(tmp_path, capsys):
    # eval --run read config.json with TrainConfig(**saved): a hand-edited
    # "data_seed": 0.5 or "k": "many" reached numpy / the model as a TypeError.
    out = tmp_path / "run"
    APP.smoke_train(out, "--epochs", "1")
    capsys.readouterr()
    saved = json.loads((out / "config.json").read_text())
    for key, value in (("data_seed", 0.5), ("k", "many"), ("k", 3.5)):
        (out / "config.json").write_text(json.dumps({**saved, key: value}))
        APP.fail(capsys, ["eval", "--run", str(out)], f"setting {key!r}")
    # A number saved as text is read as --config reads it.
    (out / "config.json").write_text(json.dumps({**saved, "k": "3"}))
    assert main(["eval", "--run", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["run"] == str(out)


def test_a_sweep_gives_data_to_the_beer_runs_only(tmp_path, capsys, beer_folder):
    # With --data every synthetic run failed ("--data applies to the beer task
    # only"), without it every beer run; the sweep went on and exited 0.
    folder = beer_folder()
    argv = ["sweep", "--smoke", "--methods", "sst", "--trials", "1", "--seeds", "0"]
    argv += ["--n-jobs", "1"]
    mixed = [*argv, "--tasks", "xor", "beer", "--out", str(tmp_path / "mix")]
    assert main([*mixed, "--data", str(folder)]) == 0
    printed = capsys.readouterr().out
    assert "| xor | sst |" in printed and "| beer | sst |" in printed and "failed" not in printed
    # Refused before any run: beer without --data, --data without beer.
    APP.fail(capsys, [*argv, "--tasks", "xor", "beer"], "--data is required for the beer task")
    APP.fail(capsys, [*argv, "--tasks", "xor", "--data", str(folder)], "beer task only")


def test_a_beer_folder_with_a_new_file_still_resumes(tmp_path, capsys, beer_folder):
    # Only a --data file is digested for --resume: a folder may hold what the run
    # does not read (other aspects, notes), and a digest of it refused the resume.
    folder = beer_folder()
    run = ["train", "--task", "beer", "--data", str(folder), "--epochs", "2", "--smoke"]
    run += ["--no-progress", "--out", str(tmp_path / "run")]
    assert main([*run, "--stop-after", "1"]) == 0
    (folder / "README.txt").write_text("notes\n")
    assert main([*run, "--resume"]) == 0
