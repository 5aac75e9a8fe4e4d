"""Oracles, exact-gradient harness and conformance suites for structgrad (test-only)."""

from importlib.metadata import version as _version

__version__ = _version("structgrad-testing")

__all__ = ["__version__"]
