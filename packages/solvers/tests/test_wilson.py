"""wilson_arborescences: valid trees, the exact law (total variation), budget, twin, checks.

The law tests draw N = 40 000 samples at n = 4 (16 outcomes): an exact sampler's
expected total-variation distance is about 0.008, so the threshold 0.02 passes it, and
perturb-and-MAP (``max_arborescence`` of Gumbel-perturbed logits), whose law differs,
fails it (checked on the same instances, so that the tests can fail).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from structgrad.solvers import (
    _wilson,
    _wilson_ref,
    enumerate_arborescences,
    enumerate_spanning_trees,
    max_arborescence,
    wilson_arborescences,
)

N = 40_000
THRESHOLD = 0.02
NEG = -np.inf


# ----------------------------------------------------------------------------- helpers


def keys(parents: np.ndarray) -> np.ndarray:
    """One integer per parent array ``[..., n]`` (entries in ``[-1, n)``)."""
    n = parents.shape[-1]
    return ((parents + 1) * (n + 1) ** np.arange(n)).sum(-1)


def exact_law(logw: np.ndarray, root: int, inside: np.ndarray | None = None) -> dict[int, float]:
    """Key of each arborescence of the inside vertices -> its probability ``∝ Π exp(logw)``."""
    n = logw.shape[-1]
    verts = np.arange(n) if inside is None else np.flatnonzero(inside)
    adj = enumerate_arborescences(len(verts), int(np.flatnonzero(verts == root)[0]))
    score = np.where(adj > 0, logw[np.ix_(verts, verts)], 0.0).sum((1, 2))
    prob = np.exp(score - score.max())
    parents = np.full((len(adj), n), -1)
    has_parent = adj.sum(1) > 0  # [K, m]
    parents[:, verts] = np.where(has_parent, verts[adj.argmax(1)], -1)
    return dict(zip(keys(parents).tolist(), (prob / prob.sum()).tolist(), strict=True))


def total_variation(sample_keys: np.ndarray, law: dict[int, float]) -> float:
    found, counts = np.unique(sample_keys, return_counts=True)
    emp = dict(zip(found.tolist(), (counts / counts.sum()).tolist(), strict=True))
    return 0.5 * sum(abs(emp.get(k, 0.0) - law.get(k, 0.0)) for k in set(emp) | set(law))


def perturb_and_map(logw: np.ndarray, root: int, count: int, seed: int) -> np.ndarray:
    """Parents ``[count, n]`` of ``max_arborescence(logw + Gumbel)``: not the Gibbs law."""
    n = logw.shape[-1]
    gumbel = np.random.default_rng(seed).gumbel(size=(count, n, n))
    adj = max_arborescence(logw + gumbel, root=root)
    return np.where(np.arange(n) == root, -1, adj.argmax(-2))


def check_tree(parents: np.ndarray, logw: np.ndarray, root: int, inside: np.ndarray) -> None:
    """Parents ``[n]`` form an arborescence of the inside vertices over finite edges."""
    n = len(parents)
    assert parents[root] == -1 and (parents[~inside] == -1).all()
    for v in np.flatnonzero(inside):
        steps = 0
        while v != root:
            p = parents[v]
            assert 0 <= p < n and p != v and inside[p] and np.isfinite(logw[p, v])
            v, steps = p, steps + 1
            assert steps < n, "cycle"


def random_logits(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.normal(size=shape)


# ----------------------------------------------------------------------------- validity


def test_samples_are_arborescences_of_the_allowed_edges(backend: str) -> None:
    rng = np.random.default_rng(0)
    logw = random_logits(rng, 12, 7, 7)
    logw[rng.random(logw.shape) < 0.3] = NEG  # forbidden edges (root edges kept below)
    logw[:, 2, :] = rng.normal(size=(12, 7))  # every vertex can hang on the root
    inside = rng.random((12, 7)) < 0.8
    inside[:, 2] = True
    lengths = rng.integers(3, 8, 12)
    out = wilson_arborescences(logw, root=2, inside=inside, lengths=lengths, count=30, seed=1)
    assert out.parents.shape == (30, 12, 7) and out.parents.dtype == np.int64
    assert out.ok.shape == (30, 12) and out.ok.dtype == np.bool_ and out.ok.all()
    mask = inside & (np.arange(7) < lengths[:, None])
    for s in range(30):
        for b in range(12):
            check_tree(out.parents[s, b], logw[b], 2, mask[b])


def test_symmetric_weights_give_spanning_trees_of_the_gibbs_law(backend: str) -> None:
    theta = random_logits(np.random.default_rng(1), 4, 4)
    theta = np.triu(theta, 1) + np.triu(theta, 1).T
    trees = enumerate_spanning_trees(4)  # [16, 4, 4] symmetric
    score = (np.triu(trees, 1) * theta).sum((1, 2))
    prob = np.exp(score - score.max())
    parents = wilson_arborescences(theta, root=0, count=N, seed=2).parents  # [N, 4]
    edges = np.zeros((N, 4, 4))
    edges[np.arange(N)[:, None], parents[:, 1:], np.arange(1, 4)] = 1  # parent -> child
    edges = edges + edges.transpose(0, 2, 1)
    code = 2 ** np.arange(16).reshape(4, 4)
    law = dict(zip((trees * code).sum((1, 2)).tolist(), (prob / prob.sum()).tolist(), strict=True))
    assert total_variation((edges * code).sum((1, 2)).astype(int), law) < THRESHOLD


# ----------------------------------------------------------------------------- the law


@pytest.mark.parametrize("root", [0, 2])
def test_arborescence_law_is_exact_and_perturb_and_map_is_not(backend: str, root: int) -> None:
    logw = random_logits(np.random.default_rng(3 + root), 4, 4)
    law = exact_law(logw, root)
    out = wilson_arborescences(logw, root=root, count=N, seed=4)
    assert out.ok.all()
    assert total_variation(keys(out.parents), law) < THRESHOLD
    wrong = perturb_and_map(logw, root, N, seed=5)
    assert total_variation(keys(wrong), law) > THRESHOLD


def test_law_with_forbidden_edges_and_an_inside_mask(backend: str) -> None:
    rng = np.random.default_rng(6)
    logw = random_logits(rng, 2, 5, 5)
    logw[:, 0, 3] = logw[:, 3, 1] = NEG
    inside = np.array([[True, True, False, True, True], [True, True, True, True, False]])
    out = wilson_arborescences(logw, root=1, inside=inside, count=N, seed=7)
    for b in range(2):
        parents = out.parents[:, b]
        assert not ((parents[:, 3] == 0) | (parents[:, 1] == 3)).any()
        assert total_variation(keys(parents), exact_law(logw[b], 1, inside[b])) < THRESHOLD


def test_samples_within_a_tight_budget_keep_the_exact_law(backend: str) -> None:
    """Failing past the budget is independent of the tree: the rest stays exact."""
    logw = random_logits(np.random.default_rng(8), 4, 4)
    out = wilson_arborescences(logw, root=0, count=2 * N, seed=9, max_steps=6)
    assert 0.2 < out.ok.mean() < 0.8  # the budget bites (3 steps at least, one per edge)
    assert (out.parents[~out.ok] == -1).all()
    assert total_variation(keys(out.parents[out.ok]), exact_law(logw, 0)) < THRESHOLD


def test_compiled_and_twin_agree_exactly() -> None:
    rng = np.random.default_rng(10)
    for dtype in (np.float64, np.float32):
        logw = random_logits(rng, 16, 6, 6).astype(dtype)
        logw[rng.random(logw.shape) < 0.2] = NEG
        inside = (rng.random((16, 6)) < 0.8).astype(np.uint8)
        inside[:, 1] = 1
        for max_steps in (5, 2000):  # the twin pays each step of a hopeless walk in Python
            got = []
            for module in (_wilson, _wilson_ref):
                parents = np.full((20, 16, 6), -1, dtype=np.int64)
                ok = np.zeros((20, 16), dtype=np.uint8)
                module.wilson(logw, inside, 1, 2**64 - 3, max_steps, parents, ok)
                got.append((parents, ok))
            np.testing.assert_array_equal(got[0][0], got[1][0])
            np.testing.assert_array_equal(got[0][1], got[1][1])
            if max_steps == 5:  # some samples fail, others do not
                assert 0 < got[0][1].sum() < got[0][1].size


# ----------------------------------------------------------------------------- behaviour


def test_reproducible_by_seed(backend: str) -> None:
    logw = random_logits(np.random.default_rng(11), 3, 6, 6)
    a = wilson_arborescences(logw, count=5, seed=12)
    b = wilson_arborescences(logw, count=5, seed=12)
    c = wilson_arborescences(logw, count=5, seed=13)
    np.testing.assert_array_equal(a.parents, b.parents)
    assert not np.array_equal(a.parents, c.parents)


def test_failures_budget_dead_ends_and_unreachable_root(backend: str) -> None:
    logw = random_logits(np.random.default_rng(14), 3, 4, 4)
    logw[1, :, 3] = NEG  # graph 1: vertex 3 has no in-edge
    logw[2, 0, :] = NEG  # graph 2: 1, 2, 3 never reach the root 0
    out = wilson_arborescences(logw, count=4, seed=15, max_steps=10_000)
    assert out.ok[:, 0].all() and not out.ok[:, 1:].any()
    assert (out.parents[:, 1:] == -1).all()
    starved = wilson_arborescences(logw[0], count=4, max_steps=0)
    assert not starved.ok.any() and (starved.parents == -1).all()


def test_huge_spread_samples_the_mode_or_fails(backend: str) -> None:
    logw = np.random.default_rng(16).normal(size=(8, 6, 6)) * 1e4
    out = wilson_arborescences(logw, root=3, count=3, seed=17, max_steps=10_000)
    mode = max_arborescence(logw, root=3).argmax(-2)
    for s, b in zip(*np.nonzero(out.ok), strict=True):
        np.testing.assert_array_equal(np.delete(out.parents[s, b], 3), np.delete(mode[b], 3))
    assert out.ok.any()


def test_batch_shapes_count_and_torch(backend: str) -> None:
    logw = random_logits(np.random.default_rng(18), 2, 3, 5, 5)
    out = wilson_arborescences(logw, count=4, seed=19)
    assert out.parents.shape == (4, 2, 3, 5) and out.ok.shape == (4, 2, 3)
    flat = wilson_arborescences(logw.reshape(6, 5, 5), count=4, seed=19)
    np.testing.assert_array_equal(out.parents.reshape(4, 6, 5), flat.parents)
    single = wilson_arborescences(logw[0, 0], count=2, seed=1)
    assert single.parents.shape == (2, 5) and single.ok.shape == (2,)
    assert wilson_arborescences(logw, count=0).parents.shape == (0, 2, 3, 5)
    tensor = wilson_arborescences(torch.from_numpy(logw), count=4, seed=19)
    assert isinstance(tensor.parents, torch.Tensor) and tensor.parents.dtype == torch.long
    assert tensor.ok.dtype == torch.bool
    np.testing.assert_array_equal(tensor.parents.numpy(), out.parents)
    half = wilson_arborescences(torch.from_numpy(logw).half(), count=4, seed=19)
    assert half.parents.shape == (4, 2, 3, 5) and bool(half.ok.all())
    strided = np.asfortranarray(logw)
    np.testing.assert_array_equal(
        wilson_arborescences(strided, count=4, seed=19).parents, out.parents
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"logw": np.full((3, 3), np.nan)}, "NaN"),
        ({"logw": np.full((3, 3), np.inf)}, r"\+inf"),
        ({"logw": np.zeros(3)}, "rank"),
        ({"logw": np.zeros((3, 4))}, "square"),
        ({"logw": np.zeros((1, 1))}, "size"),
        ({"root": 3}, "root"),
        ({"root": 1, "lengths": 1}, "root 1 must be inside"),
        ({"inside": np.array([False, True, True])}, "root 0 must be inside"),
        ({"root": 1, "inside": np.array([1, 1, 1])}, "boolean"),
        ({"inside": np.ones((2, 2), bool)}, "inside of shape"),
        ({"lengths": 4}, "lengths"),
        ({"count": -1}, "count"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"max_steps": -1}, "max_steps"),
        ({"max_steps": 1.5}, "max_steps"),
    ],
)
def test_bad_input_raises(kwargs: dict[str, Any], match: str) -> None:
    kwargs = {"logw": np.zeros((3, 3)), **kwargs}
    with pytest.raises(ValueError, match=match):
        wilson_arborescences(**kwargs)


@given(
    logw=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=5),
        elements=st.one_of(st.floats(-1e3, 1e3), st.sampled_from([NEG, np.nan, np.inf])),
    ),
    root=st.integers(-1, 5),
    count=st.integers(0, 3),
)
def test_fuzz_never_crashes(logw: np.ndarray, root: int, count: int) -> None:
    try:
        out = wilson_arborescences(logw, root=root, count=count, seed=0, max_steps=1000)
    except ValueError:
        return
    n = logw.shape[-1]
    assert out.parents.shape == (count, *logw.shape[:-2], n)
    size = int(np.prod(logw.shape[:-2]))
    flat, ok = out.parents.reshape(count, size, n), out.ok.reshape(count, size)
    for s, b in zip(*np.nonzero(ok), strict=True):
        check_tree(flat[s, b], logw.reshape(-1, n, n)[b], root, np.ones(n, dtype=bool))
