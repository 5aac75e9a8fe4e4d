import contextlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import structgrad.solvers as solvers

SOLVERS = {
    "max_spanning_tree": lambda x: solvers.max_spanning_tree(x, return_trace=True),
    "max_arborescence": lambda x: solvers.max_arborescence(x, return_trace=True),
    "top_k": lambda x: solvers.top_k(x, 1, return_trace=True),
    "linear_assignment": solvers.linear_assignment,
    "crossing_matching": solvers.crossing_matching,
    "binary_tree": solvers.binary_tree,
    "grid_shortest_path": solvers.grid_shortest_path,
}


def test_no_torch_import_for_numpy_input() -> None:
    code = (
        "import sys, numpy as np, structgrad.solvers as s\n"
        "s.max_spanning_tree(np.zeros((3, 3)))\n"
        "s.max_arborescence(np.zeros((3, 3)))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64])
def test_other_torch_dtypes(dtype: torch.dtype) -> None:
    x = torch.arange(16).reshape(4, 4).to(dtype)
    out = solvers.max_spanning_tree(x)
    want = torch.get_default_dtype() if dtype == torch.int64 else dtype
    assert out.dtype == want and out.sum() == 6


def _leaves(out: object) -> list[torch.Tensor]:
    """The tensors of a solver's result (a tensor, or tuples and named tuples of them)."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [leaf for part in out for leaf in _leaves(part)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_lazily_negated_tensor_input(name: str) -> None:
    # z.conj().imag is a view with torch's negative bit: .numpy() refuses it.
    z = torch.randn(2, 4, 4, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    if name == "grid_shortest_path":  # costs must be >= 0: conj() negates -|im|
        z = torch.complex(z.real, -z.imag.abs())
    lazy = z.conj().imag
    assert lazy.is_neg()
    out, expected = _leaves(SOLVERS[name](lazy)), _leaves(SOLVERS[name](lazy.clone()))
    assert len(out) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(out, expected, strict=True))


def test_integer_numpy_input_gives_float64() -> None:
    assert solvers.top_k(np.arange(5), 2).dtype == np.float64


@pytest.mark.parametrize("kind", [np.array, torch.tensor])
def test_integers_float64_cannot_tell_apart_are_refused(kind) -> None:
    # 2**53 + 1 rounded onto 2**53 in the float64 kernels: a tie broken the wrong way.
    with pytest.raises(ValueError, match=r"scores: integers beyond ±2\*\*53"):
        solvers.top_k(kind([2**53, 2**53 + 1]), 1)
    w = [[0, 2**62, 2**62 + 1], [0, 0, 2**62 + 2], [0, 0, 0]]
    with pytest.raises(ValueError, match=r"integers beyond ±2\*\*53"):
        solvers.max_spanning_tree(kind(w))
    assert solvers.top_k(kind([2**53, 2**53 - 1, -(2**53)]), 1).tolist() == [1.0, 0.0, 0.0]


@pytest.mark.skipif(np.finfo(np.longdouble).nmant <= 52, reason="long double is float64 here")
def test_long_doubles_float64_cannot_hold_are_refused() -> None:
    # 1 + 2**-60 rounded onto 1 in the float64 kernels: the tie went to index 0.
    wide = np.array([1, 1 + np.longdouble(2) ** -60], dtype=np.longdouble)
    with pytest.raises(ValueError, match=f"scores: {np.dtype(np.longdouble)} values that float64"):
        solvers.top_k(wide, 1)
    exact = solvers.top_k(np.array([1, 2], dtype=np.longdouble), 1)
    assert exact.dtype == np.longdouble and exact.tolist() == [0.0, 1.0]


def test_ragged_lengths_name_the_argument() -> None:
    with pytest.raises(ValueError, match="lengths must be a rectangular integer array"):
        solvers.max_spanning_tree(np.zeros((2, 3, 3)), lengths=[[1], [2, 3]])


def test_a_ragged_list_names_the_argument() -> None:
    with pytest.raises(ValueError, match="scores must be a rectangular real numeric array"):
        solvers.max_spanning_tree([[0, 1], [1]])


def test_empty_batch() -> None:
    adj, trace = solvers.max_spanning_tree(np.zeros((0, 4, 4)), return_trace=True)
    assert adj.shape == (0, 4, 4) and trace.edges.shape == (0, 3, 2)


@pytest.mark.parametrize("name", sorted(SOLVERS))
@given(
    x=hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
        elements=st.floats(width=32) | st.sampled_from([0.0, 1.0, -np.inf]),
    )
)
def test_fuzz_never_crashes(name: str, x: np.ndarray) -> None:
    with contextlib.suppress(ValueError):
        SOLVERS[name](x)


def test_torch_counts_are_read_as_numpy_ones() -> None:
    # torch's __index__ took a bool tensor as 1 and a one-element 1-d tensor
    for k in (torch.tensor(True), torch.tensor([2])):
        with pytest.raises(ValueError, match="k must be an integer"):
            solvers.top_k(np.zeros(3), k)
    assert solvers.top_k(np.arange(3.0), torch.tensor(2)).tolist() == [0.0, 1.0, 1.0]
    # 2**63 (uint64) wrapped to -2**63 in the message
    with pytest.raises(ValueError, match="lengths is out of range, got 9223372036854775808"):
        solvers.max_spanning_tree(np.zeros((1, 3, 3)), lengths=[2**63])


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_invalid_scores_have_their_own_value_error(value: float) -> None:
    # A training loop tells a diverged model (NaN / +inf scores) from other
    # errors by this class; it stays a ValueError for everyone else.
    x = np.array([[0.0, value, 1.0]])
    with pytest.raises(solvers.InvalidScoresError, match="scores contains"):
        solvers.top_k(x, 1)
    with pytest.raises(solvers.InvalidScoresError):
        solvers.max_spanning_tree(np.full((3, 3), value))
    assert issubclass(solvers.InvalidScoresError, ValueError)


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.randn(4, 4).to_sparse(),
        lambda: torch.empty(4, 4, device="meta"),
        lambda: torch.randn(4, 4).to(torch.float8_e4m3fn),
    ],
)
def test_tensor_kinds_without_a_numpy_twin_name_the_argument(make) -> None:
    # numpy's conversion failed ("can't convert Sparse layout", "Cannot copy out
    # of meta tensor", "unsupported ScalarType Float8_e4m3fn"), naming nothing.
    with pytest.raises(TypeError, match=r"^scores (must be a dense tensor|has dtype)"):
        solvers.max_spanning_tree(make())
    with pytest.raises(ValueError, match="lengths must be a rectangular integer array"):
        lengths = torch.ones(1, dtype=torch.long, device="meta")
        solvers.max_spanning_tree(torch.randn(3, 3), lengths=lengths)
