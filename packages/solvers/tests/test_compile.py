"""The solvers inside ``torch.compile(fullgraph=True)``: registered ops, eager results."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import structgrad.solvers as solvers  # noqa: E402
from structgrad.testing.compiled import assert_compiles  # noqa: E402

DTYPES = [torch.float32, torch.float64]


def _scores(*shape: int, dtype: torch.dtype, ties: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    return (x.round() if ties else x).to(dtype)  # rounding makes many ties


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ties", [False, True])
def test_top_k(dtype: torch.dtype, ties: bool) -> None:
    x = _scores(5, 9, dtype=dtype, ties=ties)
    assert_compiles(lambda x: solvers.top_k(x, 3), x, grad=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ties", [False, True])
def test_max_spanning_tree(dtype: torch.dtype, ties: bool) -> None:
    w = _scores(4, 6, 6, dtype=dtype, ties=ties)
    assert_compiles(solvers.max_spanning_tree, w, grad=False)
    lengths = torch.tensor([6, 5, 2, 1])
    assert_compiles(lambda w, n: solvers.max_spanning_tree(w, lengths=n), w, lengths, grad=False)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_arborescence(dtype: torch.dtype) -> None:
    w = _scores(4, 6, 6, dtype=dtype)
    w[0, :, 3] = -torch.inf  # forbidden edges into vertex 3
    assert_compiles(lambda w: solvers.max_arborescence(w, root=2), w, grad=False)
    assert_compiles(lambda w: solvers.max_arborescence(w, lengths=[6, 4, 3, 2]), w, grad=False)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_assignment_and_grid(dtype: torch.dtype) -> None:
    assert_compiles(solvers.linear_assignment, _scores(3, 5, 5, dtype=dtype), grad=False)
    costs = _scores(2, 4, 7, dtype=dtype).abs()
    assert_compiles(solvers.grid_shortest_path, costs, grad=False)


@pytest.mark.parametrize("dtype", DTYPES)
def test_crossing_matching_and_binary_tree(dtype: torch.dtype) -> None:
    assert_compiles(solvers.crossing_matching, _scores(3, 5, 5, dtype=dtype, ties=True), grad=False)
    x = _scores(4, 7, dtype=dtype)
    assert_compiles(solvers.binary_tree, x, grad=False)
    lengths = torch.tensor([7, 4, 2, 1])
    assert_compiles(lambda x, n: solvers.binary_tree(x, lengths=n), x, lengths, grad=False)


SOLVE = {
    "top_k": (lambda x: solvers.top_k(x, 2), (3, 5)),
    "max_spanning_tree": (solvers.max_spanning_tree, (3, 5, 5)),
    "max_arborescence": (solvers.max_arborescence, (3, 5, 5)),
    "linear_assignment": (solvers.linear_assignment, (3, 5, 5)),
    "crossing_matching": (solvers.crossing_matching, (3, 5, 5)),
    "binary_tree": (solvers.binary_tree, (3, 5)),
    "grid_shortest_path": (lambda x: solvers.grid_shortest_path(x.abs()), (3, 4, 5)),
}


@pytest.mark.parametrize("name", list(SOLVE))
def test_scores_that_require_grad(name: str) -> None:
    """A solver inside a differentiated graph: constant solutions, the eager gradient."""
    solve, shape = SOLVE[name]
    x = _scores(*shape, dtype=torch.float64).requires_grad_(True)
    # The loss differentiates through x only: the solution is a constant.
    assert_compiles(lambda x: solve(x).sum() * x.sum() + (x * x).sum(), x, grad=True)
    assert not solve(x).requires_grad


TRACED = {
    "top_k": (lambda x: solvers.top_k(x, 3, return_trace=True), (2, 4, 7)),
    "max_spanning_tree": (
        lambda x: solvers.max_spanning_tree(x, lengths=[6, 4, 2], return_trace=True),
        (3, 6, 6),
    ),
    "max_arborescence": (
        lambda x: solvers.max_arborescence(x, root=1, lengths=[6, 4, 2], return_trace=True),
        (3, 6, 6),
    ),
    "crossing_matching": (lambda x: solvers.crossing_matching(x, return_trace=True), (2, 3, 5, 5)),
    "binary_tree": (
        lambda x: solvers.binary_tree(x, lengths=[7, 3, 1], return_trace=True),
        (3, 7),
    ),
}


@pytest.mark.parametrize("name", list(TRACED))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ties", [False, True])
def test_traces_compile(name: str, dtype: torch.dtype, ties: bool) -> None:
    """``return_trace=True`` traces whole: the solution and every trace field as eager's."""
    solve, shape = TRACED[name]
    x = _scores(*shape, dtype=dtype, ties=ties)
    x.view(-1)[::5] = -torch.inf  # masked entries on every path
    want_solution, want_trace = solve(x)
    flat = lambda x: (lambda out: (out[0], *out[1]))(solve(x))  # noqa: E731
    assert_compiles(flat, x, grad=False)
    got_solution, got_trace = torch.compile(solve, backend="aot_eager", fullgraph=True)(x)
    assert type(got_trace) is type(want_trace)
    assert torch.equal(got_solution, want_solution)
    for got, want in zip(got_trace, want_trace, strict=True):
        assert got.dtype == want.dtype and torch.equal(got, want)


UNBATCHED = {
    "top_k": (lambda x: solvers.top_k(x, 3, return_trace=True), (7,)),
    "max_spanning_tree": (lambda x: solvers.max_spanning_tree(x, return_trace=True), (5, 5)),
    "max_arborescence": (lambda x: solvers.max_arborescence(x, root=1, return_trace=True), (5, 5)),
    "crossing_matching": (lambda x: solvers.crossing_matching(x, return_trace=True), (5, 5)),
    "binary_tree": (lambda x: solvers.binary_tree(x, return_trace=True), (6,)),
}


@pytest.mark.parametrize("name", list(UNBATCHED))
def test_unbatched_traces_keep_their_0d_fields(name: str) -> None:
    """A trace's scalar fields of an unbatched tensor have shape ``()``, as numpy's.

    The bridge's contiguous copy made them ``[1]``: the fake ops said ``()``,
    so a compiled call on one instance failed.
    """
    solve, shape = UNBATCHED[name]
    x = _scores(*shape, dtype=torch.float64, ties=False)
    _, trace = solve(x)
    _, host = solve(x.numpy())
    for got, want in zip(trace, host, strict=True):
        assert tuple(got.shape) == np.shape(want)
    solution, got_trace = torch.compile(solve, backend="aot_eager", fullgraph=True)(x)
    assert torch.equal(solution, solve(x)[0])
    for got, want in zip(got_trace, trace, strict=True):
        assert torch.equal(got, want)


def test_integer_scores_through_the_op() -> None:
    """Integer scores reach the op in the default dtype, as the host path returns."""
    from structgrad.solvers import _torch_ops as ops

    x = torch.tensor([[3, 1, 2], [0, 5, 4]])
    got = ops.top_k(x, 1)
    assert got.dtype == torch.get_default_dtype()
    assert torch.equal(got, solvers.top_k(x, 1))


@pytest.mark.parametrize("trace", [False, True])
@pytest.mark.parametrize("k", [4, -1])
def test_compiled_errors_are_the_solvers(trace: bool, k: int) -> None:
    """Bad input to a traced call gets the solver's own message when it runs."""
    f = torch.compile(
        lambda x: solvers.top_k(x, k, return_trace=trace), backend="aot_eager", fullgraph=True
    )
    with pytest.raises(ValueError, match="k must lie in"):
        f(torch.randn(2, 3))


@pytest.mark.parametrize("trace", [False, True])
def test_a_float_count_or_root_is_named_when_compiled(trace: bool) -> None:
    # A float reached the op's int schema: a fake-tensor error naming no argument.
    # (Raised while tracing, it breaks the graph: eager then gives the message.)
    f = torch.compile(lambda x: solvers.top_k(x, 2.0, return_trace=trace), backend="eager")
    with pytest.raises(ValueError, match=r"k must be an integer, got 2.0"):
        f(torch.randn(2, 3))
    g = torch.compile(
        lambda x: solvers.max_arborescence(x, root=1.0, return_trace=trace), backend="eager"
    )
    with pytest.raises(ValueError, match=r"root must be an integer, got 1.0"):
        g(torch.randn(3, 3))


@pytest.mark.parametrize("trace", [False, True])
def test_a_0dim_tensor_count_or_root_works_when_compiled(trace: bool) -> None:
    # Eager calls take a 0-dim integer tensor k / root; compiled, it reached the
    # op's int schema as a tensor and failed inside the backend.
    x, w = torch.randn(4, 6), torch.randn(2, 4, 4)
    f = torch.compile(lambda x, k: solvers.top_k(x, k, return_trace=trace), backend="aot_eager")
    g = torch.compile(
        lambda w, r: solvers.max_arborescence(w, root=r, return_trace=trace), backend="aot_eager"
    )
    for compiled, eager, args in (
        (f, solvers.top_k, (x, torch.tensor(2))),
        (g, lambda w, r, **kw: solvers.max_arborescence(w, root=r, **kw), (w, torch.tensor(1))),
    ):
        got, want = compiled(*args), eager(*args, return_trace=trace)
        torch.testing.assert_close(got[0] if trace else got, want[0] if trace else want)
    with pytest.raises(ValueError, match=r"k must be an integer, got tensor\(2\.\)"):
        f(x, torch.tensor(2.0))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_compiled_matches_cpu() -> None:
    w = _scores(64, 10, 10, dtype=torch.float32)
    want = solvers.max_spanning_tree(w)
    f = torch.compile(solvers.max_spanning_tree, fullgraph=True)
    got = f(w.cuda())
    assert got.device.type == "cuda"
    assert torch.equal(got.cpu(), want)
