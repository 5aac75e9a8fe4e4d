"""Option and argument checks: integers, reals, shapes, generators, tau and names.

Part of :mod:`structgrad.distributions.checks` (which re-exports every name).
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "RENAMED",
    "InputTypeError",
    "OptionError",
    "as_tau",
    "check_flag",
    "check_generator",
    "check_int",
    "check_options",
    "check_real",
    "check_shape",
    "check_tau",
    "set_validation",
    "validation_enabled",
]

_VALIDATE = [True]


def set_validation(enabled: bool) -> None:
    """Turn the value checks (NaN, +inf, negative costs) of the layers on or off.

    The checks that a recursive Gumbel-max trace fits the scores it is scored
    with (its item count, root, lengths and indices) read it too, and are
    value checks as well: off, a trace of other logits is not refused.

    Value checks read the data (a host synchronisation on a GPU); shape, dtype
    and option checks stay on. They are skipped while ``torch.compile`` traces.
    """
    _VALIDATE[0] = bool(enabled)


def validation_enabled() -> bool:
    """Whether value checks run now (on, and not inside ``torch.compile`` tracing)."""
    return _VALIDATE[0] and not torch.compiler.is_compiling()


class InputTypeError(TypeError, ValueError):
    """An argument of the wrong type or dtype.

    A ``TypeError``, and a ``ValueError`` too, so that code written against the
    earlier ``ValueError`` still catches it.
    """


class OptionError(TypeError, ValueError):
    """An option a function or layer does not take (an old or an unknown name).

    A ``ValueError`` naming the new name or listing the accepted ones, as the
    layers give; a ``TypeError`` too, as Python gives for an unexpected keyword
    argument, so code written against either catches it.
    """


def check_flag(value: Any, name: str) -> bool:
    """``value`` if it is ``True`` or ``False`` (a numpy bool too).

    Raises:
        InputTypeError: for anything else (a string such as ``"no"`` is truthy).
    """
    if not isinstance(value, bool | np.bool_):
        raise InputTypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_int(value: Any, name: str, lo: int, hi: int | None = None) -> int:
    """``value`` as a Python ``int`` in ``[lo, hi]`` (``hi=None``: no upper bound).

    Accepts anything with ``__index__`` (Python, numpy and 0-d integer torch
    values), not bools or floats.

    Raises:
        ValueError: naming ``name`` and the allowed range otherwise.
    """
    try:
        index = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        index = None
    if index is None:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if index < lo or (hi is not None and index > hi):
        span = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must lie in {span}, got {value!r}")
    return index


#: Option names that every structgrad package once took, and the one name each
#: concept has now (``tau`` for every temperature or noise scale).
RENAMED: dict[str, str] = {
    "temperature": "tau",
    "sigma": "tau",
    "target_temperature": "tau_target",
    "temp": "tau",
}

#: Names from other libraries (torch-imle, the papers) and what takes their place
#: here, the first one an owner accepts.
ALIASES: dict[str, tuple[str, ...]] = {
    "lambda": ("lam", "target"),
    "lambda_": ("lam", "target"),
    "nb_samples": ("samples",),
    "num_samples": ("samples",),
}


def check_options(owner: str, given: Iterable[str], accepted: Iterable[str]) -> None:
    """Reject option names that ``owner`` does not take; nothing is swallowed.

    Args:
        owner: what takes the options, for the message (e.g. ``"imle('k_subset')"``).
        given: the option names passed.
        accepted: the option names ``owner`` takes.

    Raises:
        OptionError: (a ``ValueError`` and a ``TypeError``) for an old name
            (saying its new one, e.g. ``temperature`` is now ``tau``), or an
            unknown name (listing the accepted ones).
    """
    accepted = sorted(set(accepted))
    given = list(given.keys() if isinstance(given, Mapping) else given)
    for name in given:
        new = RENAMED.get(name)
        if new is not None and name not in accepted:
            if new not in accepted:  # the renamed option is not one of owner's either
                raise OptionError(
                    f"{owner}: option {name!r} (now called {new!r}) is not taken here: "
                    f"it has no {new}; it takes {', '.join(accepted) or 'no options'}"
                )
            raise OptionError(f"{owner}: option {name!r} is now called {new!r}")
        for other in ALIASES.get(name, ()) if name not in accepted else ():
            if other in accepted:
                hint = " (target=Target(lam=...))" if other == "target" else ""
                raise OptionError(f"{owner}: option {name!r} is called {other!r} here{hint}")
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise OptionError(
            f"{owner}: unknown option(s) {', '.join(unknown)}; it takes {', '.join(accepted)}"
        )


def check_generator(generator: Any, device: Any = None) -> Any:
    """``generator`` if it is ``None`` or a ``torch.Generator`` on ``device``'s type.

    Raises:
        InputTypeError: for anything else (e.g. an int seed: pass
            ``torch.Generator().manual_seed(seed)``).
        ValueError: for a generator on another device type than the tensors.
    """
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise InputTypeError(
            f"generator expects a torch.Generator or None, got {type(generator).__name__} "
            "(for a seed use torch.Generator().manual_seed(seed))"
        )
    if device is not None and generator.device.type != torch.device(device).type:
        raise ValueError(
            f"generator is on {generator.device.type}, the tensors on {torch.device(device).type}"
        )
    return generator


def check_shape(shape: Any, name: str = "shape") -> tuple[int, ...]:
    """A shape: a sequence of non-negative ints (a ``torch.Size`` included).

    Raises:
        InputTypeError: for something else than a sequence of ints.
        ValueError: for a negative size.
    """
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if isinstance(shape, str) or not isinstance(shape, tuple | list | torch.Size):
        raise InputTypeError(f"{name} must be a sequence of ints, got {type(shape).__name__}")
    if any(isinstance(d, bool) or not isinstance(d, int) for d in shape):
        raise InputTypeError(f"{name} must be a sequence of ints, got {tuple(shape)!r}")
    if any(d < 0 for d in shape):
        raise ValueError(f"{name} must have non-negative sizes, got {tuple(shape)}")
    return tuple(shape)


def check_real(
    value: Any, name: str, *, lo: float = -math.inf, strict: bool = False, finite: bool = True
) -> float:
    """A real number ``>= lo`` (``> lo`` with ``strict``) as a float, finite unless told otherwise.

    Raises:
        TypeError: for a non-number (a bool included).
        ValueError: naming ``name`` for NaN, an infinity (when ``finite``) or a value out of range.
    """
    if isinstance(value, Tensor) and value.numel() == 1:
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars too
        raise InputTypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    # NaN fails every comparison: `not value >= lo` refuses it with or without `finite`
    if (finite and math.isinf(value)) or not value >= lo or (strict and value == lo):
        bound = "" if lo == -math.inf else f" {'>' if strict else '>='} {lo:g}"
        kind = "finite number" if finite else "number"
        raise ValueError(f"{name} must be a {kind}{bound}, got {value!r}")
    return value


def check_tau(tau: Any) -> float:
    """A positive finite temperature as a float.

    Raises:
        ValueError: naming ``tau`` otherwise.
    """
    if isinstance(tau, Tensor) and tau.numel() == 1:
        tau = float(tau)
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not 0 < float(tau) < math.inf:
        raise ValueError(f"tau must be a positive finite number, got {tau!r}")
    return float(tau)


def as_tau(tau: float | Tensor, like: Tensor, *, event_dims: Iterable[int] = ()) -> Tensor:
    """A positive temperature (or a tensor of them) in ``like``'s dtype and device.

    Args:
        tau: a number, or a tensor broadcastable to ``like``.
        like: the scores.
        event_dims: dims of ``like`` (negative, or from the front) along which a
            tensor ``tau`` must have size 1: one temperature per instance. The
            shift-invariant relaxations centre the scores before dividing by
            τ, which is exact only for a τ that is constant within an instance.

    Raises:
        ValueError: if any temperature is not a positive finite number, or a
            tensor ``tau`` does not broadcast to ``like`` or varies within an
            instance.
    """
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real | Tensor):
        raise InputTypeError(f"tau must be a number or a tensor, got {type(tau).__name__}")
    if isinstance(tau, Tensor):
        bad = validation_enabled() and (
            not bool(torch.isfinite(tau).all()) or bool((tau <= 0).any())
        )
    else:  # a Python number: checked without a tensor (no device synchronisation)
        bad = not 0 < tau < math.inf
    if bad:
        raise ValueError(f"tau must be a positive finite number, got {tau!r}")
    # A tau below the dtype's smallest normal number (1e-50 in float32 rounds to
    # 0; subnormals overflow every quotient) is the same limit as the smallest.
    t = torch.as_tensor(tau, dtype=like.dtype, device=like.device).clamp(
        min=torch.finfo(like.dtype).tiny
    )
    try:
        # one way: tau must not add dims or sizes to the scores' shape
        fits = torch.broadcast_shapes(t.shape, like.shape) == like.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"tau of shape {tuple(t.shape)} does not broadcast to the shape {tuple(like.shape)}"
        )
    dims = {d % like.ndim for d in event_dims} if like.ndim else set()
    padded = (1,) * (like.ndim - t.ndim) + tuple(t.shape)
    varying = sorted(d for d in dims if padded[d] != 1)
    if varying:
        want = tuple(1 if i in dims else s for i, s in enumerate(like.shape))
        raise ValueError(
            f"tau of shape {tuple(t.shape)} varies within an instance (dim(s) {varying} of "
            f"the scores' shape {tuple(like.shape)}): give one temperature per instance, "
            f"broadcastable to {want}"
        )
    return t
