"""Type stub of the compiled ``_gridpath`` kernels: the signatures of their pure-Python twin."""

from ._gridpath_ref import dijkstra as dijkstra
