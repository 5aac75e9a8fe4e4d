"""Input mutations and what each may do: raise cleanly, return a finite result, or either.

A mutation turns the valid primary input of an :class:`~entries.Entry` into
another input and says what is allowed:

- ``"error"``: bad input; only a clean ``ValueError`` / ``TypeError`` is right;
- ``"ok"``: valid input; only a finite result (and finite gradients) is right;
- ``"either"``: a clean error or a finite result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .entries import Entry

__all__ = ["MUTATIONS", "Mutation", "base_input"]


@dataclass(frozen=True)
class Mutation:
    """A named input transformation and the outcome it allows."""

    name: str
    make: Callable[[Entry, torch.Tensor], Any]
    expect: Callable[[Entry], str]


def base_input(entry: Entry, shape: tuple[int, ...] | None = None, seed: int = 0) -> torch.Tensor:
    """A valid float32 input of ``entry`` (``shape`` overrides its shape)."""
    gen = torch.Generator().manual_seed(seed)
    shape = entry.shape if shape is None else shape
    if entry.costs:
        return torch.rand(shape, generator=gen) + 0.1
    return torch.randn(shape, generator=gen)


def _with_n(entry: Entry, n: int) -> torch.Tensor:
    event = (n, n) if entry.square else (*entry.shape[1:-1], n)
    return base_input(entry, (entry.shape[0], *event))


def _set(x: torch.Tensor, value: float, where: str = "entry") -> torch.Tensor:
    x = x.clone()
    flat = x.view(x.shape[0], -1)
    if where == "entry":
        flat[0, 1] = value
    elif where == "row":
        flat[0] = value
    else:
        flat[:] = value
    return x


def _const(kind: str) -> Callable[[Entry], str]:
    return lambda entry: kind


def _reshaped(kind: str) -> Callable[[Entry], str]:
    """A new shape: bad input where another argument (a trace, a target) is shaped like ``x``."""
    return lambda entry: "error" if entry.paired else kind


def _n_rule(n: int) -> Callable[[Entry], str]:
    def rule(entry: Entry) -> str:
        if entry.paired or entry.fixed_event:
            return "error"
        return "either" if n >= entry.min_n or entry.event == 0 else "error"

    return rule


def _nonfinite(entry: Entry) -> str:
    """NaN / +inf values: bad input, unless the entry does not read the values."""
    return "either" if entry.shape_only else "error"


def _neg(entry: Entry) -> str:
    """Large negative values: fine for scores, bad input for costs.

    Where another argument is fixed (a trace, a target), it may need the entry.
    """
    if entry.costs:
        return "error"
    return "either" if entry.paired or entry.shape_only else "ok"


def _neginf(entry: Entry) -> str:
    """-inf: a forbidden choice for scores, bad input for costs and matrices to invert."""
    return "error" if entry.finite else _neg(entry)


def _neg_either(entry: Entry) -> str:
    """Rows of -inf: maybe infeasible (a clean error), maybe fine; bad input for costs."""
    return "error" if entry.costs or entry.finite else "either"


def _noncontiguous(entry: Entry, x: torch.Tensor) -> torch.Tensor:
    # the same values and shape, laid out transposed in memory
    t = x.transpose(0, -1).contiguous().transpose(0, -1)
    assert not t.is_contiguous()
    return t


MUTATIONS: list[Mutation] = [
    Mutation("valid", lambda e, x: x, _const("ok")),
    Mutation("float64", lambda e, x: x.double(), _const("ok")),
    Mutation("noncontiguous", _noncontiguous, _const("ok")),
    Mutation("batch=1", lambda e, x: x[:1], _reshaped("ok")),
    Mutation("expanded", lambda e, x: x[:1].expand(x.shape), _const("ok")),  # stride 0
    Mutation("batch=0", lambda e, x: x[:0], _reshaped("ok")),
    Mutation("unbatched", lambda e, x: x[0], lambda e: "error" if e.paired else "either"),
    Mutation("n=2", lambda e, x: _with_n(e, 2), _n_rule(2)),
    Mutation("n=1", lambda e, x: _with_n(e, 1), _n_rule(1)),
    Mutation("n=0", lambda e, x: _with_n(e, 0), _n_rule(0)),
    Mutation("int64", lambda e, x: (x * 3).round().long(), _const("either")),
    Mutation("bool", lambda e, x: x > 0, _const("either")),
    Mutation("float16", lambda e, x: x.half(), _const("either")),
    Mutation("bfloat16", lambda e, x: x.bfloat16(), _const("either")),
    Mutation("complex64", lambda e, x: x.to(torch.complex64), _const("error")),
    Mutation("float8", lambda e, x: x.to(torch.float8_e4m3fn), _const("either")),
    Mutation("sparse", lambda e, x: x.to_sparse(), _const("error")),
    Mutation("meta", lambda e, x: torch.empty_like(x, device="meta"), _const("error")),
    Mutation("scalar", lambda e, x: x.flatten()[0], lambda e: "ok" if e.event == 0 else "error"),
    Mutation(
        "flattened",
        lambda e, x: x.flatten(),
        lambda e: (
            "either"
            if e.shape_only
            else "error"
            if e.event == 2 or e.fixed_event
            else _reshaped("ok")(e)
        ),
    ),
    Mutation("nan entry", lambda e, x: _set(x, float("nan")), _nonfinite),
    Mutation("+inf entry", lambda e, x: _set(x, float("inf")), _nonfinite),
    Mutation("-inf entry", lambda e, x: _set(x, float("-inf")), _neginf),
    Mutation("nan row", lambda e, x: _set(x, float("nan"), "row"), _nonfinite),
    Mutation("-inf row", lambda e, x: _set(x, float("-inf"), "row"), _neg_either),
    Mutation("all -inf", lambda e, x: _set(x, float("-inf"), "all"), _neg_either),
    Mutation("+1e30 entry", lambda e, x: _set(x, 1e30), _const("ok")),
    Mutation("-1e30 entry", lambda e, x: _set(x, -1e30), _neg),
    Mutation("float32 min entry", lambda e, x: _set(x, torch.finfo(torch.float32).min), _neg),
    Mutation(
        "float32 max entry", lambda e, x: _set(x, torch.finfo(torch.float32).max), _const("either")
    ),
    Mutation("1e200 float64", lambda e, x: _set(x.double(), 1e200), _const("either")),
    Mutation("scaled x1e6", lambda e, x: x * 1e6, _const("ok")),
    Mutation("numpy", lambda e, x: x.numpy(), lambda e: "ok" if e.arrays else "error"),
    Mutation("list", lambda e, x: x.tolist(), lambda e: "either" if e.arrays else "error"),
    Mutation("None", lambda e, x: None, _const("error")),
    Mutation("string", lambda e, x: "scores", _const("error")),
    Mutation("numpy object", lambda e, x: np.array([None] * 3, dtype=object), _const("error")),
]
