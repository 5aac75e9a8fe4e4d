"""Input checks shared by every public solver: they run before any kernel.

Each failure is a ``ValueError`` that names the argument and what was wrong,
so that nothing invalid ever reaches a ``nogil`` loop.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._bridge import Bridge, to_numpy_int


class Batched(NamedTuple):
    """A validated input, flattened to one leading batch dimension."""

    bridge: Bridge
    flat: NDArray[np.floating[Any]]  # [B, *core], C-contiguous float32/float64
    batch_shape: tuple[int, ...]


class InvalidScoresError(ValueError):
    """Scores no structure can be computed from (NaN, ``+inf``, ``-inf`` forbidding all).

    A ``ValueError``; its own class so that a training loop can tell a model
    whose outputs diverged from other errors (and stop the run cleanly).
    """


def check_values(arr: NDArray[Any], name: str, *, allow_neg_inf: bool = True) -> None:
    """Reject NaN and +inf (and -inf unless allowed)."""
    if not np.issubdtype(arr.dtype, np.floating) or arr.size == 0:
        return
    # One reduction, no temporary, in the common case: the maximum is NaN or +inf
    # exactly when a NaN or a +inf is present (NaN propagates through maximum).
    if np.maximum.reduce(arr, axis=None) < np.inf and (
        allow_neg_inf or np.minimum.reduce(arr, axis=None) > -np.inf
    ):
        return
    if np.isnan(arr).any():
        raise InvalidScoresError(f"{name} contains NaN")
    allowed = "finite or -inf" if allow_neg_inf else "finite"
    if np.isposinf(arr).any():
        raise InvalidScoresError(f"{name} contains +inf; values must be {allowed}")
    if not allow_neg_inf and np.isneginf(arr).any():
        raise InvalidScoresError(f"{name} contains -inf; values must be {allowed}")


def check_shape(
    shape: tuple[int, ...],
    name: str,
    *,
    core_ndim: int,
    square: bool = False,
    min_size: int = 2,
    dims: str | None = None,
) -> tuple[int, ...]:
    """The trailing ``core_ndim`` sizes of ``shape``: rank, squareness and size checked.

    The shape rules of every solver, on the host and in the CUDA kernels alike
    (those read no values). ``dims``: the expected shape for error messages
    (default ``[..., n, n]`` or ``[..., n]``).
    """
    shape = tuple(shape)
    if len(shape) < core_ndim:
        dims = dims or ("[..., n, n]" if core_ndim == 2 else "[..., n]")
        raise ValueError(f"{name} must have shape {dims}, got rank {len(shape)} shape {shape}")
    core = shape[len(shape) - core_ndim :]
    if square and core[0] != core[1]:
        raise ValueError(f"{name} must be square in its last two dimensions, got {core}")
    if min(core) < min_size:
        raise ValueError(f"{name} needs size >= {min_size} in its last dimensions, got {core}")
    return core


def batched(
    x: Any,
    name: str,
    *,
    core_ndim: int,
    square: bool = False,
    min_size: int = 2,
    allow_neg_inf: bool = True,
    dims: str | None = None,
) -> Batched:
    """Validate ``x`` of shape ``[*batch, *core]`` and flatten it to ``[B, *core]``.

    Args:
        x: numpy array, torch tensor or nested sequence.
        name: argument name used in error messages.
        core_ndim: number of trailing (structure) dimensions.
        square: whether the two trailing dimensions must be equal.
        min_size: smallest allowed size of the trailing dimensions.
        allow_neg_inf: whether ``-inf`` entries (forbidden choices) are allowed.
        dims: the expected shape for error messages (default ``[..., n, n]`` or
            ``[..., n]``).
    """
    bridge = Bridge(x, name)
    arr = bridge.array
    core = check_shape(arr.shape, name, core_ndim=core_ndim, square=square, min_size=min_size,
                       dims=dims)  # fmt: skip
    check_values(arr, name, allow_neg_inf=allow_neg_inf)
    batch_shape = tuple(arr.shape[: arr.ndim - core_ndim])
    flat = bridge.kernel_array(arr.reshape((-1, *core)))
    return Batched(bridge, flat, batch_shape)


def check_lengths(
    lengths: Any, batch_shape: tuple[int, ...], n: int, *, minimum: int = 1
) -> NDArray[np.int64]:
    """Per-graph sizes, broadcast to the batch and flattened to ``[B]``.

    ``None`` means every graph uses all ``n`` vertices.
    """
    size = int(np.prod(batch_shape, dtype=np.int64))
    if lengths is None:
        return np.full(size, n, dtype=np.int64)
    arr = to_numpy_int(lengths, "lengths")
    try:
        arr = np.broadcast_to(arr, batch_shape)
    except ValueError:
        raise ValueError(
            f"lengths of shape {arr.shape} does not match the batch shape {batch_shape}"
        ) from None
    if arr.size and (arr.min() < minimum or arr.max() > n):
        raise ValueError(
            f"lengths must lie in [{minimum}, {n}], got values in [{arr.min()}, {arr.max()}]"
        )
    return np.ascontiguousarray(arr.reshape(-1), dtype=np.int64)


def check_int(value: Any, name: str, low: int, high: int) -> int:
    """An ``int`` (numpy or torch scalar included, bool excluded) in ``[low, high]``."""
    try:
        # bools are not counts, nor are 0-d bool tensors; a one-element 1-d
        # tensor is refused as numpy's is (torch's __index__ would take it)
        if isinstance(value, bool) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool"):
            raise TypeError
        if getattr(value, "ndim", 0) != 0:
            raise TypeError
        # __index__ takes ints and integer scalars; float or multi-element arrays refuse it
        v = int(value.__index__())
    except (AttributeError, TypeError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if not low <= v <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {v}")
    return v


def refuse_float(value: Any, name: str) -> Any:
    """``value`` as an ``int``: a count or an index the ops' schemas take as int.

    Cheap enough to trace for a Python int. Under ``torch.compile`` a float
    failed in the op's fake-tensor call, naming no argument, and a 0-dim
    tensor (which eager calls take) reached the schema as a tensor; both go
    through :func:`check_int` (a tensor's value is read: a graph break).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) or getattr(value, "is_floating_point", lambda: False)():
        # (traced, a float tensor's __index__ failed in its fake call, not here)
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return check_int(value, name, -(2**63), 2**63 - 1)


#: Scores from this magnitude are scaled down (exactly, by a power of two) before
#: an assignment: sums and differences of ``n`` of them stay below the float64 limit.
HUGE = 2.0**960


def forbid_neg_inf(flat: NDArray[np.floating[Any]], terms: int) -> NDArray[np.float64]:
    """``flat`` ``[B, ...]`` in float64, ``-inf`` replaced per item by a sentinel (then a copy).

    For solvers that add up ``terms`` scores (the assignment): the
    sentinel lies so far below every finite score of its item that one ``-inf``
    choice costs more than any difference among finite solutions, so the
    optimum uses as few ``-inf`` entries as possible and, among those, has the
    best finite sum. Items without any finite score are solved on zeros.
    Items with a score of magnitude :data:`HUGE` or more are scaled down as
    well: their differences (the dual prices') would overflow to ``inf``, on
    which the search never ended. ``flat`` holds no NaN or +inf (validated before).
    """
    out = flat.astype(np.float64, copy=False)
    # Without NaN and +inf a -inf is present iff it is the minimum: one reduction,
    # no boolean temporary, in the common case of none.
    if not out.size or (out.min() > -np.inf and np.abs(out).max() < HUGE):
        return out
    neg = np.isneginf(out)
    axes = tuple(range(1, out.ndim))
    hi = np.max(np.where(neg, -np.inf, out), axis=axes, keepdims=True)
    lo = np.min(np.where(neg, np.inf, out), axis=axes, keepdims=True)
    all_neg = ~np.isfinite(hi)
    hi = np.where(all_neg, 0.0, hi)
    lo = np.where(all_neg, 0.0, lo)
    # Each item with a -inf is scaled by a power of two (exact: the optimum is
    # unchanged) to a largest finite |score| in [0.5, 1), so that the sentinel
    # below stays finite near the float64 limit and tiny scores (1e-17) are not
    # lost to rounding next to it.
    shift = np.frexp(np.maximum(np.abs(hi), np.abs(lo)))[1]
    huge = np.maximum(np.abs(hi), np.abs(lo)) >= HUGE  # differences would overflow
    shift = np.where(neg.any(axis=axes, keepdims=True) | huge, shift, 0)
    out, hi, lo = np.ldexp(out, -shift), np.ldexp(hi, -shift), np.ldexp(lo, -shift)
    # Sum of `terms` finite entries spans at most terms * (hi - lo); go below that
    # by a margin of the magnitude (now at most 1) too, or rounding would put the
    # sentinel among the finite scores.
    sentinel = lo - (hi - lo + 1.0) * (terms + 1)
    if not np.all(np.isfinite(sentinel)):
        raise ValueError(f"too many terms ({terms}) to handle -inf entries in float64")
    return np.where(neg, sentinel, out)
