"""The recursive Gumbel-max traces a Structure holds: trace_sample, trace_steps, trace_used.

Their laws, conditionals and the estimators on top are tested in structgrad-estimators
(``test_recursive.py``, ``test_recursive_exact.py``); here: which structures have a
trace, what the algorithms return, and the arborescence's numerics.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from structgrad.distributions import STRUCTURES, CategoricalTrace, structure
from structgrad.distributions._trace_arborescence import neg_exponentials
from structgrad.distributions._trace_arborescence_log import redo_in_log_space

TRACED = ("categorical", "k_subset", "spanning_tree", "arborescence", "matching", "binary_tree")
OPTIONS: dict[str, dict[str, Any]] = {"k_subset": {"k": 2}, "arborescence": {"root": 1}}
# The structures whose algorithm on U is the MAP of U itself.
MAP_OF_U = ("categorical", "k_subset", "spanning_tree", "binary_tree")


def _perturbed(name: str, batch: int = 200, n: int = 5, seed: int = 0) -> torch.Tensor:
    s = structure(name)
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, n) if s.event_dim == 1 else (batch, n, n)
    theta = torch.randn(shape, dtype=torch.float64, generator=gen)
    return theta + s.gumbel(theta, generator=gen)


def test_has_trace_is_exactly_the_expected_structures() -> None:
    assert tuple(n for n in STRUCTURES if structure(n).has_trace) == TRACED
    for name in set(STRUCTURES) - set(TRACED):
        s = structure(name)
        assert s.trace_used((3, 3), torch.device("cpu")) is None
        with pytest.raises(NotImplementedError, match=name):
            s.trace_sample(torch.zeros(3, 3))
        with pytest.raises(NotImplementedError, match=name):
            s.trace_steps(None, (3, 3), device=torch.device("cpu"))


@pytest.mark.parametrize("name", TRACED)
def test_trace_sample_returns_the_map_of_its_algorithm(name: str) -> None:
    s = structure(name)
    u = _perturbed(name)
    opts = s.check(u, **OPTIONS.get(name, {}))
    sample, trace = s.trace_sample(u, **opts)
    assert sample.dtype == u.dtype and isinstance(trace, tuple) and hasattr(trace, "_fields")
    if name in MAP_OF_U:
        assert torch.equal(sample, s.map(u, **opts))
    elif name == "arborescence":
        # The minimum arborescence of E = exp(-U), i.e. the MAP of -E: not the MAP of U.
        assert torch.equal(sample, s.map(-torch.exp(-u), **opts))
        assert not torch.equal(sample, s.map(u, **opts))
    else:
        # Matching: the greedy crossing matching of U, not the assignment MAP.
        assert torch.equal(sample, _greedy_matching(u))
        assert not torch.equal(sample, s.map(u))
        best = s.score(u, s.map(u))
        assert (s.score(u, sample) <= best + 1e-12).all()


def _greedy_matching(u: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(u)
    for b in range(u.shape[0]):
        free = u[b].clone()
        for _ in range(u.shape[-1]):
            r, c = divmod(int(free.argmax()), u.shape[-1])
            out[b, r, c] = 1
            free[r, :] = free[:, c] = -torch.inf
    return out


def test_trace_sample_with_lengths_is_the_map_with_lengths() -> None:
    lengths = torch.tensor([5, 2, 3, 1] * 50)
    for name in ("spanning_tree", "binary_tree"):
        s = structure(name)
        u = _perturbed(name)
        sample, _ = s.trace_sample(u, lengths=lengths)
        assert torch.equal(sample, s.map(u, lengths=lengths))


@pytest.mark.parametrize("name", ["categorical", "k_subset", "spanning_tree", "matching"])
def test_each_step_chooses_the_argmax_of_u_over_its_candidates(name: str) -> None:
    # The order-only structures: every step is a Gumbel-max over its candidates.
    s = structure(name)
    u = _perturbed(name)
    opts = s.check(u, **OPTIONS.get(name, {}))
    _, trace = s.trace_sample(u, **opts)
    event = tuple(u.shape[1:])
    chosen, candidates = s.trace_steps(trace, event, device=u.device, **opts)
    flat = u.flatten(1).unsqueeze(1).expand(candidates.shape)
    best = torch.where(candidates, flat, -torch.inf).argmax(-1)
    live = chosen >= 0
    assert live.any() and torch.equal(best[live], chosen[live])


def test_categorical_trace_is_the_argmax() -> None:
    s = structure("categorical")
    u = _perturbed("categorical")
    sample, trace = s.trace_sample(u)
    assert isinstance(trace, CategoricalTrace) and torch.equal(trace.index, u.argmax(-1))
    assert torch.equal(sample.argmax(-1), trace.index)


def test_trace_used() -> None:
    cpu = torch.device("cpu")
    tree = structure("spanning_tree").trace_used((4, 4), cpu)
    assert tree is not None and torch.equal(tree, torch.ones(4, 4, dtype=torch.bool).triu(1))
    arb = structure("arborescence").trace_used((4, 4), cpu, root=1)
    assert arb is not None and not arb[:, 1].any() and not arb.diagonal().any()
    assert int(arb.sum()) == 9
    seq = structure("binary_tree").trace_used((4,), cpu, lengths=torch.tensor([2, 4]))
    assert seq is not None and seq.tolist() == [[True, True, False, False], [True] * 4]
    for name in ("categorical", "k_subset", "matching"):
        assert structure(name).trace_used((4,), cpu, k=2) is None


def test_log_space_twin_matches_the_solver() -> None:
    # Forced on every instance, the log-space CLE reproduces the compiled solver's
    # trace and tree, except on instances without an arborescence avoiding the -inf
    # entries (there both break ties among forbidden edges, differently).
    gen = torch.Generator().manual_seed(14)
    b, n = 1000, 6
    theta = 3 * torch.randn(b, n, n, dtype=torch.float64, generator=gen)
    theta[torch.rand(b, n, n, generator=gen) < 0.1] = -torch.inf
    lengths = torch.randint(3, n + 1, (b,), generator=gen)
    s = structure("arborescence")
    u = theta + s.gumbel(theta, generator=gen)
    sample, out = s.trace_sample(u, root=2, lengths=lengths)
    adj, trace = redo_in_log_space(u, 2, lengths, sample, out, torch.ones(b, dtype=torch.bool))
    edges = out.edges.clamp(min=0)
    picked = u.flatten(1).gather(1, edges[..., 0] * n + edges[..., 1])
    degenerate = ((picked == -torch.inf) & (out.edges[..., 0] >= 0)).any(-1)
    assert int(degenerate.sum()) < b // 10
    ok = ~degenerate
    assert torch.equal(trace.edges[ok], out.edges[ok])
    assert torch.equal(trace.members[ok], out.members[ok])
    assert torch.equal(trace.n_steps[ok], out.n_steps[ok])
    assert torch.equal(adj[ok], sample[ok])


def test_extreme_utilities_are_redone_in_log_space() -> None:
    # θ = ±1e4: beyond float64's range after exponentiating; still an arborescence.
    s = structure("arborescence")
    pattern = np.array([[1, -1, -1, 1], [-1, 1, -1, 1], [1, -1, 1, -1], [-1, 1, -1, -1]])
    u = 1e4 * torch.tensor(pattern, dtype=torch.float64).expand(50, 4, 4)
    u = u + s.gumbel(u, generator=torch.Generator().manual_seed(3))
    sample, trace = s.trace_sample(u)
    assert bool(s.contains(u, sample).all()) and (trace.n_steps >= 3).all()
    assert torch.isfinite(u).all() and (sample.sum((-2, -1)) == 3).all()


def test_neg_exponentials_is_scale_free_and_overflow_safe() -> None:
    u = torch.tensor([[[0.0, -3.0], [2.0, -torch.inf]]], dtype=torch.float64)
    a, b = neg_exponentials(u), neg_exponentials(u + 1e5)
    assert torch.equal(a, b)  # a shift of U is a positive rescaling of E: no effect
    assert a[0, 1, 1] == -torch.inf and torch.isfinite(a[0, :, 0]).all()
    # Within one instance the ratios are exp(U differences).
    assert torch.allclose(a[0, 0, 0] / a[0, 1, 0], torch.tensor(math.exp(2.0), dtype=torch.float64))
    big = torch.tensor([[[0.0, -2000.0], [-500.0, 1.0]]], dtype=torch.float64)
    w = -neg_exponentials(big)
    assert w[0, 0, 1] == torch.inf and (w[0].flatten()[[0, 2, 3]] > 0).all()
    assert torch.isfinite(w[0].flatten()[[0, 2, 3]]).all()
