"""Neural relational inference (NRI) with structured latent graphs.

The model of the SST graph-layout experiment: a factor-graph MLP encoder
q(z | x) emits one logit vector per directed edge, a latent layer
(:func:`structgrad.models.latent`) samples the graph, an interaction-network
decoder p(x | z) predicts the trajectories, and the objective is the ELBO
with a Gumbel (or categorical) KL. Edge order: NRI's directed off-diagonal
order ``[B, n(n−1), C]`` (see :func:`off_diagonal_indices`).

References:
    Kipf, Fetaya, Wang, Welling and Zemel, "Neural Relational Inference for
    Interacting Systems", ICML 2018, https://arxiv.org/abs/1802.04687.
    Paulus, Choi, Tarlow, Krause and Maddison, "Gradient Estimation with
    Stochastic Softmax Tricks", NeurIPS 2020, https://arxiv.org/abs/2006.08063.
"""

from ._decoder import MLPDecoder as MLPDecoder
from ._encoder import MLP as MLP
from ._encoder import MLPEncoder as MLPEncoder
from ._layout import as_edge_types as as_edge_types
from ._layout import edges_to_matrix as edges_to_matrix
from ._layout import matrix_to_edges as matrix_to_edges
from ._layout import matrix_to_upper as matrix_to_upper
from ._layout import n_nodes_from_edges as n_nodes_from_edges
from ._layout import off_diagonal_indices as off_diagonal_indices
from ._layout import symmetrize as symmetrize
from ._layout import upper_to_matrix as upper_to_matrix
from ._metrics import EdgeMetrics as EdgeMetrics
from ._metrics import edge_metrics as edge_metrics
from ._objective import VARIANCE as VARIANCE
from ._objective import ELBOTerms as ELBOTerms
from ._objective import elbo as elbo
from ._objective import kl_categorical_uniform as kl_categorical_uniform
from ._objective import kl_gumbel as kl_gumbel
from ._objective import nll_gaussian as nll_gaussian

__all__ = [
    "MLP",
    "VARIANCE",
    "ELBOTerms",
    "EdgeMetrics",
    "MLPDecoder",
    "MLPEncoder",
    "as_edge_types",
    "edge_metrics",
    "edges_to_matrix",
    "elbo",
    "kl_categorical_uniform",
    "kl_gumbel",
    "matrix_to_edges",
    "matrix_to_upper",
    "n_nodes_from_edges",
    "nll_gaussian",
    "off_diagonal_indices",
    "symmetrize",
    "upper_to_matrix",
]
