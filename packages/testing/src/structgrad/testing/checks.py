"""Generic checks every solver must pass: batching, array kinds, layouts.

Each ``assert_*`` takes a solver ``fn(x, **options)`` returning a solution or
``(solution, trace)`` (a tuple of arrays) and raises ``AssertionError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["as_arrays", "assert_batching", "assert_layouts", "assert_torch_roundtrip"]

Solver = Callable[..., Any]


def as_arrays(result: Any) -> list[NDArray[Any]]:
    """Flatten a solver result (solution or ``(solution, trace)``) into numpy arrays."""
    items = list(result[1]) if isinstance(result, tuple) else []
    first = result[0] if isinstance(result, tuple) else result
    return [_to_numpy(a) for a in [first, *items]]


def _to_numpy(a: Any) -> NDArray[Any]:
    if type(a).__module__.partition(".")[0] == "torch":
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _assert_same(got: list[NDArray[Any]], want: list[NDArray[Any]], what: str) -> None:
    assert len(got) == len(want), what
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == w.shape, f"{what}: output {k} shape {g.shape} != {w.shape}"
        np.testing.assert_array_equal(g, w, err_msg=f"{what}: output {k}")


def assert_batching(fn: Solver, x: NDArray[Any], core_ndim: int, **options: Any) -> None:
    """A batch ``[B, *core]`` gives the same as each item alone and as ``[b1, b2, *core]``."""
    whole = as_arrays(fn(x, **options))
    for b in range(x.shape[0]):
        single = as_arrays(fn(x[b], **options))
        _assert_same(single, [a[b] for a in whole], f"item {b} alone vs in the batch")
    if x.shape[0] % 2 == 0 and x.shape[0] > 0:
        split = x.reshape((2, x.shape[0] // 2, *x.shape[1:]))
        nested = as_arrays(fn(split, **options))
        _assert_same(
            nested,
            [a.reshape((2, x.shape[0] // 2, *a.shape[1:])) for a in whole],
            "two batch dimensions",
        )
    assert x.ndim == core_ndim + 1


def assert_layouts(fn: Solver, x: NDArray[Any], **options: Any) -> None:
    """Non-contiguous views and other float dtypes give the same structure."""
    want = as_arrays(fn(np.ascontiguousarray(x), **options))
    # A strided view: every other element of a doubled array.
    doubled = np.repeat(x, 2, axis=-1)[..., ::2]
    assert not doubled.flags.c_contiguous
    _assert_same(as_arrays(fn(doubled, **options)), want, "strided input")
    fortran = np.asfortranarray(x)
    _assert_same(as_arrays(fn(fortran, **options)), want, "Fortran-ordered input")
    first = as_arrays(fn(x, **options))[0]
    assert first.dtype == x.dtype, f"solution dtype {first.dtype} != input dtype {x.dtype}"
    if np.issubdtype(x.dtype, np.floating):
        # The same numbers in float32 and float64 (rounded to float32 first).
        same = x.astype(np.float32)
        results = {
            dtype: as_arrays(fn(same.astype(dtype), **options))
            for dtype in (np.float32, np.float64)
        }
        for dtype, got in results.items():
            assert got[0].dtype == dtype, f"solution dtype {got[0].dtype} != input dtype {dtype}"
        _assert_same(
            [a.astype(np.float64) for a in results[np.float32]],
            [a.astype(np.float64) for a in results[np.float64]],
            "float32 vs float64 input",
        )


def assert_torch_roundtrip(fn: Solver, x: NDArray[Any], **options: Any) -> None:
    """A torch tensor gives torch tensors: same values, dtype, device; traces as int64/bool."""
    import torch

    want = as_arrays(fn(x, **options))
    tensor = torch.from_numpy(np.ascontiguousarray(x))
    result = fn(tensor, **options)
    first = result[0] if isinstance(result, tuple) else result
    assert isinstance(first, torch.Tensor)
    assert first.dtype == tensor.dtype and first.device == tensor.device
    if isinstance(result, tuple):
        for item in result[1]:
            assert isinstance(item, torch.Tensor)
            assert item.dtype in (torch.int64, torch.bool), item.dtype
            assert item.device == tensor.device
    _assert_same(as_arrays(result), want, "torch vs numpy input")
    # A tensor that requires grad, and a non-contiguous one, are accepted as well.
    leaf = tensor.clone().requires_grad_(True) if tensor.is_floating_point() else tensor
    _assert_same(as_arrays(fn(leaf, **options)), want, "tensor requiring grad")
    strided = torch.from_numpy(np.repeat(np.ascontiguousarray(x), 2, axis=-1))[..., ::2]
    assert not strided.is_contiguous()
    _assert_same(as_arrays(fn(strided, **options)), want, "non-contiguous tensor")
