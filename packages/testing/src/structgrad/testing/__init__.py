"""Oracles, checks and exact-gradient harness for structgrad (test-only).

``oracles``: networkx, scipy and brute-force solvers to compare against;
``checks``: generic assertions every solver passes (batching, layouts, torch);
``exact``: exponential-family expectations by enumeration;
``traces``: exact enumeration of the recursive Gumbel-max trace distributions, hence
exact expectations and gradients of ``E[f(X)]`` on tiny instances;
``conformance``: bias / variance report of any gradient estimator against them;
``toys``: the recursive Gumbel-max toy losses.
"""

from importlib.metadata import version as _version

from . import checks as checks
from . import conformance as conformance
from . import exact as exact
from . import oracles as oracles
from . import readme as readme
from . import toys as toys
from . import traces as traces

__version__ = _version("structgrad-testing")

__all__ = ["__version__", "checks", "conformance", "exact", "oracles", "readme", "toys", "traces"]
