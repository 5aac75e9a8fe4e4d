"""The latent-layer factory: a structure and a method name in, an ``nn.Module`` out."""

from __future__ import annotations

from typing import Any

from structgrad.distributions import STRUCTURES, LatentLayer, Structure, structure

from ._registry import REGISTRY, methods_of, no_methods, why_missing
from ._structure import EDGES, LatentStructure, resolve

__all__ = ["METHODS", "latent"]


def _table() -> dict[str, tuple[str, ...]]:
    """Every structure of ``structgrad.distributions.STRUCTURES`` with a method, then ``edges``."""
    table: dict[str, tuple[str, ...]] = {}
    everything: list[LatentStructure] = [*map(structure, STRUCTURES), EDGES]
    for s in everything:
        methods = methods_of(s)
        if methods:
            table[s.name] = methods
    return table


#: Structure name → the method names :func:`latent` accepts for it, derived
#: from each Structure's capabilities and each method's requirement (see
#: :mod:`._registry`).
METHODS: dict[str, tuple[str, ...]] = _table()


def _supported(structure: str | LatentStructure) -> LatentStructure:
    """``structure`` resolved; unknown ones and those without a method raise ``ValueError``."""
    try:
        s: LatentStructure | None = resolve(structure)
    except ValueError:
        s = None
    if s is not None and methods_of(s):
        return s
    hint = f" ({s.name}: {no_methods(s)})" if isinstance(s, Structure) else ""
    raise ValueError(
        f"unknown or unsupported structure {structure!r}{hint}; supported structures: "
        f"{', '.join(METHODS)}"
    )


def _check_required(s: Structure, method: str, options: dict[str, Any]) -> None:
    """Let the Structure check its required options (``k`` for k-subsets)."""
    try:
        s.options({k: v for k, v in options.items() if k in s.option_names})
    except ValueError as err:
        reason = str(err).removeprefix(f"{s.name}: ")
        raise ValueError(f"latent({s.name!r}, {method!r}): {reason}") from None


def latent(structure: str | LatentStructure, method: str, **options: Any) -> LatentLayer:
    """Build the latent layer of ``structure`` trained with ``method``.

    The returned module samples with ``z = layer(logits, *, generator=None)``
    and turns a per-sample loss into the loss to backpropagate with
    ``layer.attach(loss)`` (see :class:`LatentLayer`). :data:`METHODS` lists the
    accepted pairs; the package README has the table with each method's
    gradient, options and reference.

    Args:
        structure: a name of :data:`METHODS` (``spanning_tree``, ``k_subset``,
            ``arborescence``, ``categorical``, ``matching``, ``binary_tree`` or
            ``edges``) or a :class:`structgrad.distributions.Structure`.
        method: a method of ``METHODS[name]``.
        **options: the method's options, e.g. ``tau``, ``max_range``,
            ``straight_through`` (SST), ``k`` (k-subsets, required), ``difference``
            (AIMLE), ``symmetric`` (indep), ``samples`` (score functions).

    Returns:
        The layer, an ``nn.Module`` whose state (AIMLE's λ, EMA baselines,
        RELAX critics) is in its ``state_dict()``.

    Raises:
        ValueError: for an unknown structure, a method the structure does not
            support (the message says why, and lists those it does), a missing
            required option of the structure (``k`` for k-subsets), or options the
            method does not take.

    Example:
        >>> layer = latent("spanning_tree", "sst", tau=0.5)
        >>> layer.pathwise
        True
    """
    s = _supported(structure)
    methods = methods_of(s)
    if method not in methods:
        reason = why_missing(s, method)
        raise ValueError(
            f"method {method!r} is not supported for structure {s.name!r}"
            f"{': ' + reason if reason else ''} (supported: {', '.join(methods)})"
        )
    if isinstance(s, Structure):
        _check_required(s, method, options)
    layer = REGISTRY[method].build(s, dict(options))  # type: ignore[arg-type]
    layer.method = method
    return layer
