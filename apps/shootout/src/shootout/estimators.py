"""The contestants: every gradient estimator, built for a problem, as a conformance ``draw``.

Each estimator is a module with ``z = layer(logits, generator=...)`` and
``loss = layer.attach(per_sample_loss)``: built through
:func:`structgrad.models.latent` where the factory has the pair, otherwise from
:mod:`structgrad.estimators` / :mod:`structgrad.relaxations` directly (matchings
and binary trees). One estimate of ``∇_θ E[f(X)]`` is the gradient of the
attached loss of one row; :func:`make_draw` batches ``m`` independent rows.

Stateful estimators are warmed up in training mode, then frozen with ``eval()``
so that the draws being measured are independent (a baseline that moves with the
draws being averaged makes them dependent): the EMA baseline of ``reinforce``
and AIMLE's adaptive λ. RELAX is measured with its default critic untrained
(``relax``) and after a short Adam training of the critic on the variance
(``relax-trained``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import torch
from structgrad_app_common.batches import torch_seed
from torch import Tensor, nn

import structgrad.estimators as est
from structgrad.estimators.score import PRESETS as SCORE_PRESETS
from structgrad.models import METHODS, LatentLayer, latent
from structgrad.relaxations import sst

from .problems import Problem

__all__ = ["ESTIMATORS", "SCORE", "Settings", "Spec", "applicable", "build", "make_draw"]

_PERTURB = ("categorical", "k_subset", "spanning_tree", "arborescence", "matching")
_ALL = (*_PERTURB, "binary_tree")


@dataclass(frozen=True)
class Settings:
    """Options shared by every estimator of a run.

    Attributes:
        tau: temperature of the relaxations (SST, Gumbel-softmax).
        warmup: training steps before freezing (EMA baseline, AIMLE's λ, RELAX critic).
        warmup_batch: rows per warm-up step.
        seed: seed of the critic's initialisation and the warm-up draws.
    """

    tau: float = 1.0
    warmup: int = 200
    warmup_batch: int = 32
    seed: int = 0


@dataclass(frozen=True)
class Spec:
    """One estimator of the shootout.

    Attributes:
        name: the column name.
        kind: ``"score"`` (samples the recursive Gumbel-max law, unbiased) or
            ``"pathwise"`` (forward samples the perturb-and-MAP law; biased).
        structures: the structures it applies to.
        samples: structures drawn per estimate (``K`` of the "+" estimators, ``S``
            of the perturbed optimizer).
        method: the ``structgrad.models`` method name it is built from (when the
            factory has the structure) and its options.
        options: options of the method.
        describe: one line for the README and ``--help``.
    """

    name: str
    kind: str
    structures: tuple[str, ...]
    samples: int
    method: str
    options: dict[str, Any]
    describe: str


_SCORE_ARGS: dict[str, tuple[str, dict[str, Any], str]] = {
    "reinforce": ("reinforce", {}, "E-score (Gumbel density of U), EMA baseline (frozen)"),
    "e-reinforce": ("e-reinforce", {}, "E-score, no baseline"),
    "t-reinforce": ("t-reinforce", {}, "trace score, no baseline"),
    "e-reinforce+": ("e-reinforce+", {"samples": 3}, "E-score, leave-one-out baseline, K=3"),
    "t-reinforce+": ("t-reinforce+", {"samples": 3}, "trace score, leave-one-out, K=3"),
    "relax": ("relax", {}, "RELAX, conditional U|T, default MLP critic untrained"),
    "relax-trained": ("relax", {}, "RELAX, default critic trained on the variance first"),
}
_PATH_ARGS: dict[str, tuple[str, dict[str, Any], str]] = {
    "ste": ("ste", {}, "MAP(θ+G) forward, identity backward"),
    "imle": ("imle", {}, "I-MLE, Gumbel noise, λ default target"),
    "aimle": ("aimle", {"difference": "forward"}, "AIMLE forward difference, λ frozen"),
    "aimle-central": ("aimle", {"difference": "central"}, "AIMLE central difference, λ frozen"),
    "blackbox": ("blackbox", {"noise": "gumbel"}, "blackbox (λ=10) on MAP(θ+G)"),
    "perturbed": (
        "perturbed",
        {"noise": "gumbel", "tau": 1.0, "samples": 10},
        "perturbed optimizer, mean of 10 MAP(θ+G)",
    ),
    "sst": ("sst", {}, "stochastic softmax trick (Gumbel-softmax, Gumbel-Sinkhorn)"),
    "st-sst": ("st-sst", {}, "MAP(θ+G) forward, SST backward"),
}

#: Every estimator, in table order.
ESTIMATORS: dict[str, Spec] = {
    **{
        name: Spec(name, "score", _ALL, opts.get("samples", 1), m, opts, doc)
        for name, (m, opts, doc) in _SCORE_ARGS.items()
    },
    **{
        name: Spec(name, "pathwise", _PERTURB, opts.get("samples", 1), m, opts, doc)
        for name, (m, opts, doc) in _PATH_ARGS.items()
    },
}
SCORE = tuple(n for n, s in ESTIMATORS.items() if s.kind == "score")


def applicable(estimator: str, structure: str) -> bool:
    """Whether ``estimator`` runs on ``structure``."""
    return structure in ESTIMATORS[estimator].structures


class _Pathwise(nn.Module):
    """A pathwise estimator or relaxation with the latent-layer ``attach`` (the identity)."""

    pathwise = True

    def __init__(self, fn: nn.Module | Callable[..., Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """The (perturbed, relaxed) sample shaped like ``logits``."""
        out: Tensor = self.fn(logits, generator=generator)
        return out

    def attach(self, loss: Tensor) -> Tensor:
        """The loss itself: the gradient flows through the sample."""
        return loss


#: A built estimator: a latent layer, or a pathwise one wrapped with ``attach``.
_Estimator: TypeAlias = LatentLayer | _Pathwise


def _direct(spec: Spec, problem: Problem, settings: Settings) -> _Estimator:
    """Build from structgrad.estimators / relaxations (structures the factory lacks)."""
    s, opts = problem.structure, {**problem.options, **spec.options}
    if spec.kind == "score":
        if spec.method == "relax":
            return est.RELAX(s, event_shape=tuple(problem.logits.shape), **problem.options)
        return est.ScoreFunction(s, **{**SCORE_PRESETS[spec.method], **opts})
    if spec.method in ("sst", "st-sst"):
        st = spec.method == "st-sst"

        def relaxed(logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
            out = sst(s, logits, settings.tau, straight_through=st, generator=generator)
            assert isinstance(out, Tensor)  # without return_utilities: the sample alone
            return out

        return _Pathwise(relaxed)
    cls = {
        "ste": est.StraightThrough,
        "imle": est.IMLE,
        "aimle": est.AIMLE,
        "blackbox": est.Blackbox,
        "perturbed": est.PerturbedOptimizer,
    }[spec.method]
    if spec.method == "ste":
        opts = {"noise": "gumbel", **opts}
    return _Pathwise(cls(s, **opts))


def build(name: str, problem: Problem, settings: Settings) -> _Estimator:
    """The estimator ``name`` for ``problem``, warmed up and frozen (``eval()``).

    Raises:
        ValueError: an unknown estimator or one that does not apply to the structure.
    """
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose from {', '.join(ESTIMATORS)}")
    spec, s = ESTIMATORS[name], problem.structure
    if not applicable(name, s):
        raise ValueError(f"estimator {name!r} does not apply to {s!r}")
    method, opts = spec.method, dict(spec.options)
    if s == "categorical" and method in ("sst", "st-sst"):
        method = "gumbel-softmax" if method == "sst" else "st"  # the categorical SST
    if method in ("sst", "st-sst", "gumbel-softmax", "st"):
        opts["tau"] = settings.tau
    if method == "relax":
        opts["event_shape"] = tuple(problem.logits.shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)  # the critic's initialisation, not the global stream
        if method in METHODS.get(s, ()):
            layer: _Estimator = latent(s, method, **problem.options, **opts)
        else:
            layer = _direct(spec, problem, settings)
    _warm_up(name, layer, problem, settings)
    return layer.eval()


def _warm_up(name: str, layer: _Estimator, problem: Problem, settings: Settings) -> None:
    if name not in ("reinforce", "aimle", "aimle-central", "relax-trained"):
        return
    gen = torch.Generator().manual_seed(torch_seed(settings.seed + 7))
    draw = make_draw(layer, problem)
    layer.train()
    opt = None
    if name == "relax-trained":
        opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    for _ in range(settings.warmup):
        if opt is None:  # EMA / λ update inside attach / backward in training mode
            draw(problem.logits, settings.warmup_batch, gen)
            continue
        opt.zero_grad()
        lb = problem.logits.expand(settings.warmup_batch, *problem.logits.shape)
        out = layer.attach(problem.f(layer(lb, generator=gen)))
        out.mean().backward()  # the critic's gradient is that of the estimator's variance
        opt.step()


def make_draw(layer: _Estimator, problem: Problem) -> Callable[[Tensor, int, Any], Tensor]:
    """The conformance ``draw(logits, m, generator) -> [m, *event]`` of ``layer``.

    Each of the ``m`` rows is an independent estimate: the rows are a batch, and
    the gradient of the sum of the attached losses w.r.t. row ``r``'s logits is
    row ``r``'s estimate. With ``K`` samples per row (the "+" estimators) the
    ``K`` attached losses are averaged, as their docs ask.
    """

    def draw(logits: Tensor, m: int, generator: Any) -> Tensor:
        rows = logits.detach().expand(m, *logits.shape).clone().requires_grad_(True)
        z = layer(rows, generator=generator)
        out = layer.attach(problem.f(z))
        if out.ndim == 2:  # [K, m]: K samples per row
            out = out.mean(0)
        (grad,) = torch.autograd.grad(out.sum(), rows)
        return grad

    return draw
