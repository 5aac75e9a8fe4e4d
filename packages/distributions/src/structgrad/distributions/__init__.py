"""Structures and exact structured distributions with the ``torch.distributions`` API.

:func:`structure` resolves a structure name to its :class:`Structure` (checks,
options, Gumbel noise, MAP, enumeration and, where tractable, log-partition,
marginals and exact samples). On top: the Gibbs laws ``p(x) ∝ exp(<θ, x>)``
:class:`KSubset`, :class:`SpanningTree` and :class:`Arborescence` with exact
samplers, :class:`PlackettLuce` over rankings, and :class:`PerturbAndMAP`.

References:
    Paulus et al., "Gradient Estimation with Stochastic Softmax Tricks",
    NeurIPS 2020, https://arxiv.org/abs/2006.08063.
"""

from importlib.metadata import version as _version

from torch.distributions import Categorical as Categorical

from . import checks as checks
from ._arborescence_marginals import arborescence_marginals as arborescence_marginals
from ._arborescence_marginals import (
    multi_root_arborescence_marginals as multi_root_arborescence_marginals,
)
from ._gibbs import Arborescence as Arborescence
from ._gibbs import KSubset as KSubset
from ._gibbs import SpanningTree as SpanningTree
from ._ksubset_marginals import k_subset_log_partition as k_subset_log_partition
from ._ksubset_marginals import k_subset_marginals as k_subset_marginals
from ._latent import LatentLayer as LatentLayer
from ._numerics import without_offset as without_offset
from ._perturb import PerturbAndMAP as PerturbAndMAP
from ._plackett_luce import PlackettLuce as PlackettLuce
from ._registry import STRUCTURES as STRUCTURES
from ._registry import structure as structure
from ._sinkhorn import sinkhorn as sinkhorn
from ._structure import Structure as Structure
from ._trace import CategoricalTrace as CategoricalTrace
from ._tree_marginals import spanning_tree_marginals as spanning_tree_marginals
from ._trees import edge_list as edge_list
from ._trees import from_upper as from_upper
from ._trees import to_upper as to_upper
from ._utils import divide_by_tau as divide_by_tau
from ._utils import gumbel_like as gumbel_like
from ._utils import sample_gumbel as sample_gumbel
from ._utils import sample_uniform as sample_uniform

__version__ = _version("structgrad-distributions")

__all__ = [
    "STRUCTURES",
    "Arborescence",
    "Categorical",
    "CategoricalTrace",
    "KSubset",
    "LatentLayer",
    "PerturbAndMAP",
    "PlackettLuce",
    "SpanningTree",
    "Structure",
    "__version__",
    "arborescence_marginals",
    "checks",
    "divide_by_tau",
    "edge_list",
    "from_upper",
    "gumbel_like",
    "k_subset_log_partition",
    "k_subset_marginals",
    "multi_root_arborescence_marginals",
    "sample_gumbel",
    "sample_uniform",
    "sinkhorn",
    "spanning_tree_marginals",
    "structure",
    "to_upper",
    "without_offset",
]
