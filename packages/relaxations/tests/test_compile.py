"""Gumbel-softmax inside ``torch.compile(fullgraph=True)``: no host read, eager's values."""

from __future__ import annotations

import pytest
import torch

from structgrad.relaxations import binary_concrete, gumbel_sinkhorn, gumbel_softmax, sinkhorn, sst
from structgrad.testing.compiled import assert_compiles


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax(dtype: torch.dtype, hard: bool) -> None:
    logits = torch.randn(6, 9, dtype=dtype)
    logits[0, 2] = -torch.inf  # an impossible category
    assert_compiles(lambda x: gumbel_softmax(x, 0.5, hard=hard), logits)
    tau = torch.linspace(0.1, 2.0, 6, dtype=dtype).unsqueeze(-1)
    assert_compiles(lambda x, t: gumbel_softmax(x, t, dim=-1), logits, tau)


def test_gumbel_softmax_with_symbolic_sizes() -> None:
    assert_compiles(lambda x: gumbel_softmax(x, 0.5), torch.randn(5, 7), dynamic=True)


def test_binary_concrete() -> None:
    assert_compiles(lambda x: binary_concrete(x, 0.3, hard=True), torch.randn(4, 5))


def test_learned_tau_gradient_is_finite_with_impossible_categories() -> None:
    logits = torch.tensor([[0.0, -torch.inf, 1.0], [2.0, 0.5, -torch.inf]])
    tau = torch.tensor(0.7, requires_grad=True)
    out = gumbel_softmax(logits, tau, generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad((out * torch.tensor([1.0, 2.0, 3.0])).sum(), tau)
    assert torch.isfinite(grad) and grad != 0
    assert (out[logits == -torch.inf] == 0).all()


def test_matching_relaxations_with_neg_inf() -> None:
    # The support check (an assignment on the host) is a value check: skipped
    # while tracing, as every other one.
    scores = torch.randn(3, 4, 4, dtype=torch.float64)
    scores[:, 0, 1] = -torch.inf
    assert_compiles(lambda x: sinkhorn(x, tau=0.3), scores)
    assert_compiles(lambda x: sst("matching", x, 0.3, anneal=False), scores, grad=False)
    # annealed (the default): a fixed number of stages, those past the count masked
    assert_compiles(lambda x: sst("matching", x, 0.3), scores, grad=False)
    noisy = torch.compile(lambda x: gumbel_sinkhorn(x, 0.3), backend="aot_eager", fullgraph=True)
    assert (noisy(scores)[:, 0, 1] == 0).all()
