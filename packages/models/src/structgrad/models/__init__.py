"""Latent-structure layers (one factory for every structure and estimator) and the NRI model."""

from importlib.metadata import version as _version

__version__ = _version("structgrad-models")

__all__ = ["__version__"]
