"""Matrix-Tree, k-subset marginals and annealed Sinkhorn in ``torch.compile(fullgraph=True)``.

Traced calls read no values: they work in float64 and always run the range
clips (exact on narrow scores), so they match eager on narrow and wide scores.
"""

from __future__ import annotations

import pytest
import torch

import structgrad.distributions._sinkhorn as sinkhorn_module
from structgrad.distributions import (
    arborescence_marginals,
    k_subset_marginals,
    multi_root_arborescence_marginals,
    sinkhorn,
    spanning_tree_marginals,
)
from structgrad.distributions.checks import validation_enabled
from structgrad.testing.compiled import assert_compiles

DTYPES = [torch.float32, torch.float64]
# Narrow scores take eager's float32 fast path; wide ones (x 100) its clips.
SCALES = [1.0, 100.0]


def _scores(*shape: int, dtype: torch.dtype, scale: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(sum(shape))
    return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)


def _tol(dtype: torch.dtype, scale: float) -> float:
    # float32 eager works in float32 on narrow scores (the traced call in float64);
    # wide scores lose digits to the Laplacian's cancellation in either.
    return (1e-5 if dtype == torch.float32 else 1e-9) * (1e3 if scale > 1 else 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", SCALES)
def test_k_subset_marginals(dtype: torch.dtype, scale: float) -> None:
    x = _scores(5, 12, dtype=dtype, scale=scale)
    x[0, 3] = -torch.inf
    tol = _tol(dtype, scale)
    assert_compiles(lambda x: k_subset_marginals(x, 4), x, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", SCALES)
def test_spanning_tree_marginals(dtype: torch.dtype, scale: float) -> None:
    w = _scores(4, 7, 7, dtype=dtype, scale=scale)
    tol = _tol(dtype, scale)
    assert_compiles(spanning_tree_marginals, w, rtol=tol, atol=tol)
    lengths = torch.tensor([7, 5, 3, 2])
    assert_compiles(
        lambda w, n: spanning_tree_marginals(w, lengths=n), w, lengths, rtol=tol, atol=tol
    )
    # One graph without a batch dim: its heaviest edge's 0-dim index was read on
    # the host ("could not extract specialized integer", helper 75).
    assert_compiles(spanning_tree_marginals, w[0], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", SCALES)
def test_arborescence_marginals(dtype: torch.dtype, scale: float) -> None:
    w = _scores(4, 6, 6, dtype=dtype, scale=scale)
    w[1, 0, 4] = -torch.inf  # vertex 4 is reached through another vertex
    tol = _tol(dtype, scale)
    assert_compiles(lambda w: arborescence_marginals(w, root=2), w, rtol=tol, atol=tol)
    assert_compiles(
        lambda w: arborescence_marginals(w, lengths=torch.tensor([6, 4, 3, 2])),
        w,
        rtol=tol,
        atol=tol,
    )
    root = _scores(4, 6, dtype=dtype, scale=scale)
    assert_compiles(multi_root_arborescence_marginals, w, root, rtol=tol, atol=tol)


def test_value_checks_off_shape_checks_on_while_tracing() -> None:
    """Traced calls skip the value checks (no host read) and keep the shape checks."""
    seen = torch.compile(
        lambda x: x + float(validation_enabled()), backend="aot_eager", fullgraph=True
    )
    assert validation_enabled() and float(seen(torch.zeros(()))) == 0.0
    f = torch.compile(spanning_tree_marginals, backend="aot_eager", fullgraph=True)
    # fullgraph: dynamo reports the ValueError raised while tracing, with its message.
    with pytest.raises(Exception, match=r"must have shape \[\.\.\., n, n\]"):
        f(torch.randn(2, 5, 4))


@pytest.mark.parametrize(
    ("name", "shape", "options"),
    [
        ("categorical", (3, 5), {}),
        ("k_subset", (3, 6), {"k": 2}),
        ("spanning_tree", (3, 4, 4), {}),
        ("grid_path", (2, 3, 4), {}),
    ],
)
def test_structure_methods_read_no_values_while_tracing(
    name: str, shape: tuple[int, ...], options: dict[str, int]
) -> None:
    # The structures' own value checks (an all -inf row, grid costs, the
    # log-partition's -inf) were host reads: graph breaks inside fullgraph.
    from structgrad.distributions import structure

    s = structure(name)
    x = torch.rand(shape, dtype=torch.float64)
    assert_compiles(lambda x: s.map(x, **options), x, grad=False)
    if s.tractable:
        assert_compiles(lambda x: s.log_partition(x, **options), x)
        assert_compiles(lambda x: s.relax(x, tau=0.5, **options), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tau", [1.0, 1e-3, 1e-7])
def test_annealed_sinkhorn(dtype: torch.dtype, tau: float) -> None:
    # The stage count (1 to 26 here) is read in eager mode; traced, 16 stages
    # are unrolled and the surplus masked, or (past 16) taken in larger steps.
    scores = _scores(3, 5, 5, dtype=torch.float64, scale=5.0)
    scores[0, 0, 1] = -torch.inf
    scores = scores.to(dtype)
    assert_compiles(lambda x: sinkhorn(x, tau=tau, anneal=True), scores, grad=tau > 1e-4)
    if tau < 1e-2:  # annealed to a permutation (at τ = 1, 20 rounds leave rows off by ~1e-2)
        traced = torch.compile(
            lambda x: sinkhorn(x, tau=tau, anneal=True), backend="aot_eager", fullgraph=True
        )
        rows = traced(scores).sum(-1)
        torch.testing.assert_close(rows, torch.ones(3, 5, dtype=dtype), rtol=0, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("spread", "tau", "stages"),
    # ceil(log2(start / τ)), start = the spread rounded up to a power of two;
    # a -1e30 mask is floored 2**60 τ below the max (start 2**57).
    [(0.5, 1.0, 0), (1.0, 0.25, 2), (3.0, 1e-3, 12), (1e30, 0.1, 61)],
)
def test_annealed_sinkhorn_stage_count(
    monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype, spread: float, tau: float, stages: int
) -> None:
    # Eager runs the count that masks the traced stages (eager and traced
    # results are compared by test_annealed_sinkhorn).
    calls: list[int] = []
    stage = sinkhorn_module._stage

    def counted(*args: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return stage(*args)

    scores = -spread * (1 - torch.eye(3, dtype=dtype))
    with monkeypatch.context() as patch:
        patch.setattr(sinkhorn_module, "_stage", counted)
        sinkhorn(scores, tau=tau, anneal=True)
    assert len(calls) == stages
