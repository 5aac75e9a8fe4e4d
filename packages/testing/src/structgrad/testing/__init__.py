"""Oracles, checks and exact-gradient harness for structgrad (test-only).

``oracles``: networkx, scipy and brute-force solvers to compare against;
``checks``: generic assertions every solver passes (batching, layouts, torch).
"""

from importlib.metadata import version as _version

from . import checks as checks
from . import exact as exact
from . import oracles as oracles
from . import readme as readme

__version__ = _version("structgrad-testing")

__all__ = ["__version__", "checks", "exact", "oracles", "readme"]
