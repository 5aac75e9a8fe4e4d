"""The batched trace log-probabilities against the independent trace enumerator.

``structgrad.testing.traces`` simulates every recursive algorithm as a chain of
categorical choices and enumerates all its traces. Here every sampled trace is
mapped to its canonical form; the batched ``trace_log_prob`` must equal the
enumerator's log-probability, and with enough draws every enumerated trace is
reached, so the batched log-probabilities also sum to one over all traces.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import structgrad.estimators as E
from structgrad.testing import traces as exact

# (structure, event shape, options): tiny instances whose traces all appear in
# 20 000 draws at the logits below.
CASES = [
    ("categorical", (5,), {}),
    ("k_subset", (5,), {"k": 3}),
    ("spanning_tree", (4, 4), {}),
    ("arborescence", (4, 4), {"root": 0}),
    ("arborescence", (4, 4), {"root": 2}),
    ("matching", (3, 3), {}),
    ("binary_tree", (5,), {}),
]
DRAWS = 20_000


def _instance(trace: Any, i: int) -> Any:
    if isinstance(trace, E.CategoricalTrace):
        return int(trace.index[i])
    return type(trace)(*(field[i].cpu().numpy() for field in trace))


@pytest.mark.parametrize(("structure", "event", "options"), CASES, ids=lambda c: str(c))
def test_log_probs_equal_the_enumerator_on_every_trace(
    structure: str, event: tuple[int, ...], options: dict[str, Any]
) -> None:
    gen = torch.Generator().manual_seed(3)
    # Mild random logits: every trace keeps a probability well above 1 / DRAWS.
    theta = 0.3 * torch.randn(event, dtype=torch.float64, generator=gen)
    batch = theta.expand(DRAWS, *event)
    draw = E.sample_with_trace(structure, batch, generator=gen, **options)
    ours = E.trace_log_prob(structure, draw.trace, batch, **options)

    n = event[-1]
    k = options.get("k", 1)
    root = options.get("root", 0)
    canonical: dict[Any, int] = {}
    first_seen: list[int] = []
    for i in range(DRAWS):
        t = exact.canonical_trace(structure, _instance(draw.trace, i), n, k=k, root=root)
        if t not in canonical:
            canonical[t] = len(canonical)
            first_seen.append(i)
        # The sample is the structure of its trace.
        if i < 200:
            np.testing.assert_array_equal(draw.sample[i].numpy(), t.structure)
    listed = list(canonical)
    theirs = exact.trace_log_probs(structure, theta, listed)
    torch.testing.assert_close(ours[first_seen], theirs, rtol=1e-10, atol=1e-10)

    everything = exact.enumerate_traces(structure, n, k=k, root=root)
    assert set(listed) == set(everything), "some traces were never drawn"
    total = ours[first_seen].exp().sum()
    torch.testing.assert_close(total, torch.ones((), dtype=torch.float64), rtol=1e-12, atol=0)


def test_traces_straight_from_the_numpy_solvers_are_accepted() -> None:
    # A user may run the solver on numpy utilities and score the trace with torch
    # logits; the log-probabilities equal those of the torch trace.
    import structgrad.solvers as solvers

    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(6, 5, 5, dtype=torch.float64, generator=gen)
    draw = E.sample_with_trace("spanning_tree", theta, generator=gen)
    _, numpy_trace = solvers.max_spanning_tree(draw.utilities.numpy(), return_trace=True)
    assert isinstance(numpy_trace.edges, np.ndarray)
    torch.testing.assert_close(
        E.trace_log_prob("spanning_tree", numpy_trace, theta),
        E.trace_log_prob("spanning_tree", draw.trace, theta),
    )
    with pytest.raises(ValueError, match="trace must be a trace NamedTuple"):
        E.trace_log_prob("spanning_tree", draw.trace.edges, theta)
