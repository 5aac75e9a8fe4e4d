"""Type stub of the compiled ``_linalg`` kernels: the signatures of their pure-Python twin."""

from ._linalg_ref import inverse as inverse
