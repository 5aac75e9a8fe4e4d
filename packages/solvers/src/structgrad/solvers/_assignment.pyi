"""Type stub of the compiled ``_assignment`` kernels: the signatures of their pure-Python twin."""

from ._assignment_ref import assignment as assignment
from ._assignment_ref import crossing as crossing
