"""Exact enumeration of the recursive Gumbel-max trace distributions, for tiny instances.

Each algorithm is simulated as a sequence of categorical choices: a step picks an
entry ``j`` of a candidate set ``C`` with probability ``exp(θ_j) / Σ_C exp(θ)``, and
the enumeration branches over every choice. This is written independently of the
fast samplers of structgrad.solvers and the estimators: it is their oracle.

A trace is a :class:`Trace` whose ``steps`` are ``(chosen_entry, candidate_entries)``
pairs, entries being index tuples into the logits, candidates sorted row-major.
Steps are in algorithm order for ``categorical``, ``k_subset`` (selection order),
``spanning_tree`` (Kruskal order) and ``matching`` (crossing order), and sorted
for ``arborescence`` and ``binary_tree``, whose step order carries no information.

torch is imported inside the functions, so this module imports without it.

References:
    Struminsky, Gadetsky, Rakitin, Karpushkin, Vetrov, "Leveraging Recursive
    Gumbel-Max Trick for Approximate Inference in Combinatorial Spaces", NeurIPS
    2021, https://arxiv.org/abs/2110.15072.
"""

from ._trace_canon import canonical_trace as canonical_trace
from ._trace_enum import MAX_TRACES as MAX_TRACES
from ._trace_enum import Entry as Entry
from ._trace_enum import Step as Step
from ._trace_enum import Trace as Trace
from ._trace_enum import enumerate_traces as enumerate_traces
from ._trace_probs import exact_distribution as exact_distribution
from ._trace_probs import exact_expectation as exact_expectation
from ._trace_probs import exact_gradient as exact_gradient
from ._trace_probs import trace_log_probs as trace_log_probs

__all__ = [
    "MAX_TRACES",
    "Entry",
    "Step",
    "Trace",
    "canonical_trace",
    "enumerate_traces",
    "exact_distribution",
    "exact_expectation",
    "exact_gradient",
    "trace_log_probs",
]
