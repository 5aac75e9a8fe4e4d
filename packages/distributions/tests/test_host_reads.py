"""With value checks off, the marginals read no values on the host for a device tensor.

A read of a CUDA tensor (``.item()``, ``bool()``, ``float()``, ``.tolist()``,
``.numpy()``) waits for the device. Off the CPU and with
``checks.set_validation(False)``, the Matrix-Tree and k-subset marginals take
the choices a traced call takes (float64 work chosen from dtypes, the range
clip always, no conditioning retry), so they read nothing. Here a CPU tensor
stands in for the device (``device_syncs`` patched) and a torch function mode
records every read; with CUDA the same runs under ``set_sync_debug_mode``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from torch.overrides import TorchFunctionMode

import structgrad.distributions._numerics as numerics
from structgrad.distributions import (
    arborescence_marginals,
    k_subset_marginals,
    multi_root_arborescence_marginals,
    spanning_tree_marginals,
)
from structgrad.distributions.checks import set_validation

_READS = {"item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy"}
# Ops whose output size depends on the values: the host waits to allocate it.
_SIZED = {"nonzero", "argwhere", "masked_select", "unique", "unique_consecutive"}


def _mask_index(args: tuple) -> bool:  # type: ignore[type-arg]
    """Whether an indexing call uses a boolean mask (an output sized by the values)."""
    index = args[1] if len(args) > 1 else None
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in parts)


class _Reads(TorchFunctionMode):
    """Records every tensor method that reads values on the host or sizes by them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = getattr(func, "__name__", "")
        if name in _READS or name in _SIZED or (name == "__getitem__" and _mask_index(args)):
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


def _multi_root(x: torch.Tensor) -> torch.Tensor:
    """Edges ``[..., 5, 5]`` and roots ``[..., 5]`` of ``x`` ``[..., 6, 5]``, as one tensor."""
    edges, roots = multi_root_arborescence_marginals(x[..., :5, :], x[..., 5, :])
    return torch.cat([edges, roots[..., None, :]], dim=-2)


def _cases(device: str) -> dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    wide = 30 * torch.randn(3, 6, 6, generator=g)  # beyond the clip range: the clip runs
    forbidden = torch.randn(3, 6, 6, generator=g)
    forbidden[0, 0, 3] = forbidden[1, 2, 4] = -torch.inf
    lengths = torch.tensor([6, 4, 2], device=device)
    return {
        "tree": (spanning_tree_marginals, torch.randn(3, 6, 6, generator=g)),
        "tree wide": (spanning_tree_marginals, wide),
        "tree -inf": (spanning_tree_marginals, forbidden),
        "tree lengths": (lambda x: spanning_tree_marginals(x, lengths=lengths), wide),
        "arborescence": (arborescence_marginals, torch.randn(3, 6, 6, generator=g)),
        "arborescence wide": (arborescence_marginals, wide),
        "arborescence -inf": (arborescence_marginals, forbidden),
        "arborescence lengths": (lambda x: arborescence_marginals(x, lengths=lengths), wide),
        "multi-root": (
            _multi_root,
            torch.randn(3, 6, 5, generator=g),
        ),
        "k-subset": (lambda x: k_subset_marginals(x, 3), torch.randn(3, 9, generator=g)),
        "k-subset wide": (lambda x: k_subset_marginals(x, 3), 200 * torch.randn(3, 9, generator=g)),
    }


@pytest.fixture
def unchecked() -> Iterator[None]:
    set_validation(False)
    try:
        yield
    finally:
        set_validation(True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(_cases("cpu")))
def test_no_host_reads_off_the_cpu_without_checks(
    name: str, dtype: torch.dtype, unchecked: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fn, x = _cases("cpu")[name]
    x = x.to(dtype)
    set_validation(True)
    want = fn(x)  # eager, checked, reading values
    set_validation(False)
    monkeypatch.setattr(numerics, "device_syncs", lambda like: True)
    leaf = x.clone().requires_grad_()
    with _Reads() as mode:
        got = fn(leaf)
        (got * torch.linspace(-1, 1, got.shape[-1], dtype=dtype)).sum().backward()
    assert mode.seen == []
    assert got.dtype == dtype
    torch.testing.assert_close(got, want, atol=1e-5 if dtype == torch.float32 else 1e-9, rtol=0)
    assert leaf.grad is not None and bool(torch.isfinite(leaf.grad).all())


def test_cpu_tensors_keep_reading() -> None:
    # On the CPU a read costs no synchronisation: eager keeps its value-based choices.
    set_validation(False)
    try:
        assert not numerics.tracing(torch.zeros(2))
    finally:
        set_validation(True)
    assert not numerics.tracing(torch.zeros(2))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", list(_cases("cpu")))
def test_no_sync_on_cuda_without_checks(name: str, unchecked: None) -> None:
    fn, x = _cases("cuda")[name]
    x = x.cuda().requires_grad_()
    fn(x)  # warm-up: lazy CUDA initialisation may synchronise
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = fn(x)
        out.sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
