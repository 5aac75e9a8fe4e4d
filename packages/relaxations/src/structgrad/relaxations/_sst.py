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

from typing import Any

import torch
from torch import Tensor

from structgrad.distributions import STRUCTURES, Structure
from structgrad.distributions import structure as resolve
from structgrad.distributions.checks import as_tau, check_flag

from ._gumbel import hard_with_soft_gradient
from ._options import checks_options

__all__ = ["SUPPORTED", "check_required", "sst"]

#: The structures with a relaxation (those whose :class:`Structure` is relaxable).
SUPPORTED: tuple[str, ...] = tuple(name for name in STRUCTURES if resolve(name).relaxable)


def check_required(s: Structure, options: dict[str, Any]) -> None:
    """Raise unless ``options`` hold every option ``s`` requires (``k`` of a k-subset).

    Raises:
        ValueError: naming the missing options.
    """
    missing = set(s.required) - set(options)
    if missing:
        raise ValueError(f"sst: {s.name} needs the option(s) {sorted(missing)}")


@checks_options
def sst(
    structure: str | Structure,
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
        tau: temperature > 0, a float or a tensor broadcastable to ``logits``
            with size 1 along the event dims (one per instance, e.g. ``[B, 1, 1]``).
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
    try:
        s = resolve(structure)
    except ValueError:
        raise ValueError(
            f"sst: unknown structure {structure!r}; supported: {', '.join(SUPPORTED)}"
        ) from None
    if not s.relaxable:
        raise ValueError(
            f"sst: {s.name} has no relaxation ({s.relax_missing}); use a solver-wrapping "
            "estimator (imle, aimle, blackbox) or a score-function estimator from "
            "structgrad.estimators"
        )
    accepted = {*s.option_names, *s.relax_option_names}
    unknown = set(options) - accepted
    if unknown:
        raise ValueError(f"sst: {s.name} takes options {sorted(accepted)}, got {sorted(unknown)}")
    check_required(s, options)
    straight_through = check_flag(straight_through, "straight_through")
    return_utilities = check_flag(return_utilities, "return_utilities")
    hard = {k: v for k, v in options.items() if k not in s.relax_option_names}
    # rank, shape and values (named as the caller names them), before the noise reads them
    s.check(logits, argname="logits", **hard)
    # a tensor tau: one per instance, broadcast against logits, e.g. [B, 1, 1]
    # (perturb removes a common offset from θ + G, exact for such a tau only)
    t = as_tau(tau, logits, event_dims=range(-s.event_dim, 0))
    noise = s.gumbel(logits, generator=generator)
    u = s.perturb(logits, noise=noise, **hard)  # θ + G (offset removed where exact)
    sample = s.relax(u, tau=t, **options)
    if straight_through:
        # The forward value is an exact perturb-and-MAP draw: θ + G formed in
        # float64 (in float32 beside 1e8 logits the noise rounded away and ties
        # went to the lowest index, [0.98, 0.02] for [0.5, 0.5]).
        wide = u if u.dtype == torch.float64 else s.perturb(logits.detach(), noise=noise, wide=True)
        sample = hard_with_soft_gradient(s.map(wide.detach(), **hard).to(sample.dtype), sample)
    return (sample, logits + noise) if return_utilities else sample
