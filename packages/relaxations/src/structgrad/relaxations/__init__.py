"""Gumbel-softmax, stochastic softmax tricks and exponential-family relaxations of combinatorial structures."""

from importlib.metadata import version as _version

__version__ = _version("structgrad-relaxations")

__all__ = ["__version__"]
