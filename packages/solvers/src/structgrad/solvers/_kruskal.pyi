"""Type stub of the compiled ``_kruskal`` kernels: the signatures of their pure-Python twin."""

from ._kruskal_ref import kruskal as kruskal
