"""Latent-structure layers and the NRI model.

One factory turns a structure and an estimator name into a module.
"""

from importlib.metadata import version as _version

__version__ = _version("structgrad-models")

__all__ = ["__version__"]
