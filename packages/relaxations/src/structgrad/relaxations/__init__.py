"""Gumbel-softmax, stochastic softmax tricks and exponential-family relaxations.

Every relaxation is batched over leading dimensions, runs in log space, keeps the
input's dtype and device, and takes randomness through a keyword-only
``generator``.

References:
    Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
    NeurIPS 2020, https://arxiv.org/abs/2006.08063.
    Jang et al., "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017,
    https://arxiv.org/abs/1611.01144.
"""

from importlib.metadata import version as _version

# The exponential-family numerics live with the structures (one home, issue #13);
# they stay importable from here under the same names.
from structgrad.distributions import arborescence_marginals as arborescence_marginals
from structgrad.distributions import k_subset_log_partition as k_subset_log_partition
from structgrad.distributions import k_subset_marginals as k_subset_marginals
from structgrad.distributions import (
    multi_root_arborescence_marginals as multi_root_arborescence_marginals,
)
from structgrad.distributions import sinkhorn as sinkhorn
from structgrad.distributions import spanning_tree_marginals as spanning_tree_marginals

from ._cvx import cvx_relaxation as cvx_relaxation
from ._edges import independent_edges as independent_edges
from ._gumbel import binary_concrete as binary_concrete
from ._gumbel import gumbel_softmax as gumbel_softmax
from ._gumbel import hard_with_soft_gradient as hard_with_soft_gradient
from ._gumbel import sample_gumbel as sample_gumbel
from ._layers import GumbelSoftmaxLayer as GumbelSoftmaxLayer
from ._layers import SSTLayer as SSTLayer
from ._sinkhorn import gumbel_sinkhorn as gumbel_sinkhorn
from ._softsub import relaxed_top_k as relaxed_top_k
from ._sst import sst as sst

__version__ = _version("structgrad-relaxations")

__all__ = [
    "GumbelSoftmaxLayer",
    "SSTLayer",
    "__version__",
    "arborescence_marginals",
    "binary_concrete",
    "cvx_relaxation",
    "gumbel_sinkhorn",
    "gumbel_softmax",
    "hard_with_soft_gradient",
    "independent_edges",
    "k_subset_log_partition",
    "k_subset_marginals",
    "multi_root_arborescence_marginals",
    "relaxed_top_k",
    "sample_gumbel",
    "sinkhorn",
    "spanning_tree_marginals",
    "sst",
]
