"""The registry of recursive Gumbel-max structures: traces to steps, options, checks.

Each structure names its solver (run on the utilities ``U = θ + G``), the
conversion of its trace into the step form of :mod:`._steps`, the entries its
algorithm reads, and its options; :mod:`._recursive` is the public face.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

import structgrad.solvers as solvers

from ._rg_arborescence import arborescence_solve, arborescence_steps, arborescence_used
from ._rg_binary_tree import binary_tree_solve, binary_tree_steps, binary_tree_used
from ._rg_matching import matching_solve, matching_steps
from ._rg_tree import tree_solve, tree_steps, tree_used

__all__ = ["RECURSIVE_STRUCTURES", "CategoricalTrace", "RecursiveSample"]


class CategoricalTrace(NamedTuple):
    """Trace of a categorical draw: the argmax.

    Attributes:
        index: ``[*batch]`` int64 chosen category.
    """

    index: Tensor  # type: ignore[assignment]  # shadows tuple.index, as NamedTuples may


class RecursiveSample(NamedTuple):
    """A structure drawn by the recursive Gumbel-max trick.

    Attributes:
        sample: ``[*batch, *event]`` 0/1 structure in the scores' dtype.
        trace: the structure's trace (a NamedTuple of int/bool tensors on the
            scores' device; see :func:`sample_with_trace`).
        utilities: ``[*batch, *event]`` perturbed utilities ``U = θ + G`` the
            algorithm ran on (detached), ``U = −log E``.
    """

    sample: Tensor
    trace: Any
    utilities: Tensor


class _Structure(NamedTuple):
    event_dims: int
    # (U detached, **options) -> (sample, trace)
    solve: Callable[..., tuple[Tensor, Any]]
    # (trace, event_shape, **options, device=) -> (chosen [*, S], candidates [*, S, N])
    steps: Callable[..., tuple[Tensor, Tensor]]
    options: tuple[str, ...]
    # smallest n, and smallest length for the structures with `lengths`
    min_size: int
    # (event_shape, device, **options) -> bool [*event] or [*batch, *event]: the
    # entries the algorithm reads; None: all of them.
    used: Callable[..., Tensor] | None = None


def _categorical_solve(u: Tensor) -> tuple[Tensor, CategoricalTrace]:
    index = u.argmax(-1)
    return torch.nn.functional.one_hot(index, u.shape[-1]).to(u.dtype), CategoricalTrace(index)


def _categorical_steps(
    trace: CategoricalTrace, event: tuple[int, ...], *, device: torch.device
) -> tuple[Tensor, Tensor]:
    chosen = torch.as_tensor(trace.index, device=device).unsqueeze(-1)
    candidates = torch.ones((*chosen.shape, event[-1]), dtype=torch.bool, device=device)
    return chosen, candidates


def _subset_solve(u: Tensor, k: int) -> tuple[Tensor, Any]:
    return solvers.top_k(u, k, return_trace=True)


def _subset_steps(
    trace: Any, event: tuple[int, ...], k: int, *, device: torch.device
) -> tuple[Tensor, Tensor]:
    order = torch.as_tensor(trace.order, device=device)  # [*, k]
    n = event[-1]
    steps = torch.arange(order.shape[-1], device=device)
    # position[j] = the step at which j was taken (k if never): j is a candidate
    # of step s iff it was not taken before s.
    position = torch.full((*order.shape[:-1], n), order.shape[-1], device=device)
    position = position.scatter(-1, order, steps.expand_as(order))
    return order, position.unsqueeze(-2) >= steps.unsqueeze(-1)


# --- option checks: every problem is a ValueError naming it ---


def _int_option(value: Any, name: str, low: int, high: int, structure: str) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValueError(f"{structure}: {name} must be an integer, got {value!r}")
    v = int(value.__index__())
    if not low <= v <= high:
        raise ValueError(f"{structure}: {name} must lie in [{low}, {high}], got {v}")
    return v


def _lengths_option(
    value: Any,
    batch: tuple[int, ...],
    n: int,
    device: torch.device,
    minimum: int,
    structure: str,
) -> Tensor | None:
    """``lengths`` broadcast to ``[*batch]`` as int64 on ``device`` (None stays None)."""
    if value is None:
        return None
    t = value if isinstance(value, Tensor) else torch.as_tensor(value)
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise ValueError(f"{structure}: lengths must hold integers, got dtype {t.dtype}")
    try:
        t = torch.broadcast_to(t.to(device=device, dtype=torch.int64), batch)
    except RuntimeError:
        raise ValueError(
            f"{structure}: lengths of shape {tuple(t.shape)} does not match the batch shape {batch}"
        ) from None
    if t.numel() and (int(t.min()) < minimum or int(t.max()) > n):
        raise ValueError(
            f"{structure}: lengths must lie in [{minimum}, {n}], got values in "
            f"[{int(t.min())}, {int(t.max())}]"
        )
    return t


def _check_options(
    spec: _Structure,
    structure: str,
    event: tuple[int, ...],
    batch: tuple[int, ...],
    device: torch.device,
    options: dict[str, Any],
) -> dict[str, Any]:
    """The structure's options, validated and normalised (``lengths`` as a tensor)."""
    n = event[-1]
    if spec.event_dims == 2 and event[0] != event[1]:
        raise ValueError(f"{structure} logits must be square [*, n, n], got event shape {event}")
    if n < spec.min_size:
        raise ValueError(f"{structure} needs n >= {spec.min_size}, got n = {n}")
    out: dict[str, Any] = {}
    if "k" in spec.options:
        if "k" not in options:
            raise ValueError(f"{structure} needs the option 'k'")
        out["k"] = _int_option(options["k"], "k", 0, n, structure)
    if "root" in spec.options:
        out["root"] = _int_option(options.get("root", 0), "root", 0, n - 1, structure)
    if "lengths" in spec.options:
        lengths = _lengths_option(options.get("lengths"), batch, n, device, 1, structure)
        shortest = int(lengths.min()) if lengths is not None and lengths.numel() else n
        if "root" in out and shortest <= out["root"]:
            raise ValueError(
                f"{structure}: root {out['root']} must be smaller than every length, "
                f"got a length of {shortest}"
            )
        out["lengths"] = lengths
    return out


_REGISTRY: dict[str, _Structure] = {
    "categorical": _Structure(1, _categorical_solve, _categorical_steps, (), 1),
    "k_subset": _Structure(1, _subset_solve, _subset_steps, ("k",), 1),
    "spanning_tree": _Structure(2, tree_solve, tree_steps, ("lengths",), 2, tree_used),
    "arborescence": _Structure(
        2, arborescence_solve, arborescence_steps, ("root", "lengths"), 2, arborescence_used
    ),
    "matching": _Structure(2, matching_solve, matching_steps, (), 1),
    # A binary tree of one element is fine: lengths >= 1.
    "binary_tree": _Structure(
        1, binary_tree_solve, binary_tree_steps, ("lengths",), 1, binary_tree_used
    ),
}

#: Structures with a tractable trace distribution, in the order documented.
RECURSIVE_STRUCTURES: tuple[str, ...] = tuple(_REGISTRY)


def _prepare(
    structure: str, logits: Any, options: dict[str, Any]
) -> tuple[_Structure, Tensor, tuple[int, ...], dict[str, Any]]:
    """Validate everything; return the spec, logits, event shape and normalised options."""
    spec = _REGISTRY.get(structure)
    if spec is None:
        raise ValueError(
            f"no recursive Gumbel-max sampler for structure {structure!r}; "
            f"supported: {', '.join(RECURSIVE_STRUCTURES)}"
        )
    unknown = set(options) - set(spec.options)
    if unknown:
        raise ValueError(f"{structure} takes options {spec.options or '()'}, got {sorted(unknown)}")
    logits = _check_logits(logits, spec, structure)
    split = logits.ndim - spec.event_dims
    event, batch = tuple(logits.shape[split:]), tuple(logits.shape[:split])
    options = _check_options(spec, structure, event, batch, logits.device, options)
    return spec, logits, event, options


def _check_logits(logits: Any, spec: _Structure, structure: str) -> Tensor:
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise ValueError(f"logits must be a floating torch.Tensor, got {type(logits).__name__}")
    if logits.ndim < spec.event_dims:
        raise ValueError(
            f"{structure} logits need at least {spec.event_dims} dims, got shape "
            f"{tuple(logits.shape)}"
        )
    if torch.isnan(logits).any() or (logits == torch.inf).any():
        raise ValueError(f"{structure} logits contain NaN or +inf")
    return logits


def _as_torch(trace: Any, device: torch.device) -> Any:
    """A trace NamedTuple with numpy or torch fields as torch tensors on ``device``.

    Traces straight from :mod:`structgrad.solvers` run on numpy scores hold numpy
    arrays; they are accepted as they are.
    """
    if not isinstance(trace, tuple) or not hasattr(trace, "_fields"):
        raise ValueError(
            f"trace must be a trace NamedTuple (e.g. from sample_with_trace), got "
            f"{type(trace).__name__}"
        )
    return type(trace)(*(torch.as_tensor(field, device=device) for field in trace))


def _flat_steps(
    structure: str, trace: Any, logits: Tensor, options: dict[str, Any]
) -> tuple[Tensor, Tensor, Tensor]:
    spec, logits, event, options = _prepare(structure, logits, options)
    trace = _as_torch(trace, logits.device)
    chosen, candidates = spec.steps(trace, event, **options, device=logits.device)
    batch = logits.shape[: logits.ndim - spec.event_dims]
    if chosen.shape[:-1] != batch:
        raise ValueError(
            f"{structure}: the trace has batch shape {tuple(chosen.shape[:-1])}, the "
            f"logits {tuple(batch)}"
        )
    flat = logits.reshape(*batch, -1)
    # A step whose candidates are all masked (-inf) is decided by the solver's
    # deterministic tie-breaking, not by the noise: mark it padded (log 1 = 0), which
    # also keeps -inf - (-inf) out of the sums (e.g. a binary-tree element with a
    # -inf score alone in its span).
    live = (candidates & (flat > -torch.inf).unsqueeze(-2)).any(-1)
    chosen = torch.where(live, chosen, -1)
    return flat, chosen, candidates
