"""The stochastic softmax trick, one entry point for every structure.

``X_τ = argmax_{x ∈ conv(𝒳)} <U, x> - τ Ω(x)`` with Gumbel utilities
``U = θ + G``: for the exponential-family entropy Ω the solution is the
marginal vector of ``p(x) ∝ exp(<U, x> / τ)``, computed exactly for each
structure; as ``τ → 0`` it tends to ``argmax <U, x>``, the exact MAP of the
perturbed utilities (what ``straight_through=True`` returns in the forward
pass).

References:
    Paulus, Choi, Tarlow, Krause and Maddison, "Gradient Estimation with
    Stochastic Softmax Tricks", NeurIPS 2020, https://arxiv.org/abs/2006.08063.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import structgrad.solvers as solvers

from ._gumbel import sample_gumbel
from ._gumbel import straight_through as _st
from ._ksubset import k_subset_marginals
from ._matrix_tree import arborescence_marginals, spanning_tree_marginals
from ._sinkhorn import sinkhorn
from ._utils import as_tau

__all__ = ["SUPPORTED", "sst"]


def _categorical(u: Tensor, tau: Tensor, **_: Any) -> tuple[Tensor, Callable[[], Tensor]]:
    soft = F.softmax(u / tau, dim=-1)
    return soft, lambda: F.one_hot(u.argmax(-1), u.shape[-1]).to(u.dtype)


def _k_subset(u: Tensor, tau: Tensor, *, k: int, **_: Any) -> tuple[Tensor, Callable[[], Tensor]]:
    return k_subset_marginals(u / tau, k), lambda: solvers.top_k(u.detach(), k)


def _spanning_tree(
    u: Tensor, tau: Tensor, *, lengths: Any = None, max_range: float | None = None, **_: Any
) -> tuple[Tensor, Callable[[], Tensor]]:
    soft = spanning_tree_marginals(u / tau, lengths=lengths, max_range=max_range)
    return soft, lambda: solvers.max_spanning_tree(u.detach(), lengths=lengths)


def _arborescence(
    u: Tensor,
    tau: Tensor,
    *,
    root: int = 0,
    lengths: Any = None,
    max_range: float | None = None,
    **_: Any,
) -> tuple[Tensor, Callable[[], Tensor]]:
    soft = arborescence_marginals(u / tau, root=root, lengths=lengths, max_range=max_range)
    return soft, lambda: solvers.max_arborescence(u.detach(), root=root, lengths=lengths)


def _matching(
    u: Tensor, tau: Tensor, *, n_iters: int = 20, anneal: bool = True, **_: Any
) -> tuple[Tensor, Callable[[], Tensor]]:
    soft = sinkhorn(u, n_iters=n_iters, tau=tau, anneal=anneal)
    return soft, lambda: solvers.linear_assignment(u.detach())


SUPPORTED: dict[str, Callable[..., tuple[Tensor, Callable[[], Tensor]]]] = {
    "categorical": _categorical,
    "k_subset": _k_subset,
    "spanning_tree": _spanning_tree,
    "arborescence": _arborescence,
    "matching": _matching,
}
_OPTIONS = {
    "categorical": set(),
    "k_subset": {"k"},
    "spanning_tree": {"lengths", "max_range"},
    "arborescence": {"root", "lengths", "max_range"},
    "matching": {"n_iters", "anneal"},
}
_REQUIRED = {"k_subset": {"k"}}
_NO_RELAXATION = {
    "binary_tree": "its split trace has no tractable exponential-family relaxation",
    "grid_path": "shortest paths have no tractable exponential-family relaxation here",
}


def sst(
    structure: str,
    logits: Tensor,
    tau: float | Tensor,
    *,
    straight_through: bool = False,
    generator: torch.Generator | None = None,
    return_utilities: bool = False,
    **options: Any,
) -> Tensor | tuple[Tensor, Tensor]:
    """Stochastic softmax trick sample of ``structure`` given ``logits``.

    Structures and their relaxation (all exact exponential-family marginals,
    except matching, whose marginals are intractable and which uses Sinkhorn):

    ============== ===================== =====================================
    structure      logits                relaxation (options)
    ============== ===================== =====================================
    categorical    ``[..., n]``          softmax
    k_subset       ``[..., n]``          k-subset DP (``k``)
    spanning_tree  ``[..., n, n]``       Matrix-Tree (``lengths``, ``max_range``)
    arborescence   ``[..., n, n]``       directed Matrix-Tree (``root``, ``lengths``,
                                         ``max_range``)
    matching       ``[..., n, n]``       Gumbel-Sinkhorn (``n_iters``, ``anneal``:
                                         ε-scaling first, default on; see
                                         :func:`sinkhorn`)
    ============== ===================== =====================================

    Args:
        structure: one of the names above.
        logits: the log-potentials θ (spanning trees read the upper triangle).
        tau: temperature > 0, a float or a tensor broadcastable to ``logits``.
        straight_through: forward value is the exact MAP of ``U`` from
            structgrad.solvers, gradient of the relaxed sample.
        generator: optional ``torch.Generator`` for the Gumbel noise.
        return_utilities: also return ``U = logits + G`` (not divided by τ), e.g.
            for a Gumbel KL term.
        **options: structure options from the table.

    Returns:
        The relaxed (or straight-through) sample shaped like ``logits``, and ``U``
        if asked.

    Raises:
        ValueError: for an unknown structure, one without a relaxation, an
            option the structure does not take or a missing one (``k``), or
            integer logits.
    """
    if structure in _NO_RELAXATION:
        raise ValueError(
            f"sst: {structure} has no relaxation ({_NO_RELAXATION[structure]}); use a "
            "solver-wrapping estimator (imle, aimle, blackbox) or a score-function "
            "estimator from structgrad.estimators"
        )
    if structure not in SUPPORTED:
        raise ValueError(f"sst: unknown structure {structure!r}; supported: {sorted(SUPPORTED)}")
    unknown = set(options) - _OPTIONS[structure]
    if unknown:
        raise ValueError(
            f"sst: {structure} takes options {sorted(_OPTIONS[structure])}, got {sorted(unknown)}"
        )
    missing = _REQUIRED.get(structure, set()) - set(options)
    if missing:
        raise ValueError(f"sst: {structure} needs the option(s) {sorted(missing)}")
    if not logits.is_floating_point():
        raise ValueError(f"sst: logits must be a floating-point tensor, got {logits.dtype}")
    t = as_tau(tau, logits)  # a tensor tau must broadcast against logits, e.g. [B, 1, 1]
    u = logits + sample_gumbel(
        logits.shape, dtype=logits.dtype, device=logits.device, generator=generator
    )
    soft, hard = SUPPORTED[structure](u, t, **options)
    sample = _st(hard(), soft) if straight_through else soft
    return (sample, u) if return_utilities else sample
