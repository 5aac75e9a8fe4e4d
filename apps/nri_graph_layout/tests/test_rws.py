"""The reweighted wake-sleep refinement: its gradient, weights and switch in train."""

import math

import pytest
import torch
from nri_graph_layout import rws as rws_mod
from nri_graph_layout.cli import main
from nri_graph_layout.methods import resolve
from nri_graph_layout.model import GraphLayoutModel
from structgrad_app_common import read_jsonl
from structgrad_app_common.app_checks import AppChecks

from structgrad.distributions import SpanningTree
from structgrad.models.nri import as_edge_types

APP = AppChecks(main, "nri_graph_layout")


def _model(graph: str = "tree-sst") -> GraphLayoutModel:
    torch.manual_seed(0)
    spec = resolve(graph, n_nodes=5, tau=1.0)
    return GraphLayoutModel(spec, 5, 4, encoder_hidden=8, decoder_hidden=8)


@pytest.mark.parametrize("var", [5e-5, 0.5])  # 0.5: NLL gaps of O(1), weights not one-hot
def test_encoder_gradient_is_the_crf_gradient_of_the_weighted_trees(monkeypatch, var):
    model = _model()
    model.var = var
    x = torch.randn(3, 5, 4, 2, generator=torch.Generator().manual_seed(1))
    seen = {}
    real_sample, real_scores = SpanningTree.sample, model.scores

    def sample(self, shape, **kwargs):
        seen["trees"] = real_sample(self, shape, **kwargs)
        return seen["trees"]

    def scores(xx):
        theta, kl_logits, base = real_scores(xx)
        theta.retain_grad()
        seen["theta"] = theta
        return theta, kl_logits, base

    monkeypatch.setattr(SpanningTree, "sample", sample)
    monkeypatch.setattr(model, "scores", scores)
    out = rws_mod.rws_step(model, x, samples=6, pred_steps=2, generator=torch.Generator())
    # The decoder term has no path to θ (the chosen trees are discrete), so θ's
    # gradient is the encoder's: d/dθ −Σ_k w_k log q(T_k) = marginals − Σ_k w_k T_k.
    out.loss.sum().backward()
    theta, trees = seen["theta"], seen["trees"]
    with torch.no_grad():
        q = SpanningTree(theta.double())
        log_q = q.structure.score(q.logits, trees) - q.log_partition
        # log p(x|T): the decoder's Gaussian log-likelihood over every node, step
        # and dim (model._nll is per node, NRI's normalisation: not the weight).
        edges = model.to_edges(trees.to(theta.dtype))  # [K, B, E]
        types = as_edge_types(edges.reshape(-1, edges.shape[-1]), 2)
        xs = x.repeat(trees.shape[0], 1, 1, 1)
        pred = model.decoder(xs, types, 1)
        sq = (pred - xs[:, :, 1:]).double().square() / (2 * model.var)
        log_p = -sq.sum((1, 2, 3)).reshape(trees.shape[0], -1)
        w = torch.softmax(log_p - log_q, dim=0)
        want = q.marginals - (w[..., None, None] * trees).sum(0)
    got = theta.grad.double()  # on the upper triangle, the mirror, or split between them
    torch.testing.assert_close(
        (got + got.transpose(-1, -2)).triu(1), want.triu(1), atol=1e-6, rtol=1e-5
    )
    assert (w.sum(0) - 1).abs().max() < 1e-12
    if var > 1e-3:
        assert w.max() < 0.99  # the check above saw weights that are not one-hot


def test_weights_pick_the_tree_the_decoder_explains_best(monkeypatch):
    model = _model()
    x = torch.randn(2, 5, 4, 2, generator=torch.Generator().manual_seed(2))
    seen = {}
    real = model._nll

    def spy(xx, edges, steps):
        out = real(xx, edges, steps)
        if steps == 1:
            seen["tf"] = out
        else:
            seen["chosen"] = edges
        return out

    monkeypatch.setattr(model, "_nll", spy)
    rws_mod.rws_step(model, x, samples=5, pred_steps=3, generator=torch.Generator().manual_seed(3))
    # At NLL gaps of nats to hundreds of nats the weights are one-hot: the decoder
    # trains on the best-explained tree of each graph.
    assert seen["chosen"].shape == (2, 20)
    assert torch.isfinite(seen["tf"]).all()


@pytest.mark.parametrize("method", ["topk-sst", "indep"])
def test_rws_on_top_k_and_independent_edges(method):
    model = _model(method)
    x = torch.randn(3, 5, 4, 2, generator=torch.Generator().manual_seed(4))
    out = rws_mod.rws_step(model, x, samples=4, pred_steps=2, generator=torch.Generator())
    out.loss.sum().backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert out.loss.shape == out.nll.shape == (3,)


def test_train_switches_to_rws_after_the_step(tmp_path, monkeypatch):
    calls = []
    real = rws_mod.rws_step

    def spy(*args, **kwargs):
        calls.append(kwargs["samples"])
        return real(*args, **kwargs)

    monkeypatch.setattr("nri_graph_layout.train.rws_step", spy)
    out = tmp_path / "r"
    argv = ["train", "--smoke", "--out", str(out), "--no-progress", "--straight-through",
            "--iterations", "5", "--rws-after", "3", "--rws-samples", "3"]  # fmt: skip
    assert main(argv) == 0
    assert calls == [3, 3]
    train = [r for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "train"]
    assert all(math.isfinite(r["loss"]) for r in train)


def test_rws_flag_errors(tmp_path, capsys):
    base = ["train", "--smoke", "--out", str(tmp_path / "r"), "--no-progress"]
    APP.fail(capsys, [*base, "--rws-after", "-1"], "--rws-after must be >= 0")
    APP.fail(capsys, [*base, "--rws-samples", "1"], "--rws-samples must be >= 2")


def test_the_rws_phase_starts_from_fresh_adam_moments(tmp_path):
    out = tmp_path / "r"
    argv = ["train", "--smoke", "--out", str(out), "--no-progress", "--straight-through",
            "--iterations", "5", "--rws-after", "3", "--rws-samples", "2"]  # fmt: skip
    assert main(argv) == 0
    state = torch.load(out / "last.pt", weights_only=True)["optimizer"]["state"]
    # Two wake-sleep steps since the moments were cleared at step 4, not five.
    assert {int(s["step"]) for s in state.values()} == {2}
