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


SCORE = ["reinforce", "nvil", "e-reinforce", "t-reinforce", "e-reinforce+", "t-reinforce+", "relax"]
SHAPES["binary_tree"] = (3, 6)


def _score_step(name: str, method: str, dtype: torch.dtype) -> tuple[Any, Any, torch.Tensor]:
    """A score-function layer, one training step through it, and its logits."""
    options: dict[str, Any] = {"k": 3} if name == "k_subset" else {}
    if method in ("t-reinforce", "e-reinforce+", "t-reinforce+"):
        options["samples"] = 3  # the leave-one-out presets need K >= 2
    if method == "relax":
        options["event_shape"] = SHAPES[name][1:]  # the default critic's input
    layer = latent(name, method, **options).to(dtype)
    shape = SHAPES[name]
    weights = torch.linspace(-1.0, 1.0, shape[-1] ** 2, dtype=dtype)[: shape[-1]]
    logits = torch.randn(*shape, dtype=dtype)
    if name != "matching":  # (the crossing matching's trace takes no -inf)
        logits.view(-1)[1] = -torch.inf  # a masked entry on the traced path too
    event = 1 if name in ("categorical", "k_subset") else 2  # the sample's event dims

    def step(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sample = layer(logits)
        loss = (sample * weights).sum(tuple(range(-event, 0)))
        return layer.attach(loss), sample

    return layer, step, logits


@pytest.mark.parametrize(
    ("name", "method"),
    [(name, method) for name, methods in METHODS.items() for method in methods if method in SCORE],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_score_function_step_compiles(name: str, method: str, dtype: torch.dtype) -> None:
    """Draw, loss and ``attach`` in one compiled step: no graph break, eager's values.

    The traces come from the solvers' trace ops (host kernels behind an opaque
    call); the moving-average baseline reads no step count on the host; RELAX
    takes its critic's input gradients with ``torch.func.grad``.
    """
    layer, step, logits = _score_step(name, method, dtype)
    state = copy.deepcopy(layer.state_dict())
    torch._dynamo.reset()
    assert_compiles(step, logits, rtol=1e-6, atol=1e-6, reset=lambda: layer.load_state_dict(state))


@pytest.mark.parametrize("name", ["k_subset", "spanning_tree", "arborescence", "binary_tree"])
def test_relax_critic_gradients_compile(name: str) -> None:
    """RELAX's critic gets eager's gradients from a compiled step (``torch.func.grad`` inside)."""
    layer, step, logits = _score_step(name, "relax", torch.float64)
    state = copy.deepcopy(layer.state_dict())
    grads = []
    for run in (step, torch.compile(step, backend="aot_eager", fullgraph=True)):
        layer.load_state_dict(state)
        layer.zero_grad()
        torch.manual_seed(3)
        x = logits.clone().requires_grad_(True)
        out, _ = run(x)
        out.sum().backward()
        assert x.grad is not None
        grads.append([x.grad.clone()] + [p.grad.clone() for p in layer.parameters()])
    assert len(grads[0]) > 1  # the critic has parameters, and they got gradients
    for eager, compiled in zip(*grads, strict=True):
        torch.testing.assert_close(compiled, eager, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("method", ["reinforce", "nvil"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_moving_average_steps_compile(method: str, dtype: torch.dtype) -> None:
    """Several compiled steps keep the moving average (and NVIL's bias) on eager's path.

    torch 2.13 dropped an in-place update of the 0-dim float64 average inside a
    compiled graph, and AOTAutograd recomputed NVIL's residual from the updated
    average: both agreed with eager on the first step only.
    """
    layer, step, logits = _score_step("k_subset", method, dtype)
    state = copy.deepcopy(layer.state_dict())
    runs = []
    for run in (step, torch.compile(step, backend="aot_eager", fullgraph=True)):
        layer.load_state_dict(state)
        torch.manual_seed(5)
        seen = []
        for _ in range(4):
            layer.zero_grad()
            x = logits.clone().requires_grad_(True)
            out, _ = run(x)
            out.sum().backward()
            assert x.grad is not None
            seen += [x.grad.clone(), *(p.grad.clone() for p in layer.parameters())]
            seen += [b.clone() for b in layer.buffers()]
        runs.append(seen)
    assert runs[0][-1].item() == 4  # the step count
    for eager, compiled in zip(*runs, strict=True):
        torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-7)


# Dynamo, resuming after the graph break, looks at a non-leaf tensor's .grad (torch's warning).
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
@pytest.mark.parametrize("subclass", [False, True])
def test_relax_with_a_batch_norm_critic_compiles_with_graph_breaks(subclass: bool) -> None:
    """A user's critic runs eagerly inside a compiled step (batch norm updates buffers).

    ``torch.func.grad`` refuses such a critic: only the default critic's own
    class is traced (a subclass of it may add batch norm too).
    """
    from structgrad.estimators.score import UtilityCritic

    class Critic(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input, self.norm = torch.nn.Linear(8, 4), torch.nn.BatchNorm1d(4)
            self.output = torch.nn.Linear(4, 1)

        def forward(self, u: torch.Tensor) -> torch.Tensor:
            u = torch.where(torch.isfinite(u), u, torch.zeros_like(u))
            return self.output(torch.tanh(self.norm(self.input(u)))).squeeze(-1)

    class NormedCritic(UtilityCritic):
        def __init__(self) -> None:
            super().__init__((8,), hidden=4)
            self.norm = torch.nn.BatchNorm1d(1)

        def forward(self, u: torch.Tensor, used: torch.Tensor | None = None) -> torch.Tensor:
            return self.norm(super().forward(u, used).unsqueeze(-1)).squeeze(-1)

    critic = NormedCritic() if subclass else Critic()
    layer = latent("k_subset", "relax", k=3, critic=critic).double()
    state = copy.deepcopy(layer.state_dict())
    logits = torch.randn(5, 8, dtype=torch.float64)

    def step(x: torch.Tensor) -> torch.Tensor:
        return layer.attach((layer(x) * torch.arange(8.0)).sum(-1))

    runs = []
    for run in (step, torch.compile(step, backend="aot_eager")):
        layer.load_state_dict(state)
        layer.zero_grad()
        torch.manual_seed(2)
        x = logits.clone().requires_grad_(True)
        run(x).sum().backward()
        assert x.grad is not None
        runs.append([x.grad, *(p.grad for p in layer.parameters()), *layer.buffers()])
    for eager, compiled in zip(*runs, strict=True):
        torch.testing.assert_close(compiled, eager, rtol=1e-9, atol=1e-9)
