"""Checks that a torch function compiles whole and matches its eager self.

:func:`assert_compiles` is what every package's compile tests call: no graph
break under ``torch._dynamo.explain``, and ``torch.compile(fullgraph=True)``
(``aot_eager`` backend: the traced graph, forward and backward, run by the
eager kernels) gives eager's values and gradients, with the same seed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["assert_compiles"]


def _fresh(args: tuple[Any, ...], grad: bool) -> list[Any]:
    """Copies of the tensor arguments (floating ones require grad when ``grad``)."""
    out = []
    for a in args:
        if hasattr(a, "detach"):
            a = a.detach().clone()
            if grad and a.is_floating_point():
                a.requires_grad_(True)
        out.append(a)
    return out


def _run(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    grad: bool,
    seed: int,
    reset: Callable[[], Any] | None,
) -> list[Any]:
    """Outputs (and input gradients) of ``fn`` on fresh copies, seeded."""
    import torch

    if reset is not None:
        reset()
    inputs = _fresh(args, grad)
    torch.manual_seed(seed)
    out = fn(*inputs)
    outs = list(out) if isinstance(out, tuple | list) else [out]
    results = [o.detach() for o in outs]
    if grad:
        # A fixed, non-symmetric cotangent: every output entry weighs differently.
        loss = sum(
            (o * torch.linspace(-1.0, 2.0, o.numel(), dtype=o.dtype).view(o.shape)).sum()
            for o in outs
            if o.is_floating_point() and o.requires_grad
        )
        leaves = [a for a in inputs if hasattr(a, "requires_grad") and a.requires_grad]
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        pairs = zip(leaves, grads, strict=True)
        results += [torch.zeros_like(a) if g is None else g for a, g in pairs]
    return results


def assert_compiles(
    fn: Callable[..., Any],
    *args: Any,
    grad: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 0,
    reset: Callable[[], Any] | None = None,
    dynamic: bool | None = None,
) -> None:
    """Assert that ``fn(*args)`` traces without a graph break and matches eager.

    Args:
        fn: the function (tensors in, a tensor or a tuple of tensors out).
        *args: its arguments; tensors are copied for each run.
        grad: also compare the gradients of the floating inputs (under a fixed
            cotangent).
        rtol: relative tolerance (default: 1e-5 for float32, 1e-9 for float64:
            a traced call may work in float64 where eager picks float32 by value).
        atol: absolute tolerance (default: as ``rtol``'s default; 0 is taken as 0).
        seed: torch's global seed before each run (random layers draw the
            same noise eagerly and compiled).
        reset: called before each run, e.g. to restore a stateful layer's
            ``state_dict`` (AIMLE adapts its target in backward).
        dynamic: ``torch.compile``'s ``dynamic`` (``True``: sizes traced as symbols).

    Raises:
        AssertionError: on a graph break or a mismatch.
    """
    import torch
    import torch._dynamo

    torch._dynamo.reset()
    with warnings.catch_warnings():
        # Raised by dynamo itself while it traces an autograd.Function (torch 2.13).
        warnings.filterwarnings("ignore", ".*should not be instantiated", DeprecationWarning)
        explained = torch._dynamo.explain(fn)(*_fresh(args, grad=False))
        reasons = [str(r.reason).splitlines()[0] for r in explained.break_reasons]
        assert explained.graph_break_count == 0, f"graph breaks: {reasons}"
        eager = _run(fn, args, grad, seed, reset)
        compiled = torch.compile(fn, backend="aot_eager", fullgraph=True, dynamic=dynamic)
        traced = _run(compiled, args, grad, seed, reset)
    torch._dynamo.reset()
    assert len(eager) == len(traced)
    for e, c in zip(eager, traced, strict=True):
        assert e.shape == c.shape and e.dtype == c.dtype, (e.shape, c.shape, e.dtype, c.dtype)
        if not e.is_floating_point():
            assert torch.equal(e, c)
            continue
        tol = 1e-5 if e.dtype == torch.float32 else 1e-9
        torch.testing.assert_close(
            c, e, rtol=tol if rtol is None else rtol, atol=tol if atol is None else atol
        )
