"""Type stub of the compiled ``_sequence`` kernels: the signatures of their pure-Python twin."""

from ._sequence_ref import binary_tree as binary_tree
from ._sequence_ref import top_k as top_k
