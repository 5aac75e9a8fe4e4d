"""``latent(...)`` layers inside ``torch.compile(fullgraph=True)``, forward and backward."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from structgrad.models import METHODS, latent
from structgrad.testing.compiled import assert_compiles

CASES: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
    ("k_subset", {"k": 3}, (5, 10)),
    ("spanning_tree", {}, (4, 6, 6)),
]


@pytest.mark.parametrize("method", ["sst", "imle", "aimle"])
@pytest.mark.parametrize(("name", "options", "shape"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_latent_compiles(
    method: str, name: str, options: dict[str, Any], shape: tuple[int, ...], dtype: torch.dtype
) -> None:
    logits = torch.randn(*shape, dtype=dtype)
    layer = latent(name, method, **options)
    # AIMLE adapts its target in backward: both runs start from the same state.
    state = copy.deepcopy(layer.state_dict())
    assert_compiles(layer, logits, rtol=1e-5, atol=1e-5, reset=lambda: layer.load_state_dict(state))


@pytest.mark.parametrize("method", ["sst", "imle", "aimle"])
@pytest.mark.parametrize(("name", "options", "shape"), CASES)
def test_latent_compiles_with_symbolic_sizes(
    method: str, name: str, options: dict[str, Any], shape: tuple[int, ...]
) -> None:
    """``dynamic=True``: the noise is drawn without ``generator=None`` (which does not trace)."""
    logits = torch.randn(*shape)
    layer = latent(name, method, **options)
    state = copy.deepcopy(layer.state_dict())
    reset = lambda: layer.load_state_dict(state)  # noqa: E731
    assert_compiles(layer, logits, rtol=1e-5, atol=1e-5, reset=reset, dynamic=True)


SHAPES = {"categorical": (3, 6), "k_subset": (3, 8), "spanning_tree": (3, 5, 5)}
SHAPES |= {"arborescence": (3, 5, 5), "matching": (3, 4, 4), "edges": (3, 5, 5)}
PATHWISE = ["gumbel-softmax", "st", "sst", "st-sst", "imle", "aimle", "ste", "blackbox"]
PATHWISE += ["perturbed", "indep"]


@pytest.mark.parametrize(
    ("name", "method"),
    [
        (name, method)
        for name, methods in METHODS.items()
        for method in methods
        if method in PATHWISE
    ],
)
def test_every_pathwise_layer_traces_whole(name: str, method: str) -> None:
    import torch._dynamo

    layer = latent(name, method, **({"k": 3} if name == "k_subset" else {}))
    torch._dynamo.reset()
    explained = torch._dynamo.explain(layer)(torch.randn(*SHAPES[name]))
    assert explained.graph_break_count == 0, explained.break_reasons


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["sst", "imle", "aimle"])
@pytest.mark.parametrize(("name", "options", "shape"), CASES)
def test_latent_does_not_sync_on_cuda_without_checks(
    method: str, name: str, options: dict[str, Any], shape: tuple[int, ...]
) -> None:
    from structgrad.distributions.checks import set_validation

    layer = latent(name, method, **options).cuda()
    logits = torch.randn(*shape, device="cuda", requires_grad=True)
    set_validation(False)
    try:
        layer(logits)  # warm-up: lazy CUDA initialisation may synchronise
        torch.cuda.set_sync_debug_mode("error")
        sample = layer(logits)
        (sample * torch.randn_like(sample)).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
        set_validation(True)
