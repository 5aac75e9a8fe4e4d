"""Type stub of the compiled ``_edmonds`` kernels: the signatures of their pure-Python twin."""

from ._edmonds_ref import edmonds as edmonds
