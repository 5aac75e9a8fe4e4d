"""The recipe's pieces: τ annealing, the KL-optimal shift, checkpoint criteria, stops."""

import json
import math
from pathlib import Path

import pytest
import torch
from nri_graph_layout import model as model_mod
from nri_graph_layout.cli import main
from nri_graph_layout.config import TrainConfig
from nri_graph_layout.model import kl_optimal_shift
from nri_graph_layout.reproduce import run_seed
from nri_graph_layout.train import default_prediction_steps
from structgrad_app_common import read_jsonl
from structgrad_app_common.app_checks import AppChecks

from structgrad.models.nri import kl_gumbel
from structgrad.relaxations import spanning_tree_marginals

APP = AppChecks(main, "nri_graph_layout")


def test_tau_anneals_geometrically_then_stays():
    config = TrainConfig(data="d", out="o", tau=2.0, tau_final=0.5, anneal_steps=100)
    assert config.tau_at(0) == pytest.approx(2.0)
    assert config.tau_at(50) == pytest.approx(1.0)  # the geometric mean
    assert config.tau_at(100) == config.tau_at(10_000) == pytest.approx(0.5)
    assert TrainConfig(data="d", out="o", tau=3.0).tau_at(500) == 3.0
    lr = TrainConfig(data="d", out="o", lr=1e-2, lr_final=1e-4, lr_decay_steps=10)
    assert [lr.lr_at(s) for s in (0, 5, 10, 99)] == pytest.approx([1e-2, 1e-3, 1e-4, 1e-4])


def test_lr_decay_reaches_the_optimiser(tmp_path):
    out = tmp_path / "r"
    argv = ["train", "--smoke", "--out", str(out), "--no-progress", "--lr", "0.01",
            "--lr-final", "0.0001", "--lr-decay-steps", "4"]  # fmt: skip
    assert main(argv) == 0
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-4)


def test_kl_optimal_shift_minimises_the_kl_and_keeps_the_law():
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(4, 45, generator=gen, dtype=torch.float64) * 30 + 200  # drifted scores
    c = kl_optimal_shift(theta)
    best = kl_gumbel(theta + c[:, None], 1)
    for delta in (-1e-3, 1e-3, -1.0, 1.0):
        assert (kl_gumbel(theta + (c + delta)[:, None], 1) > best).all()
    # The derivative vanishes: Σ_e (1 − e^{−θ_e − c}) = 0.
    assert (1 - torch.exp(-(theta + c[:, None]))).sum(-1).abs().max() < 1e-9
    # The tree law ignores the shift.
    mat = torch.zeros(4, 10, 10, dtype=torch.float64)
    rows, cols = torch.triu_indices(10, 10, 1)
    mat[:, rows, cols] = theta
    shifted = mat.clone()
    shifted[:, rows, cols] += c[:, None]
    torch.testing.assert_close(spanning_tree_marginals(mat), spanning_tree_marginals(shifted))
    # Far scores: finite (log-space).
    assert torch.isfinite(kl_optimal_shift(torch.tensor([[-1e4, 1e4, 0.0]]))).all()


def test_soft_steps_switch_to_straight_through(tmp_path, monkeypatch):
    seen = []
    real = model_mod.GraphLayoutModel.forward

    def spy(self, *args, **kwargs):
        seen.append(self.latent.straight_through)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(model_mod.GraphLayoutModel, "forward", spy)
    argv = ["train", "--smoke", "--out", str(tmp_path / "r"), "--no-progress",
            "--straight-through", "--soft-steps", "2"]  # fmt: skip
    assert main(argv) == 0
    assert seen == [False, False, True, True]


def test_recipe_flags_train_and_select_by_nll(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--smoke", "--out", str(out), "--no-progress", "--straight-through",
            "--tau", "2", "--tau-final", "0.5", "--anneal-steps", "2", "--kl-shift",
            "--decoder-edges", "base", "--select", "nll", "--iterations", "6"]  # fmt: skip
    assert main(argv) == 0
    final = json.loads((out / "final.json").read_text())
    valid = [r for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "valid"]
    chosen = min(valid, key=lambda r: r["nll"])
    assert final["best_step"] == chosen["step"] and final["valid_nll"] == chosen["nll"]
    assert final["select"] == "nll" and final["stopped"] is None
    assert 0.0 <= final["test_map_precision"] <= 1.0
    for r in valid:  # the noise-free MAP graph is scored at every evaluation
        assert 0.0 <= r["map_precision"] <= 1.0


def test_a_non_finite_loss_stops_the_run_on_its_best_checkpoint(tmp_path, monkeypatch, capsys):
    calls = {"n": 0}
    real = model_mod.GraphLayoutModel.forward

    def poisoned(self, *args, **kwargs):
        res = real(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            res.loss = res.loss * math.nan
        return res

    monkeypatch.setattr(model_mod.GraphLayoutModel, "forward", poisoned)
    out = tmp_path / "run"
    final = APP.smoke_train(out)
    assert final["diverged"] and "training loss not finite at step 3" in final["stopped"]
    assert final["best_step"] == 2 and math.isfinite(final["test_elbo"])
    assert "stopped: training loss not finite" in capsys.readouterr().err
    for r in read_jsonl(out / "metrics.jsonl"):  # no null metrics
        assert None not in r.values()


def test_a_non_finite_validation_stops_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(model_mod, "kl_gumbel", lambda logits, n: logits.sum((1, 2)) * math.inf)
    APP.fail(
        capsys,
        ["train", "--smoke", "--out", str(tmp_path / "r"), "--no-progress"],
        "validation elbo, kl not finite at step 0",
    )


def test_recipe_flag_errors(tmp_path, capsys):
    APP.fail(capsys, ["train", "--smoke", "--tau-final", "0"], "--tau-final")
    APP.fail(capsys, ["train", "--smoke", "--lr-final", "-1"], "--lr-final")
    APP.fail(capsys, ["train", "--smoke", "--select", "luck"], "invalid choice")
    APP.fail(capsys, ["train", "--smoke", "--soft-steps", "3"], "--straight-through")
    APP.fail(capsys, ["train", "--smoke", "--straight-through", "--soft-steps", "-1"], ">= 0")
    APP.fail(capsys, ["train", "--smoke", "--decoder-edges", "none"], "invalid choice")
    APP.fail(
        capsys,
        ["train", "--smoke", "--method", "tree-reinforce", "--tau-final", "0.5",
         "--out", str(tmp_path / "r")],
        "has none",
    )  # fmt: skip


def test_reproduce_smoke_writes_the_table_and_resumes(tmp_path, capsys):
    out = tmp_path / "rep"
    argv = ["reproduce", "--smoke", "--out", str(out), "--methods", "tree-sst", "indep",
            "--seeds", "0", "1", "--n-jobs", "1"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| tree-sst |" in printed and "| indep |" in printed and "≥ 0.9" in printed
    rows = json.loads((out / "table.json").read_text())
    assert [(r["method"], r["seed"]) for r in rows] == [
        ("tree-sst", 0), ("tree-sst", 1), ("indep", 0), ("indep", 1)
    ]  # fmt: skip
    for r in rows:
        for key in ("edge_precision", "edge_recall", "elbo", "seconds"):
            assert isinstance(r[key], float) and math.isfinite(r[key])
        # The kept restart is the one with the lowest validation NLL after its warm-up.
        starts = sorted((out / r["method"] / f"seed{r['seed']}").glob("start*"))
        assert len(starts) == 2
        nll = [[v for v in read_jsonl(s / "metrics.jsonl") if v["split"] == "valid"]
               for s in starts]  # fmt: skip
        warm = [next(v["nll"] for v in recs if v["step"] == 2) for recs in nll]
        assert r["start"] == warm.index(min(warm))
        assert json.loads((starts[r["start"]] / "final.json").read_text())["steps"] == 4
    assert (out / "precision.png").stat().st_size > 0 and (out / "table.md").exists()
    # Run again: every run resumes from its checkpoint and the table is the same.
    assert main(argv) == 0
    again = json.loads((out / "table.json").read_text())
    assert [r["edge_precision"] for r in again] == [r["edge_precision"] for r in rows]


def test_reproduce_errors(tmp_path, capsys):
    APP.fail(capsys, ["reproduce", "--smoke", "--methods", "tree-magic"], "unknown method")
    APP.fail(
        capsys,
        ["reproduce", "--iterations", "5", "--warmup", "10", "--out", str(tmp_path)],
        "--warmup",
    )


def test_reproduce_refuses_runs_trained_on_other_data(tmp_path, capsys):
    # They used to resume (``data`` is free on --resume) and were scored on the
    # new test set under the new data seed's name.
    out = tmp_path / "rep"
    argv = ["reproduce", "--smoke", "--out", str(out), "--methods", "indep", "--seeds", "0",
            "--n-jobs", "1", "--restarts", "1"]  # fmt: skip
    assert main(argv) == 0
    APP.fail(capsys, [*argv, "--data-seed", "7"], "(another --data-seed, 7 now, or recipe)")
    assert not list(out.glob("*seed7.npz"))  # refused before any work
    assert main(argv) == 0  # the same data seed still resumes
    # Fewer iterations than the runs had: their (longer) results were reported.
    APP.fail(capsys, [*argv, "--iterations", "3"], "was trained for 4 iterations, more than")
    assert main([*argv, "--iterations", "6"]) == 0  # more: they train on


def test_reproduce_smoke_keeps_the_given_flags(tmp_path, capsys):
    out = tmp_path / "qs"
    argv = ["quickstart", "--smoke", "--out", str(out), "--n-jobs", "1",
            "--iterations", "6", "--restarts", "1"]  # fmt: skip
    assert main(argv) == 0
    assert [p.name for p in (out / "tree-sst" / "seed0").iterdir()] == ["start0"]
    rows = json.loads((out / "table.json").read_text())
    assert [json.loads((Path(r["out"]) / "final.json").read_text())["steps"] for r in rows] == [
        6,
        6,
    ]


def test_reproduce_takes_the_largest_seed(tmp_path):
    # seed * 1000 + start and the derived generators' seed * 1_000_003 + index
    # overflowed torch's 64-bit seed (exit 1) for seeds above about 1.8e13.
    big = str(2**63 - 1)
    argv = ["reproduce", "--smoke", "--out", str(tmp_path), "--methods", "indep", "--seeds", big,
            "--n-jobs", "1", "--restarts", "1", "--iterations", "2"]  # fmt: skip
    assert main(argv) == 0
    assert run_seed(0, 2) == 2 and run_seed(2**50, 1) == 2**50 * 1000 + 1  # unchanged
    assert 0 <= run_seed(2**63 - 1, 1) < 2**63


def test_default_rollout_is_the_reference_recipes() -> None:
    # The reference trains with 9 steps at T = 10 and 10 at T = 20 (T - 1 gave 19).
    assert [default_prediction_steps(t) for t in (2, 5, 10, 11, 20, 49)] == [1, 4, 9, 10, 10, 10]
