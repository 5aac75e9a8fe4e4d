import json
import subprocess
import sys

import numpy as np
import pytest
from dvae.cli import build_parser, main
from dvae.methods import method_names
from structgrad_app_common import read_jsonl
from structgrad_app_common.app_checks import AppChecks
from structgrad_app_common.testing import (
    assert_every_flag_has_help,
    assert_png,
    assert_records_match,
    last_checkpoint,
)

APP = AppChecks(main, "dvae", build_parser)


def test_smoke_train_writes_everything(tmp_path, capsys):
    out = tmp_path / "run"
    final = APP.smoke_train(out)
    captured = capsys.readouterr()
    assert json.loads(captured.out) == final
    assert "binarised" in captured.err and "binarised" in final["data"]
    assert final["method"] == "gumbel-softmax" and final["epochs"] == 2
    for key in ("train_loss", "train_loss_hard", "valid_loss", "test_loss", "test_bce", "test_kl"):
        assert np.isfinite(final[key]), key
    assert final["test_loss"] == pytest.approx(final["test_bce"] + final["test_kl"])
    for name in ("curves.png", "reconstructions.png", "samples.png"):
        assert_png(out / name)
    recs = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in recs] == [1, 2]
    assert {"train_loss", "train_loss_hard", "test_loss", "tau"} <= set(recs[0])
    assert json.loads((out / "config.json").read_text())["hidden"] == [32, 16]
    assert last_checkpoint(out)["epoch"] == 2


def test_config_read_back_and_device(tmp_path, capsys):
    argv = ["train", "--smoke", "--epochs", "1", "--method", "sst", "--no-progress"]
    APP.config_and_device(capsys, argv, tmp_path)


def test_config_with_another_method_derives_its_latent_sizes(tmp_path, capsys):
    # config.json holds the resolved sizes: they were read back as given (aimle's
    # k 10 made st fail on --k; gumbel-softmax's 30 x 10 k 1 went to imle).
    def sizes(run):
        saved = json.loads((tmp_path / run / "config.json").read_text())
        return [saved[k] for k in ("latent_m", "latent_n", "k")]

    def train(out, *argv):
        base = ["train", "--smoke", "--epochs", "1", "--no-progress", "--out", str(tmp_path / out)]
        assert main([*base, *argv]) == 0

    train("aimle", "--method", "aimle", "--latent-n", "16")
    train("st", "--config", str(tmp_path / "aimle" / "config.json"), "--method", "st")
    assert sizes("st") == [30, 16, 1]  # the chosen latent_n stays
    train("gs")
    gs = str(tmp_path / "gs" / "config.json")
    train("imle", "--config", gs, "--method", "imle")
    assert sizes("imle") == [20, 20, 10]
    train("imle-m", "--config", gs, "--method", "imle", "--latent-m", "30", "--k", "5")
    assert sizes("imle-m") == [30, 20, 5]  # given sizes stay


@pytest.mark.parametrize("method", [m for m in method_names() if m != "gumbel-softmax"])
def test_smoke_every_method(tmp_path, capsys, method):
    out = tmp_path / method
    argv = ["train", "--smoke", "--method", method, "--out", str(out), "--no-progress"]
    assert main([*argv, "--epochs", "1"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["method"] == method and np.isfinite(final["test_loss"])
    assert_png(out / "samples.png")
    if method.startswith("aimle"):
        assert final["beta"] > 0  # the adaptive β moved away from 0 and was logged
        state = last_checkpoint(out)["model"]
        assert any(k.endswith("target.beta") for k in state)


def test_samples_and_annealing(tmp_path, capsys):
    out = tmp_path / "s"
    argv = ["train", "--smoke", "--method", "sst", "--samples", "3", "--out", str(out)]
    argv += ["--anneal-rate", "0.1", "--anneal-every", "2", "--tau", "2", "--no-progress"]
    assert main(argv) == 0
    taus = [r["tau"] for r in read_jsonl(out / "metrics.jsonl")]
    assert taus[0] < 2 and taus[-1] == pytest.approx(max(2 * np.exp(-0.1 * 8), 0.5))
    assert (
        main(
            [
                "train",
                "--smoke",
                "--method",
                "imle",
                "--samples",
                "2",
                "--out",
                str(tmp_path / "i"),
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()


def test_resume_continues_without_duplicates(tmp_path, capsys):
    args = ["train", "--smoke", "--no-progress", "--epochs", "3", "--method", "aimle"]
    recs, ref_recs = APP.interrupted(
        capsys, args, tmp_path / "run", tmp_path / "ref", unit="epoch",
        stop_after=1, killed={"epoch": 2, "train_loss": 1.0}, changed=["--lr", "0.01"],
    )  # fmt: skip
    assert [r["epoch"] for r in recs] == [1, 2, 3]
    # The interrupted run ends where an uninterrupted one does (AIMLE's β included).
    assert_records_match(recs, ref_recs, ("train_loss", "test_loss", "beta"), rel=1e-5)


def test_user_errors_are_one_line(tmp_path, capsys):
    out = str(tmp_path / "x")
    APP.fail(capsys, ["train", "--smoke", "--out", out, "--resume"], "no checkpoint")
    # Checked before any run (each run failed alone, and the sweep exited 0)
    sweep = ["sweep", "--smoke", "--out", out, "--n-jobs", "1"]
    APP.fail(capsys, [*sweep, "--device", "cuda"], "CUDA is not available")
    APP.fail(capsys, [*sweep, "--seeds", "0", "0"], "seed 0 is listed twice")
    APP.fail(capsys, [*sweep, "--n-jobs", "0"], "got 0")
    APP.fail(capsys, ["train", "--smoke", "--out", out, "--method", "magic"], "unknown method")
    APP.fail(
        capsys,
        ["train", "--smoke", "--out", out, "--data", str(tmp_path / "no.npz")],
        "no such file",
    )
    (tmp_path / "bad.npz").write_text("nope")
    APP.fail(
        capsys,
        ["train", "--smoke", "--out", out, "--data", str(tmp_path / "bad.npz")],
        "is not a structgrad data file (expected an .npz with x_train and x_test",
    )
    APP.fail(capsys, ["train", "--smoke", "--out", out, "--method", "sst", "--k", "20"], "--k must")
    APP.fail(capsys, ["train", "--smoke", "--out", out, "--k", "3"], "k-subset methods only")
    APP.fail(
        capsys,
        ["train", "--smoke", "--out", out, "--method", "imle", "--anneal-rate", "1e-3"],
        "noise temperature",
    )
    APP.fail(capsys, ["train", "--smoke", "--out", out, "--tau", "0"], "--tau must be > 0")
    for step in ("nan", "-1", "inf"):  # was a ValueError from the AIMLE target (exit 1)
        aimle = ["--method", "aimle", "--beta-step", step]
        APP.fail(capsys, ["train", "--smoke", "--out", out, *aimle], "--beta-step must be")
    APP.fail(capsys, ["train", "--smoke", "--out", out, "--epochs", "0"], "must be >= 1")
    APP.fail(capsys, ["train", "--smoke", "--out", out, "--hidden", "a,b"], "sizes")
    APP.fail(capsys, ["train", "--out", out, "--resume", "--overwrite"], "exclude")
    APP.fail(capsys, ["sweep", "--smoke", "--out", out, "--valid-size", "0"], "--valid-size")
    APP.sweep_errors(capsys, out)
    APP.fail(capsys, ["frobnicate"], "invalid choice")


def test_mnist_npz_smoke(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
        x_test=rng.integers(0, 256, (20, 784), dtype=np.uint8),
    )
    out = tmp_path / "m"
    assert (
        main(
            [
                "train",
                "--smoke",
                "--data",
                str(path),
                "--method",
                "st",
                "--out",
                str(out),
                "--batch-size",
                "20",
                "--no-progress",
            ]
        )
        == 0
    )
    final = json.loads(capsys.readouterr().out)
    assert "28x28" in final["data"] and "grey levels" in final["data"]
    assert final["valid_loss"] is None  # no validation split by default for MNIST
    assert_png(out / "reconstructions.png")


def test_sweep_smoke(tmp_path, capsys):
    out = tmp_path / "sw"
    argv = [
        "sweep",
        "--smoke",
        "--methods",
        "gumbel-softmax",
        "imle",
        "--trials",
        "2",
        "--seeds",
        "0",
        "1",
        "--epochs",
        "1",
        "--n-jobs",
        "1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| gumbel-softmax |" in text and "| imle |" in text and "±" in text
    assert (out / "table.md").is_file() and len(read_jsonl(out / "sweep.jsonl")) == 8
    summary = json.loads((out / "summary.json").read_text())
    assert [r["method"] for r in summary] == ["gumbel-softmax", "imle"]
    assert all(r["n"] == 2 for r in summary)
    assert main(["epochs", str(out / "imle" / "trial1")]) == 0
    table = capsys.readouterr().out
    assert "| epoch |" in table and "test (2 seeds)" in table and "\n| 1 |" in table
    APP.fail(capsys, ["epochs", str(tmp_path)], "no seed*/metrics.jsonl")


def test_help_explains_every_flag():
    assert_every_flag_has_help(build_parser())
    res = subprocess.run(
        [sys.executable, "-m", "dvae", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--resume" in res.stdout and "--aimle-difference" in res.stdout


@pytest.mark.parametrize(
    ("old", "difference"), [("aimle-forward", "forward"), ("aimle-central", "central")]
)
def test_renamed_aimle_methods_name_the_new_spelling(tmp_path, capsys, old, difference):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--smoke", "--no-progress", "--method", old, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"is now 'aimle' with --aimle-difference {difference}" in err
    # the sweep said "unknown method"
    sweep = ["sweep", "--smoke", "--methods", old, "--out", str(tmp_path / "s")]
    APP.fail(capsys, sweep, f"is now 'aimle' with --aimle-difference {difference}")
    from dvae.config import TrainConfig
    from dvae.methods import build_layer

    config = TrainConfig(str(tmp_path), method="aimle", aimle_difference=difference)
    layer = build_layer(config.resolved())
    assert layer.gradient.central == (difference == "central")


def test_a_diverging_run_says_why(tmp_path):
    argv = ["train", "--smoke", "--no-progress", "--lr", "1e38"]
    APP.stops_with_reason(argv, tmp_path / "run", "update overflowed at step 1")


def test_epochs_shows_missing_fields_as_na(tmp_path, capsys):
    # A record without train_loss_hard (an older or edited log) was a KeyError.
    (tmp_path / "seed0").mkdir()
    record = {"epoch": 1, "train_loss": 1.0, "test_loss": 2.0}
    (tmp_path / "seed0" / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    assert main(["epochs", str(tmp_path)]) == 0
    assert "| 1 | 1 | n/a | 2 |" in capsys.readouterr().out
