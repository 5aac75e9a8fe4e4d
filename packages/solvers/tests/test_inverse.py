"""batched_inverse / inverse_in_place against numpy's LAPACK inverse and the twin."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import structgrad.solvers as solvers
from structgrad.solvers import _linalg_ref
from structgrad.solvers._backend import ENV_VAR


def laplacian_minors(rng: np.random.Generator, batch: int, n: int, spread: float) -> np.ndarray:
    """In-degree Laplacians of random weighted digraphs with a root (column dominant)."""
    w = np.exp(spread * rng.random((batch, n + 1, n)))
    lap = -w[:, :n, :].copy()
    idx = np.arange(n)
    lap[:, idx, idx] = w.sum(1) - w[:, idx, idx]
    return lap


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 24])
def test_matches_numpy_inverse(backend: str, dtype: type, n: int) -> None:
    rng = np.random.default_rng(n)
    for a in (rng.standard_normal((40, n, n)), laplacian_minors(rng, 40, n, 10.0)):
        a = a.astype(dtype)
        inv, info = solvers.batched_inverse(a)
        assert inv.dtype == dtype and inv.shape == a.shape and info.shape == (40,)
        assert (info == 0).all()
        ref = np.linalg.inv(a.astype(np.float64))
        # Backward error: |A X - I| relative to |A| |X|, the measure pivoting bounds.
        resid = np.abs(a.astype(np.float64) @ inv - np.eye(n)).max(axis=(1, 2))
        scale = np.abs(a).max(axis=(1, 2)) * np.abs(inv).max(axis=(1, 2))
        eps = np.finfo(dtype).eps
        assert (resid <= 50 * n * eps * scale).all()
        cond = np.linalg.cond(a.astype(np.float64))
        err = np.abs(inv - ref).max(axis=(1, 2)) / np.abs(ref).max(axis=(1, 2))
        assert (err <= 50 * n * eps * cond).all()


def test_pivoting_permutations_and_zero_diagonals(backend: str) -> None:
    # A zero (and a tiny) leading entry: without row swaps these fail or lose
    # every digit; permutation matrices are their own transposed inverses.
    a = np.array([[[0.0, 1.0], [1.0, 0.0]], [[1e-20, 1.0], [1.0, 1.0]]])
    inv, info = solvers.batched_inverse(a)
    assert (info == 0).all()
    np.testing.assert_allclose(inv, np.linalg.inv(a), rtol=1e-15)
    perms = np.stack(
        [
            np.eye(6)[p]
            for p in np.random.default_rng(1).permuted(np.tile(np.arange(6), (20, 1)), axis=1)
        ]
    )
    inv, info = solvers.batched_inverse(perms)
    assert (info == 0).all()
    np.testing.assert_array_equal(inv, perms.transpose(0, 2, 1))


def test_singular_matrices_report_the_column(backend: str) -> None:
    a = np.stack(
        [
            np.zeros((3, 3)),  # column 0 has no pivot
            np.array([[1.0, 2, 0], [2, 4, 0], [0, 0, 1]]),  # column 1 after elimination
            np.array([[1.0, 0, 1], [0, 1, 1], [1, 1, 2]]),  # rank 2: column 2
            np.eye(3),
        ]
    )
    _, info = solvers.batched_inverse(a)
    np.testing.assert_array_equal(info, [1, 2, 3, 0])


def test_torch_batches_and_devices(backend: str) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64, generator=gen)
    inv, info = solvers.batched_inverse(x)
    assert isinstance(inv, torch.Tensor) and inv.dtype == x.dtype and inv.shape == x.shape
    assert info.dtype == torch.int64 and info.shape == (2, 3)
    torch.testing.assert_close(inv, torch.linalg.inv(x), rtol=1e-10, atol=1e-10)
    before = x.clone()
    solvers.batched_inverse(x)
    assert torch.equal(x, before)  # the input is never overwritten


@given(arrays(np.float64, (4, 4), elements=st.floats(-1e3, 1e3)))
@example(np.full((4, 4), 2.2e-313))  # subnormal pivots: 1 / pivot overflows in both
@example(np.array([[1.0, 1.0, 2e-309, 2e-309]] + [[2e-309] * 4] * 3))  # then 0 * inf
@example(np.array([[5e-324, 0, 5e-324, 0]] + [[0.0] * 4] * 3))  # then NaN below a zero pivot
def test_compiled_equals_twin_bitwise(monkeypatch: pytest.MonkeyPatch, a: np.ndarray) -> None:
    batch = np.stack([a, a.T, a + np.eye(4) * 1e3])
    monkeypatch.delenv(ENV_VAR, raising=False)
    fast, info_fast = solvers.batched_inverse(batch)
    slow = batch.copy()
    info_slow = np.zeros(3, dtype=np.int64)
    _linalg_ref.inverse(slow, info_slow)
    np.testing.assert_array_equal(info_fast, info_slow)
    ok = info_fast == 0
    np.testing.assert_array_equal(fast[ok], slow[ok])  # inf and NaN (overflow) included


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.ones((2, 3)), "square"),
        (np.ones(3), "shape"),
        (np.full((2, 2), np.nan), "NaN"),
        (np.array([[1.0, np.inf], [0, 1]]), r"\+inf"),
        (np.array([[1.0, -np.inf], [0, 1]]), "-inf"),
        (np.ones((0, 0)), "size >= 1"),
    ],
)
def test_bad_input(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        solvers.batched_inverse(bad)


@pytest.mark.parametrize(
    "bad",
    [
        np.ones((2, 3, 3), dtype=np.int64),
        np.ones((3, 3)),
        np.ones((2, 3, 4)),
        np.ones((2, 3, 3), order="F").transpose(0, 2, 1)[:, ::-1],
        [[[1.0]]],
    ],
)
def test_in_place_entry_rejects_other_arrays(bad: object) -> None:
    with pytest.raises(ValueError, match="C-contiguous"):
        solvers.inverse_in_place(bad)  # type: ignore[arg-type]


def test_in_place_entry_is_safe_on_any_values(backend: str) -> None:
    a = np.array([[[np.nan, 1.0], [1.0, 0.0]], [[np.inf, 1.0], [1.0, 1.0]], [[2.0, 0], [0, 4]]])
    info = solvers.inverse_in_place(a)
    assert info.shape == (3,)
    np.testing.assert_array_equal(a[2], [[0.5, 0], [0, 0.25]])
    empty = np.zeros((0, 3, 3))
    assert solvers.inverse_in_place(empty).shape == (0,)
