"""Gradient estimators through discrete structures.

IMLE, AIMLE, perturbed optimizers and score-function estimators.
"""

from importlib.metadata import version as _version

__version__ = _version("structgrad-estimators")

__all__ = ["__version__"]
