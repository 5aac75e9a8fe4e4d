"""The app's method names, built from ``structgrad.models.METHODS``.

A method name is ``<graph>-<method>``: ``graph`` is the latent structure of the
layout graph and ``method`` a method that ``structgrad.models.METHODS`` lists
for that structure:

- ``tree-*``: spanning trees (``spanning_tree``; the encoder's symmetrised
  logits are the edge scores), e.g. ``tree-sst`` (the paper's spanning-tree
  SST), ``tree-st-sst``, ``tree-imle``, ``tree-aimle``, ``tree-reinforce``,
  ``tree-nvil``, ``tree-t-reinforce+``, ``tree-relax``;
- ``topk-*``: the ``n − 1`` highest-scoring of the ``n(n−1)/2`` undirected
  edges (``k_subset``), e.g. ``topk-sst``;
- ``indep``: independent edges with two edge types per directed pair (the
  NRI / SST baseline; ``--symmetric`` shares one sample per undirected edge).

Modifiers are flags, checked here: ``--straight-through`` (SST and indep only),
``--symmetric`` (indep only), ``--aimle-difference forward|central`` (AIMLE
only), ``--num-samples`` (score-function methods only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from structgrad_app_common import CLIError
from structgrad_app_common.runcontrol import check_num_samples

from structgrad.models import METHODS, method_info

#: App graph prefix → structgrad structure name.
GRAPHS = {"tree": "spanning_tree", "topk": "k_subset", "indep": "edges"}


def method_names() -> list[str]:
    """Every app method name available in the installed ``structgrad-models``."""
    names = []
    for graph, structure in GRAPHS.items():
        for method in METHODS.get(structure, ()):
            names.append("indep" if structure == "edges" else f"{graph}-{method}")
    return names


def split_name(name: str) -> tuple[str, str]:
    """``(graph, method)`` of an app method name: ``tree-e-reinforce+`` → the two parts."""
    if name == "indep":
        return "indep", "indep"
    graph, _, method = name.partition("-")
    return graph, method


@dataclass(frozen=True)
class MethodSpec:
    """A resolved method: what to build and how to feed it.

    Attributes:
        name: the app name, e.g. ``tree-sst``.
        graph: ``tree``, ``topk`` or ``indep``.
        structure: the structgrad structure name.
        method: the structgrad method name.
        options: keyword options for ``structgrad.models.latent``.
    """

    name: str
    graph: str
    structure: str
    method: str
    options: dict[str, Any]

    @property
    def has_tau(self) -> bool:
        """Whether ``--tau`` is used by the method (the sweep tunes it only then)."""
        return method_info(self.method).tau

    @property
    def n_out(self) -> int:
        """Encoder outputs per directed edge: 2 edge types for indep, 1 score otherwise."""
        return 2 if self.graph == "indep" else 1


def resolve(
    name: str,
    *,
    n_nodes: int,
    tau: float = 1.0,
    straight_through: bool = False,
    symmetric: bool = False,
    aimle_difference: str | None = None,
    num_samples: int | None = None,
    max_range: float | None = 15.0,
) -> MethodSpec:
    """Check a method name and its modifiers and build the ``latent`` options.

    Raises:
        CLIError: one line naming the problem (unknown method, or a modifier
            that does not apply to it).
    """
    graph, method = split_name(name)
    if graph not in GRAPHS or name not in method_names():
        raise CLIError(f"unknown method {name!r}; choose one of: {', '.join(method_names())}")
    if not 0 < tau < math.inf:
        raise CLIError(f"--tau must be > 0 and finite, got {tau}")
    structure = GRAPHS[graph]
    if straight_through and method == "st-sst":
        raise CLIError(f"{name!r} is already straight-through: drop --straight-through")
    if straight_through and method not in ("sst", "indep"):
        kinds = {"perturbation": "perturb-and-MAP", "score": "score-function"}
        kind = kinds.get(method_info(method).family, "relaxation")
        raise CLIError(
            f"--straight-through applies to SST and indep methods only, not to the {kind} "
            f"method {name!r} (use {graph}-st-sst for the straight-through SST)"
        )
    if symmetric and graph != "indep":
        raise CLIError(f"--symmetric applies to 'indep' only ({name!r} is already undirected)")
    if aimle_difference is not None and method != "aimle":
        raise CLIError(f"--aimle-difference applies to AIMLE methods only, not {name!r}")
    if num_samples is not None and method_info(method).pathwise:
        raise CLIError(f"--num-samples applies to score-function methods only, not {name!r}")
    if num_samples is not None and num_samples < 1:
        raise CLIError(f"--num-samples must be >= 1, got {num_samples}")
    check_num_samples(method, num_samples, name)
    options: dict[str, Any] = {}
    if method_info(method).tau:
        options["tau"] = tau
    if straight_through:
        options["straight_through"] = True
    if graph == "indep":
        options.update(categorical=True, symmetric=symmetric)
    if graph == "topk":
        options["k"] = n_nodes - 1
    if graph == "tree" and method in ("sst", "st-sst") and max_range is not None:
        options["max_range"] = max_range
    if method == "aimle":
        options["difference"] = aimle_difference or "forward"
    if num_samples is not None:
        options["samples"] = num_samples
    if method == "relax":  # the default critic needs the sample's shape
        options["event_shape"] = (
            (n_nodes, n_nodes) if graph == "tree" else (n_nodes * (n_nodes - 1) // 2,)
        )
    return MethodSpec(name, graph, structure, method, options)


#: The run flags that :func:`resolve` reads, by their config field names.
FLAGS = ("tau", "straight_through", "symmetric", "aimle_difference", "num_samples", "max_range")


class _Flags(Protocol):
    """A run config: its method and the :data:`FLAGS` fields."""

    method: str


def resolve_config(config: _Flags, n_nodes: int, method: str | None = None) -> MethodSpec:
    """:func:`resolve` of a run config's method (or ``method``) and its :data:`FLAGS`."""
    flags = {k: getattr(config, k) for k in FLAGS}
    return resolve(method or config.method, n_nodes=n_nodes, **flags)
