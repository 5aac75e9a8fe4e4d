"""``latent(...)`` layers inside ``torch.compile(fullgraph=True)``, forward and backward."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from structgrad.models import latent
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
