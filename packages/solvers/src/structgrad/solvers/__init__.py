"""Batched MAP solvers, trace recorders, exact tree samplers and enumerators.

All solvers maximise. Arrays in, the same kind of array out: numpy arrays give
numpy arrays; torch tensors give torch tensors on the input's device (torch is
imported only when a tensor is passed). Leading dimensions are batch
dimensions; solutions are 0/1 in the input's floating dtype.

Set ``STRUCTGRAD_SOLVERS_PURE_PYTHON=1`` to run the pure-Python twins of the
compiled kernels; :func:`backend` says which is in use.
"""

from importlib.metadata import version as _version

from ._arborescence import ArborescenceTrace as ArborescenceTrace
from ._arborescence import max_arborescence as max_arborescence
from ._backend import backend as backend
from ._binary_tree import BinaryTreeTrace as BinaryTreeTrace
from ._binary_tree import binary_tree as binary_tree
from ._enumerate import enumerate_arborescences as enumerate_arborescences
from ._enumerate import enumerate_binary_trees as enumerate_binary_trees
from ._enumerate import enumerate_k_subsets as enumerate_k_subsets
from ._enumerate import enumerate_permutations as enumerate_permutations
from ._enumerate import enumerate_spanning_trees as enumerate_spanning_trees
from ._grid_path import grid_shortest_path as grid_shortest_path
from ._inverse import batched_inverse as batched_inverse
from ._inverse import inverse_in_place as inverse_in_place
from ._matching import CrossingTrace as CrossingTrace
from ._matching import crossing_matching as crossing_matching
from ._matching import linear_assignment as linear_assignment
from ._spanning_tree import SpanningTreeTrace as SpanningTreeTrace
from ._spanning_tree import max_spanning_tree as max_spanning_tree
from ._topk import TopKTrace as TopKTrace
from ._topk import top_k as top_k
from ._topk import top_k_rows as top_k_rows
from ._tree_sampler import WilsonSamples as WilsonSamples
from ._tree_sampler import wilson_arborescences as wilson_arborescences
from ._validate import InvalidScoresError as InvalidScoresError

__version__ = _version("structgrad-solvers")

__all__ = [
    "ArborescenceTrace",
    "BinaryTreeTrace",
    "CrossingTrace",
    "InvalidScoresError",
    "SpanningTreeTrace",
    "TopKTrace",
    "WilsonSamples",
    "__version__",
    "backend",
    "batched_inverse",
    "binary_tree",
    "crossing_matching",
    "enumerate_arborescences",
    "enumerate_binary_trees",
    "enumerate_k_subsets",
    "enumerate_permutations",
    "enumerate_spanning_trees",
    "grid_shortest_path",
    "inverse_in_place",
    "linear_assignment",
    "max_arborescence",
    "max_spanning_tree",
    "top_k",
    "top_k_rows",
    "wilson_arborescences",
]
