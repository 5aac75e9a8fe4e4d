"""Nonsense options and constructor arguments: each call must raise a clean error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import structgrad.distributions as D
import structgrad.estimators as E
import structgrad.models as M
import structgrad.relaxations as R

__all__ = ["NONSENSE"]

NAN, INF = float("nan"), float("inf")


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def _layer(structure: str, method: str, **options: Any) -> Callable[[], Any]:
    return lambda: M.latent(structure, method, **options)


def _call(make: Callable[[], Any], x: torch.Tensor, **kw: Any) -> Callable[[], Any]:
    return lambda: make()(x, **kw)


#: label -> a call that must raise a clean ValueError / TypeError.
NONSENSE: dict[str, Callable[[], Any]] = {
    "UtilityCritic(())": lambda: E.UtilityCritic(()),
    "UtilityCritic(hidden=0)": lambda: E.UtilityCritic((5,), hidden=0),
    "UtilityCritic((0,))": lambda: E.UtilityCritic((0,)),
    "Target(lam=0)": lambda: E.Target(lam=0.0),
    "Target(lam=nan)": lambda: E.Target(lam=NAN),
    "Target(lam=inf)": lambda: E.Target(lam=INF),
    "Target(alpha=nan)": lambda: E.Target(alpha=NAN),
    "AdaptiveTarget(target_nnz=-1)": lambda: E.AdaptiveTarget(target_nnz=-1.0),
    "AdaptiveTarget(beta=nan)": lambda: E.AdaptiveTarget(beta=NAN),
    "AdaptiveTarget(step=inf)": lambda: E.AdaptiveTarget(step=INF),
    "AdaptiveTarget(alpha=nan)": lambda: E.AdaptiveTarget(alpha=NAN),
    "Gumbel(loc=nan)": lambda: E.Gumbel(loc=NAN),
    "Gumbel(scale=0)": lambda: E.Gumbel(scale=0.0),
    "Normal(std=0)": lambda: E.Normal(std=0.0),
    "Normal(std=nan)": lambda: E.Normal(std=NAN),
    "SumOfGamma(k=nan)": lambda: E.SumOfGamma(k=NAN),
    "SumOfGamma(terms=0)": lambda: E.SumOfGamma(terms=0),
    "imle(k_subset, root=1)": lambda: E.imle("k_subset", k=2, root=1),
    "imle(samples=0)": lambda: E.imle("k_subset", k=2, samples=0),
    "imle(samples=True)": lambda: E.imle("k_subset", k=2, samples=True),
    "imle(marginal_samples=0)": lambda: E.imle("k_subset", k=2, marginal_samples=0),
    "imle(reduce=sum)": lambda: E.imle("k_subset", k=2, reduce="sum"),
    "imle(tau=nan)": lambda: E.imle("k_subset", k=2, tau=NAN),
    "imle(tau=inf)": lambda: E.imle("k_subset", k=2, tau=INF),
    "imle(tau_target=-1)": lambda: E.imle("k_subset", k=2, tau_target=-1.0),
    "imle(noise=foo)": lambda: E.imle("k_subset", k=2, noise="foo"),
    "imle(target=1.0)": lambda: E.imle("k_subset", k=2, target=1.0),
    "imle(temperature=)": lambda: E.imle("k_subset", k=2, temperature=1.0),
    "aimle(difference=backward)": lambda: E.aimle("k_subset", k=2, difference="backward"),
    "blackbox(lam=0)": lambda: E.blackbox("k_subset", k=2, lam=0.0),
    "perturbed(samples=1, baseline)": lambda: E.perturbed(
        "k_subset", k=2, samples=1, baseline=True
    ),
    "perturbed(noise=sog)": lambda: E.perturbed("k_subset", k=2, noise="sog"),
    "perturbed(sigma=)": lambda: E.perturbed("k_subset", k=2, sigma=1.0),
    "FenchelYoungLoss(tau=0)": lambda: E.FenchelYoungLoss("k_subset", k=2, tau=0.0),
    "ScoreFunction(ema_decay=1.5)": lambda: E.ScoreFunction(
        "categorical", baseline="ema", ema_decay=1.5
    ),
    "ScoreFunction(score=x)": lambda: E.ScoreFunction("categorical", score="x"),
    "ScoreFunction(samples=0)": lambda: E.ScoreFunction("categorical", samples=0),
    "relax() without event_shape": lambda: E.relax("categorical"),
    "relax(hidden=0)": lambda: E.relax("categorical", event_shape=(5,), hidden=0),
    "latent(sst, tau=0)": _layer("spanning_tree", "sst", tau=0.0),
    "latent(sst, tau=nan)": _layer("spanning_tree", "sst", tau=NAN),
    "latent(sst, tau='a')": _layer("spanning_tree", "sst", tau="a"),
    "latent(k_subset, sst) without k": _layer("k_subset", "sst"),
    "latent(k_subset, sst, k=-1)": _layer("k_subset", "sst", k=-1),
    "latent(sst, max_range=-1)": _call(_layer("spanning_tree", "sst", max_range=-1.0), _x(2, 4, 4)),
    "latent(gumbel-softmax, tau=-1)": _layer("categorical", "gumbel-softmax", tau=-1.0),
    "latent(indep, tau=0)": _layer("edges", "indep", tau=0.0),
    "latent(arborescence, sst, root=9)": _call(_layer("arborescence", "sst", root=9), _x(2, 4, 4)),
    "latent(sst) lengths of another batch": _call(
        _layer("spanning_tree", "sst"), _x(2, 4, 4), lengths=torch.tensor([2, 3, 4])
    ),
    "latent(sst) float lengths": _call(
        _layer("spanning_tree", "sst"), _x(2, 4, 4), lengths=torch.tensor([2.0, 3.0])
    ),
    "latent(imle) lengths out of range": _call(
        _layer("spanning_tree", "imle"), _x(2, 4, 4), lengths=torch.tensor([2, 9])
    ),
    "latent(t-reinforce) lengths of 0": _call(
        _layer("spanning_tree", "t-reinforce"), _x(2, 4, 4), lengths=torch.tensor([0, 3])
    ),
    "sinkhorn(n_iters=0)": lambda: R.sinkhorn(_x(2, 3, 3), n_iters=0),
    "gumbel_softmax(tau='a')": lambda: R.gumbel_softmax(_x(2, 3), "a"),
    "gumbel_softmax(tau=None)": lambda: R.gumbel_softmax(_x(2, 3), None),
    "k_subset_marginals(k=True)": lambda: R.k_subset_marginals(_x(2, 5), True),
    "sst(unknown option)": lambda: R.sst("k_subset", _x(2, 5), 1.0, k=2, foo=1),
    "SpanningTree(lengths=[0, 4])": lambda: D.SpanningTree(
        _x(2, 4, 4), lengths=torch.tensor([0, 4])
    ),
    "KSubset(k=9)": lambda: D.KSubset(_x(2, 5), 9),
    "Arborescence(root=-1)": lambda: D.Arborescence(_x(2, 4, 4), root=-1),
    "PerturbAndMAP(tau=0)": lambda: D.PerturbAndMAP("spanning_tree", _x(2, 4, 4), tau=0.0),
}


def _bad_k() -> dict[str, Callable[[], Any]]:
    """Every k-taking entry point with k out of range or not an integer."""
    x = _x(2, 5)
    calls: dict[str, Callable[[], Any]] = {}
    for k in (-1, 6, 2.5, "2", None, True):
        calls[f"k_subset_marginals(k={k!r})"] = lambda k=k: R.k_subset_marginals(x, k)
        calls[f"relaxed_top_k(k={k!r})"] = lambda k=k: R.relaxed_top_k(x, k, 0.5)
        calls[f"sst(k_subset, k={k!r})"] = lambda k=k: R.sst("k_subset", x, 0.5, k=k)
        calls[f"KSubset(k={k!r})"] = lambda k=k: D.KSubset(x, k).log_partition
        calls[f"sample_with_trace(k={k!r})"] = lambda k=k: E.sample_with_trace("k_subset", x, k=k)
        for method in ("sst", "imle", "t-reinforce"):
            calls[f"latent(k_subset, {method}, k={k!r})"] = _call(
                lambda k=k, m=method: M.latent("k_subset", m, k=k), x
            )
    return calls


def _bad_lengths() -> dict[str, Callable[[], Any]]:
    """Every lengths-taking layer with lengths of the wrong shape, range or dtype."""
    x = _x(2, 4, 4)
    bad = {
        "3 for a batch of 2": torch.tensor([2, 3, 4]),
        "5 > n": torch.tensor([2, 5]),
        "0": torch.tensor([0, 3]),
        "-1": torch.tensor([-1, 3]),
        "float": torch.tensor([2.0, 3.0]),
        "bool": torch.tensor([True, True]),
        "string": "2",
    }
    calls: dict[str, Callable[[], Any]] = {}
    for label, lens in bad.items():
        for structure in ("spanning_tree", "arborescence"):
            for method in ("sst", "imle", "t-reinforce", "relax"):
                extra = {"event_shape": (4, 4)} if method == "relax" else {}
                calls[f"latent({structure}, {method}) lengths {label}"] = _call(
                    lambda s=structure, m=method, e=extra: M.latent(s, m, **e), x, lengths=lens
                )
            calls[f"sample_with_trace({structure}) lengths {label}"] = (
                lambda s=structure, lens=lens: E.sample_with_trace(s, x, lengths=lens)
            )
        calls[f"spanning_tree_marginals lengths {label}"] = lambda lens=lens: (
            R.spanning_tree_marginals(x, lengths=lens)
        )
        calls[f"SpanningTree lengths {label}"] = lambda lens=lens: (
            D.SpanningTree(x, lengths=lens).log_partition
        )
    return calls


def _bad_misc() -> dict[str, Callable[[], Any]]:
    x = _x(2, 5)
    sq = _x(2, 4, 4)
    calls: dict[str, Callable[[], Any]] = {
        "gumbel_softmax(dim=5)": lambda: R.gumbel_softmax(x, 0.5, dim=5),
        "gumbel_softmax(dim='a')": lambda: R.gumbel_softmax(x, 0.5, dim="a"),
        "sinkhorn(n_iters=2.5)": lambda: R.sinkhorn(sq, n_iters=2.5),
        "sinkhorn(tau=0)": lambda: R.sinkhorn(sq, tau=0.0),
        "arborescence_marginals(root=4)": lambda: R.arborescence_marginals(sq, root=4),
        "arborescence_marginals(root=-1)": lambda: R.arborescence_marginals(sq, root=-1),
        "latent(arborescence, imle, root=4)": _call(
            lambda: M.latent("arborescence", "imle", root=4), sq
        ),
        "sample_with_trace(arborescence, root=4)": lambda: E.sample_with_trace(
            "arborescence", sq, root=4
        ),
        "trace_log_prob(not a trace)": lambda: E.trace_log_prob("categorical", (1, 2), x),
        "trace_log_prob(None)": lambda: E.trace_log_prob("categorical", None, x),
        "trace_log_prob(tree trace on arborescence)": lambda: E.trace_log_prob(
            "arborescence", E.sample_with_trace("spanning_tree", sq).trace, sq
        ),
        "trace_log_prob(categorical n5 on n8)": lambda: E.trace_log_prob(
            "categorical", E.sample_with_trace("categorical", x).trace, _x(2, 8)
        ),
        "conditional_utilities(k_subset n5 on n8)": lambda: E.conditional_utilities(
            "k_subset", E.sample_with_trace("k_subset", x, k=2).trace, _x(2, 8), k=2
        ),
        "utility_log_prob(shape)": lambda: E.utility_log_prob("categorical", _x(2, 4), x),
        "attach(loss of another shape)": lambda: _attach(
            M.latent("categorical", "reinforce"), x, _x(3)
        ),
        "attach(loss None)": lambda: _attach(M.latent("categorical", "reinforce"), x, None),
        "attach(int loss)": lambda: _attach(
            M.latent("categorical", "reinforce"), x, torch.zeros(2, dtype=torch.long)
        ),
        "attach(nvil baseline of another shape)": lambda: _attach(
            M.latent("categorical", "nvil"), x, _x(2), baseline=_x(3)
        ),
        "attach before any draw": lambda: M.latent("categorical", "t-reinforce").attach(_x(2)),
        "FenchelYoungLoss(target shape)": lambda: E.FenchelYoungLoss("k_subset", k=2)(x, _x(3, 5)),
        "imle(solver returns numpy)": lambda: E.imle(lambda s: s.detach().numpy())(x),
        "imle(solver returns wrong shape)": lambda: E.imle(lambda s: s[:, :2])(x),
        "imle(solver=3)": lambda: E.imle(3),
        "latent(unknown structure)": lambda: M.latent("tree", "sst"),
        "latent(unknown method)": lambda: M.latent("spanning_tree", "sgd"),
        "latent(structure=None)": lambda: M.latent(None, "sst"),
        "map_sample(grid_path, noise)": lambda: M.map_sample("grid_path", _x(2, 3, 3).abs()),
        "SpanningTree(numpy)": lambda: D.SpanningTree(sq.numpy()),
        "KSubset(list)": lambda: D.KSubset(x.tolist(), 2),
        "PlackettLuce(None)": lambda: D.PlackettLuce(None),
        "SpanningTree.log_prob(wrong shape)": lambda: D.SpanningTree(sq).log_prob(_x(2, 3, 3)),
        "PerturbAndMAP(unknown)": lambda: D.PerturbAndMAP("tree", sq),
    }
    return calls


def _attach(layer: Any, x: torch.Tensor, loss: Any, **kw: Any) -> Any:
    z = layer(x)
    return layer.attach(loss, z, **kw)


NONSENSE.update(_bad_k())
NONSENSE.update(_bad_lengths())
NONSENSE.update(_bad_misc())


def _bad_generators() -> dict[str, Callable[[], Any]]:
    """Every randomised entry point with a generator that is not a torch.Generator."""
    x, sq = _x(2, 5), _x(2, 4, 4)
    draws: dict[str, Callable[[Any], Any]] = {
        "gumbel_softmax": lambda g: R.gumbel_softmax(x, 0.5, generator=g),
        "binary_concrete": lambda g: R.binary_concrete(x, 0.5, generator=g),
        "sst(spanning_tree)": lambda g: R.sst("spanning_tree", sq, 0.5, generator=g),
        "gumbel_sinkhorn": lambda g: R.gumbel_sinkhorn(sq, 0.5, generator=g),
        "relaxed_top_k": lambda g: R.relaxed_top_k(x, 2, 0.5, generator=g),
        "imle": lambda g: E.imle("k_subset", k=2)(x, generator=g),
        "perturbed": lambda g: E.perturbed("k_subset", k=2)(x, generator=g),
        "t_reinforce": lambda g: E.t_reinforce("spanning_tree")(sq, generator=g),
        "sample_with_trace": lambda g: E.sample_with_trace("categorical", x, generator=g),
        "SpanningTree.sample": lambda g: D.SpanningTree(sq).sample(generator=g),
        "KSubset.rsample": lambda g: D.KSubset(x, 2).rsample(generator=g),
        "PlackettLuce.sample": lambda g: D.PlackettLuce(x).sample(generator=g),
        "latent.sample_hard": lambda g: M.latent("k_subset", "sst", k=2).sample_hard(
            x, generator=g
        ),
    }
    return {
        f"{name}(generator={g!r})": (lambda draw=draw, g=g: draw(g))
        for name, draw in draws.items()
        for g in (5, "seed", np.random.default_rng(0))
    }


NONSENSE.update(_bad_generators())


def _bad_sizes() -> dict[str, Callable[[], Any]]:
    """Size arguments: negative, fractional, strings, None (far too large for enumerators)."""
    import structgrad.solvers as S

    makers: dict[str, Callable[[Any], Any]] = {
        "enumerate_spanning_trees": S.enumerate_spanning_trees,
        "enumerate_arborescences": S.enumerate_arborescences,
        "enumerate_k_subsets(n, 2)": lambda n: S.enumerate_k_subsets(n, 2),
        "enumerate_permutations": S.enumerate_permutations,
        "enumerate_binary_trees": S.enumerate_binary_trees,
        "edge_list": D.edge_list,
        "cvx_relaxation(k_subset, n)": lambda n: R.cvx_relaxation("k_subset", n, k=1),
        "sample_gumbel(shape)": lambda n: D.sample_gumbel((n,)),
        "sample_uniform(shape)": lambda n: D.sample_uniform((n,)),
    }
    calls = {
        f"{name}({n!r})": (lambda make=make, n=n: make(n))
        for name, make in makers.items()
        for n in (-1, 2.5, "3", None)
    }
    for name in list(makers)[:5]:
        calls[f"{name}(10**6)"] = lambda make=makers[name]: make(10**6)
    calls["hard_with_soft_gradient(shapes)"] = lambda: R.hard_with_soft_gradient(_x(2, 3), _x(3, 2))
    calls["bind_solver(nonsense)"] = lambda: E.bind_solver(3.5)
    calls["bind_solver(k for a callable)"] = lambda: E.bind_solver(lambda s: s, k=2)
    calls["MovingAverage(decay=2)"] = lambda: E.MovingAverage(2.0)
    calls["MovingAverage(decay=nan)"] = lambda: E.MovingAverage(NAN)
    calls["structure(unknown)"] = lambda: D.structure("tree")
    calls["structure(None)"] = lambda: D.structure(None)
    return calls


NONSENSE.update(_bad_sizes())


def _bad_nri() -> dict[str, Callable[[], Any]]:
    """The NRI modules' sizes and inputs."""
    import structgrad.models.nri as N

    enc = N.MLPEncoder(8, 16, 2, n_nodes=5)
    dec = N.MLPDecoder(2, 2, 16, 16, 16)
    x = _x(2, 5, 4, 2)  # [B, n, T, dims]
    rel = torch.full((2, 20, 2), 0.5)
    calls: dict[str, Callable[[], Any]] = {
        f"{name}({label})": make
        for name, cls in (("MLP", N.MLP), ("MLPEncoder", N.MLPEncoder))
        for label, make in (
            ("n_in=0", lambda cls=cls: cls(0, 16, 2)),
            ("n_hid=-1", lambda cls=cls: cls(8, -1, 2)),
            ("n_out=2.5", lambda cls=cls: cls(8, 16, 2.5)),
            ("dropout=1.5", lambda cls=cls: cls(8, 16, 2, dropout=1.5)),
        )
    }
    calls.update(
        {
            "MLPEncoder(n_nodes=1)": lambda: N.MLPEncoder(8, 16, 2, n_nodes=1),
            "MLPDecoder(edge_types=0)": lambda: N.MLPDecoder(2, 0),
            "MLPDecoder(n_rounds=0)": lambda: N.MLPDecoder(2, n_rounds=0),
            "MLPDecoder(dropout=nan)": lambda: N.MLPDecoder(2, dropout=NAN),
            "MLPEncoder(numpy)": lambda: enc(x.numpy()),
            "MLPEncoder(rank 3)": lambda: enc(x[0]),
            "MLPEncoder(wrong steps x dims)": lambda: enc(_x(2, 5, 3, 2)),
            "MLPEncoder(wrong n)": lambda: enc(_x(2, 4, 4, 2)),
            "MLPEncoder(int)": lambda: enc(x.long()),
            "MLPDecoder(rel of another n)": lambda: dec(x, torch.full((2, 12, 2), 0.5)),
            "MLPDecoder(rel types)": lambda: dec(x, torch.full((2, 20, 3), 0.5)),
            "MLPDecoder(pred_steps=0)": lambda: dec(x, rel, pred_steps=0),
            "MLPDecoder(x None)": lambda: dec(None, rel),
            "elbo(kl=foo)": lambda: N.elbo(x, x, _x(2, 20, 1), kl="foo"),
            "elbo(shapes)": lambda: N.elbo(x, x[:1], _x(2, 20, 1)),
        }
    )
    return calls


NONSENSE.update(_bad_nri())
