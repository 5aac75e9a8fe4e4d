"""The latent-layer factory: a structure and a method name in, an ``nn.Module`` out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._layer import LatentLayer
from ._pathwise import ESTIMATORS, EstimatorLayer, GumbelSoftmaxLayer, IndepEdgesLayer, SSTLayer
from ._score import SCORE_METHODS, ScoreLayer

__all__ = ["METHODS", "latent"]

_SOLVER_METHODS = tuple(ESTIMATORS)  # imle, aimle, ste, blackbox, perturbed
_SST = ("sst", "st-sst")

#: Structure name → the method names :func:`latent` accepts for it.
METHODS: dict[str, tuple[str, ...]] = {
    structure: (*pathwise, *SCORE_METHODS.get(structure, ()))
    for structure, pathwise in {
        "spanning_tree": (*_SST, *_SOLVER_METHODS),
        "k_subset": (*_SST, *_SOLVER_METHODS),
        "arborescence": (*_SST, *_SOLVER_METHODS),
        "categorical": ("gumbel-softmax", "st", *_SOLVER_METHODS),
        "matching": (*_SST, *_SOLVER_METHODS),
        "binary_tree": (),
        "edges": ("indep",),
    }.items()
}

_HINTS = {
    "grid_path": "shortest paths have no latent-layer method here; use "
    "structgrad.estimators.imle('grid_path') or aimle directly",
}

_SCORE_ONLY = f"a score-function method ({', '.join(SCORE_METHODS['binary_tree'])})"
# Why a method family is missing for a structure: (structure or "*", family) -> reason.
_MISSING = {
    ("categorical", "sst"): "the categorical SST is Gumbel-softmax: use 'gumbel-softmax' "
    "(or 'st' for a one-hot forward)",
    ("binary_tree", "sst"): "argmax-split trees have no tractable exponential-family "
    f"relaxation; use {_SCORE_ONLY}",
    ("binary_tree", "solver"): "its MAP (recursive argmax splits, an [n, n] adjacency from "
    "[n] scores) is not argmax <z, θ>, which perturbation estimators assume; use " + _SCORE_ONLY,
    ("*", "gumbel-softmax"): "Gumbel-softmax relaxes categorical variables only; use 'sst' "
    "(or 'st-sst') for a structured relaxation",
    ("edges", "*"): "independent edges are trained with 'indep' (binary concrete per edge)",
    ("*", "indep"): "'indep' is the method of the structure 'edges' (independent edges)",
}


def _family(method: str) -> str:
    if method in _SST:
        return "sst"
    if method in ("gumbel-softmax", "st"):
        return "gumbel-softmax"
    return "solver" if method in _SOLVER_METHODS else method


def _why_missing(structure: str, method: str) -> str:
    family = _family(method)
    for key in ((structure, family), ("*", family), (structure, "*")):
        if key in _MISSING:
            return f": {_MISSING[key]}"
    return ""


def _build(structure: str, method: str, options: dict[str, Any]) -> LatentLayer:
    if method in _SST:
        st = method == "st-sst" or bool(options.pop("straight_through", False))
        return SSTLayer(structure, method, straight_through=st, **options)
    if method in ("gumbel-softmax", "st"):
        hard = method == "st" or bool(options.pop("hard", False))
        return GumbelSoftmaxLayer(structure, method, hard=hard, **options)
    if method == "indep":
        return IndepEdgesLayer(structure, method, **options)
    if method in ESTIMATORS:
        return EstimatorLayer(structure, method, **options)
    return ScoreLayer(structure, method, **options)


def latent(structure: str, method: str, **options: Any) -> LatentLayer:
    """Build the latent layer of ``structure`` trained with ``method``.

    The returned module samples with ``z = layer(logits, *, generator=None)``
    and turns a per-sample loss into the loss to backpropagate with
    ``layer.attach(loss)`` (see :class:`LatentLayer`). :data:`METHODS` lists the
    accepted pairs; the package README has the table with each method's
    gradient, options and reference.

    Args:
        structure: ``spanning_tree``, ``k_subset``, ``arborescence``,
            ``categorical``, ``matching``, ``binary_tree`` or ``edges``.
        method: a method of ``METHODS[structure]``.
        **options: the method's options, e.g. ``tau``, ``max_range``,
            ``straight_through`` (SST), ``k`` (k-subsets, required), ``difference``
            (AIMLE), ``symmetric`` (indep), ``samples`` (score functions).

    Returns:
        The layer, an ``nn.Module`` whose state (AIMLE's λ, EMA baselines,
        RELAX critics) is in its ``state_dict()``.

    Raises:
        ValueError: for an unknown structure, a method the structure does not
            support (the message lists those it does), a missing ``k`` for
            k-subsets, or options the method does not take.

    Example:
        >>> layer = latent("spanning_tree", "sst", tau=0.5)
        >>> layer.pathwise
        True
    """
    if structure not in METHODS:
        hint = f" ({structure}: {_HINTS[structure]})" if structure in _HINTS else ""
        raise ValueError(
            f"unknown or unsupported structure {structure!r}{hint}; supported structures: "
            f"{', '.join(METHODS)}"
        )
    if method not in METHODS[structure]:
        raise ValueError(
            f"method {method!r} is not supported for structure {structure!r}"
            f"{_why_missing(structure, method)} (supported: {', '.join(METHODS[structure])})"
        )
    if structure == "k_subset" and "k" not in options:
        raise ValueError("structure 'k_subset' needs the subset size k (e.g. k=n - 1)")
    build: Callable[[str, str, dict[str, Any]], LatentLayer] = _build
    try:
        return build(structure, method, dict(options))
    except TypeError as err:
        raise ValueError(f"{method!r} on {structure!r}: bad options ({err})") from err
