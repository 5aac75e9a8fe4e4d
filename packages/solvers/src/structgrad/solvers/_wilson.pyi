"""Type stub of the compiled ``_wilson`` kernels: the signatures of their pure-Python twin."""

from ._wilson_ref import wilson as wilson
