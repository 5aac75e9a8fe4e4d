"""Run one (entry, mutation) case and classify what happened.

Outcomes: ``clean`` (a ValueError / TypeError raised by structgrad code),
``finite`` (a result whose floating values and gradients are free of NaN and
+inf), and the failures ``wrong-type`` (another exception), ``cryptic`` (a
ValueError / TypeError raised inside torch or numpy rather than by a check of
ours), ``nan`` (NaN or +inf in a result or a gradient), ``accepted`` (bad input
that returned a result) and ``refused`` (valid input that raised).
"""

from __future__ import annotations

import traceback
from typing import Any

import numpy as np
import torch

from .entries import Entry
from .mutations import Mutation, base_input

__all__ = ["FAILURES", "classify", "run_case"]

FAILURES = ("wrong-type", "cryptic", "nan", "accepted", "refused")


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, np.ndarray):
        return [torch.from_numpy(out)] if out.dtype != object else []
    if isinstance(out, tuple | list):
        return [t for o in out for t in _tensors(o)]
    return []


def _bad(t: torch.Tensor) -> bool:
    if not (t.is_floating_point() or t.is_complex()):
        return False
    t = t.detach()
    # -inf is a legitimate value (log-probabilities outside the support).
    return bool(torch.isnan(t).any() or torch.isposinf(t.real).any())


# torch / numpy wording that reaches the user when no check of ours ran first
_INTERNAL = (
    "not implemented for",
    "expected scalar type",
    "argument 'input'",
    "received an invalid combination of arguments",
    "must be Tensor, not",
    "object has no attribute",
    "can't convert",
    "could not convert",
    "does not support",
    "unsupported operand",
)


_GRAD_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _ours(err: BaseException) -> bool:
    """Whether the error was raised by a check of ours, in our words."""
    frames = traceback.extract_tb(err.__traceback__)
    last = frames[-1].filename if frames else ""
    if "structgrad" not in last and "/fuzz/" not in last:
        return False
    return not any(p in str(err) for p in _INTERNAL)


def run_case(entry: Entry, mutation: Mutation) -> tuple[str, str]:
    """``(outcome, detail)`` of calling ``entry`` on the mutated input."""
    x = mutation.make(entry, base_input(entry))
    leaf = None
    # (sparse, meta and float8 tensors have no gradient to check: passed as they are)
    if isinstance(x, torch.Tensor) and x.dtype in _GRAD_DTYPES and x.layout == torch.strided:
        if x.ndim and x.stride(0) == 0 and x.shape[0] > 1:  # "expanded": keep the stride 0
            leaf = x[:1].detach().clone().requires_grad_(True)
            x = leaf.expand(x.shape)
        else:
            leaf = x.detach().clone().requires_grad_(True)
            x = leaf if x.is_contiguous() else leaf.transpose(0, -1).contiguous().transpose(0, -1)
    try:
        out = entry.call(x)
        values = _tensors(out)
        if any(_bad(t) for t in values):
            return "nan", "non-finite result"
        grads = [t for t in values if t.requires_grad]
        if leaf is not None and grads:
            total = sum((t.double().sum() for t in grads), torch.zeros((), dtype=torch.float64))
            total.backward()
            if leaf.grad is not None and _bad(leaf.grad):
                return "nan", "non-finite gradient"
    except (ValueError, TypeError) as err:
        if not _ours(err):
            return "cryptic", f"{type(err).__name__}: {str(err)[:160]}"
        return "clean", f"{type(err).__name__}: {str(err)[:160]}"
    except Exception as err:
        return "wrong-type", f"{type(err).__name__}: {str(err)[:160]}"
    return "finite", ""


def classify(entry: Entry, mutation: Mutation) -> tuple[str, str]:
    """The case's verdict: ``pass`` or one of :data:`FAILURES`, and the detail."""
    outcome, detail = run_case(entry, mutation)
    expect = mutation.expect(entry)
    if outcome == "nan" and entry.shape_only and expect == "either":
        return "pass", "non-finite values passed through a function that does not read them"
    if outcome in ("wrong-type", "cryptic", "nan"):
        return outcome, detail
    if outcome == "finite" and expect == "error":
        return "accepted", "bad input returned a result"
    if outcome == "clean" and expect == "ok":
        return "refused", detail
    return "pass", detail
