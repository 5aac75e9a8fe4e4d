"""Input checks shared by every structgrad package above the solvers.

Each check raises a ``ValueError`` that names the argument and what was wrong.
Values are read with one reduction in the common (valid) case.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from structgrad.solvers import InvalidScoresError

from ._checks_options import (
    RENAMED,
    InputTypeError,
    OptionError,
    as_tau,
    check_flag,
    check_generator,
    check_int,
    check_options,
    check_real,
    check_shape,
    check_tau,
    set_validation,
    validation_enabled,
)
from ._numerics import range_limit

__all__ = [
    "RENAMED",
    "InputTypeError",
    "OptionError",
    "as_tau",
    "check_dense",
    "check_flag",
    "check_float",
    "check_generator",
    "check_int",
    "check_max_range",
    "check_options",
    "check_real",
    "check_scores",
    "check_shape",
    "check_square",
    "check_subset",
    "check_tau",
    "check_tensor",
    "check_values",
    "lengths_mask",
    "set_validation",
    "square_size",
    "validation_enabled",
]


#: The dtypes the torch layers compute in (half precision overflows in the
#: log-space and Matrix-Tree numerics, so it is refused up front).
FLOAT_DTYPES = (torch.float32, torch.float64)


def check_tensor(x: Any, name: str = "scores") -> Tensor:
    """``x`` if it is a ``torch.Tensor`` of dtype float32 or float64.

    One rule for every torch layer: numpy arrays, lists and scalars are not
    converted (their dtype and device would be guesses).

    Raises:
        InputTypeError: naming ``name``, what was expected and what was given.
    """
    if not isinstance(x, Tensor):
        hint = (
            " (convert with torch.as_tensor)"
            if isinstance(x, list | tuple) or (type(x).__module__ == "numpy")
            else ""
        )
        raise InputTypeError(f"{name} expects a torch.Tensor, got {type(x).__name__}{hint}")
    check_dense(x, name)
    check_float(x, name)
    return x


def check_dense(x: Tensor, name: str = "scores") -> None:
    """Raise :class:`InputTypeError` for a sparse (or other non-strided) or a meta tensor."""
    # (each failed deep inside an op, naming no argument, or a sparse one gave a result)
    if x.layout != torch.strided:
        raise InputTypeError(f"{name} must be a dense tensor, got layout {x.layout}")
    if x.is_meta:
        raise InputTypeError(f"{name} is a meta tensor, which holds no values")


def check_float(x: Tensor, name: str = "scores") -> None:
    """Raise :class:`InputTypeError` unless ``x`` is float32 or float64."""
    if x.dtype in FLOAT_DTYPES:
        return
    if x.is_floating_point():
        raise InputTypeError(
            f"{name} has dtype {x.dtype}, which is not supported: use float32 or float64"
        )
    raise InputTypeError(f"{name} must be a floating tensor (float32 or float64), got {x.dtype}")


def check_values(scores: Tensor, name: str = "scores", *, costs: bool = False) -> bool:
    """Reject NaN and ``+inf`` (``-inf`` marks forbidden choices and is allowed).

    Args:
        scores: the tensor to read.
        name: its name, for the message.
        costs: the values are costs (minimised): ``+inf`` marks forbidden
            choices and ``-inf`` is refused.

    Returns:
        Whether some entry is forbidden (``False``, without reading the values,
        when value checks are off: see :func:`validation_enabled`).

    Raises:
        InputTypeError: on a dtype other than float32 / float64.
        InvalidScoresError: (a ``ValueError``) on NaN or ``+inf`` (``-inf`` costs).
    """
    check_float(scores, name)
    if not validation_enabled():
        return False
    if math.isfinite(float(scores.detach().sum())):
        return False  # one reduction in the common case (isfinite() costs several passes)
    if bool(torch.isnan(scores).any()):
        raise InvalidScoresError(f"{name} contains NaN")
    wrong, forbidden = ("-inf", "+inf") if costs else ("+inf", "-inf")
    if bool((scores == float(wrong)).any()):
        raise InvalidScoresError(f"{name} contains {wrong}; {name} must be finite or {forbidden}")
    return True


def check_scores(scores: Any, name: str, event_dim: int, *, square: bool = False) -> Tensor:
    """Return ``scores`` if it is a floating tensor of rank ``>= event_dim`` without NaN or +inf.

    Raises:
        InputTypeError: for a non-tensor or a dtype other than float32 / float64.
        ValueError: naming ``name`` and what was wrong.
    """
    check_tensor(scores, name)
    if scores.dim() < event_dim:
        shape = "[..., n, n]" if event_dim == 2 else "[..., n]"
        raise ValueError(f"{name} must have shape {shape}, got rank {scores.dim()}")
    if square and scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"{name} must be square in its last two dimensions, got {scores.shape}")
    if scores.numel():
        check_values(scores, name)
    return scores


def square_size(scores: Tensor, name: str = "scores", min_size: int = 2) -> int:
    """``n`` of a floating-point ``[..., n, n]`` tensor (its values are not read)."""
    check_tensor(scores, name)
    if scores.dim() < 2 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"{name} must have shape [..., n, n], got {tuple(scores.shape)}")
    n = scores.shape[-1]
    if n < min_size:
        raise ValueError(f"{name} needs n >= {min_size}, got n = {n}")
    return n


def check_square(scores: Tensor, name: str = "scores", min_size: int = 2) -> int:
    """Validate a ``[..., n, n]`` tensor and its values; return ``n``."""
    n = square_size(scores, name, min_size)
    check_values(scores, name)
    return n


def check_max_range(max_range: Any) -> float | None:
    """``None``, or ``max_range`` as a positive float (a tree law's clip range).

    For layers that keep the option for later calls: a bad range is refused
    when the layer is built, not at its first draw.

    Raises:
        InputTypeError: for a non-number (a string, a bool).
        ValueError: for zero, a negative number or NaN.
    """
    return None if max_range is None else range_limit(max_range, directed=False)


def check_subset(scores: Tensor, k: Any) -> tuple[int, int]:
    """Validate ``[..., n]`` scores and a subset size ``k`` in ``[0, n]``; return ``(n, k)``."""
    check_tensor(scores)
    if scores.dim() < 1:
        raise ValueError("scores must have shape [..., n]")
    check_values(scores)
    n = scores.shape[-1]
    return n, check_int(k, "k", 0, n)


def lengths_mask(
    lengths: Any, batch: tuple[int, ...], n: int, device: Any, lo: int = 1, why: str = ""
) -> Tensor:
    """``[*batch, n]`` boolean mask of the vertices ``v < lengths`` of each graph.

    Args:
        lengths: integers broadcastable to ``batch``, each in ``[lo, n]``.
        batch: the batch shape.
        n: the padded size.
        device: device of the mask.
        lo: the smallest accepted length.
        why: the reason for ``lo``, for the message (e.g. ``"the root 3 ..."``).

    Raises:
        InputTypeError: for lengths that are not integers (a string, a ragged list).
        ValueError: on non-integer lengths, a shape that does not broadcast, or a
            length outside ``[lo, n]``.
    """
    try:
        lens = torch.as_tensor(lengths, device=device)
    except (TypeError, ValueError, RuntimeError):  # a string, a ragged list, an object
        raise InputTypeError(
            f"lengths must be integers (an int, a list or a tensor), got {lengths!r:.60}"
        ) from None
    if lens.is_floating_point() or lens.is_complex() or lens.dtype == torch.bool:
        raise ValueError(f"lengths must hold integers, got {lens.dtype}")
    try:
        lens = lens.expand(batch)
    except RuntimeError:
        raise ValueError(
            f"lengths of shape {tuple(lens.shape)} do not match batch {batch}"
        ) from None
    lens_read = lens.numel() and validation_enabled()
    if lens_read and (bool((lens < lo).any()) or bool((lens > n).any())):
        why = f" ({why})" if why else ""
        raise ValueError(f"lengths must lie in [{lo}, {n}]{why}, got {lens.tolist()}")
    return torch.arange(n, device=device) < lens.unsqueeze(-1)
