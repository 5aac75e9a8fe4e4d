"""The recursive Gumbel-max trick: sampling with traces, ``log p(T)`` and ``U | T``.

Every structure with a tractable trace (:data:`RECURSIVE_STRUCTURES`) is drawn
by its recursive algorithm on Gumbel utilities ``U = θ + G``; the trace ``T``
has the probability ``Σ_steps [θ_chosen − logsumexp_candidates θ]``, and ``U``
can be redrawn exactly from its law given ``T``. The score-function family
(:mod:`structgrad.estimators.score`) is built on these four functions.

References:
    Struminsky, Gadetsky, Rakitin, Karpushkin and Vetrov, "Leveraging Recursive
    Gumbel-Max Trick for Approximate Inference in Combinatorial Spaces",
    NeurIPS 2021, https://arxiv.org/abs/2110.15072.
"""

from structgrad.distributions import CategoricalTrace as CategoricalTrace

from ._prepare import RECURSIVE_STRUCTURES as RECURSIVE_STRUCTURES
from ._sample import RecursiveSample as RecursiveSample
from ._sample import conditional_utilities as conditional_utilities
from ._sample import sample_with_trace as sample_with_trace
from ._sample import trace_log_prob as trace_log_prob
from ._sample import utility_log_prob as utility_log_prob

__all__ = [
    "RECURSIVE_STRUCTURES",
    "CategoricalTrace",
    "RecursiveSample",
    "conditional_utilities",
    "sample_with_trace",
    "trace_log_prob",
    "utility_log_prob",
]
