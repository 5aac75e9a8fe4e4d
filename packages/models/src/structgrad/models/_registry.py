"""The method registry: each method's requirement on a Structure, and its builder.

A method is offered for a structure when the structure has what the method
needs, read off the :class:`~structgrad.distributions.Structure`:

- ``sst`` / ``st-sst``: a relaxation (``relaxable``) other than the softmax;
  the categorical structure's relaxation is the softmax, so its SST is
  Gumbel-softmax (``gumbel-softmax`` / ``st``);
- the perturbation presets (``imle``, ``aimle``, ``ste``, ``blackbox``,
  ``perturbed``): a MAP that is ``argmax_z <z, θ>`` (``nonlinear`` is ``None``)
  over logits it maximises (``minimize`` is false);
- the score-function methods: a recursive Gumbel-max trace (``has_trace``);
- ``indep``: the pseudo-structure ``edges`` only.

Every builder returns the layer of the family that defines it (relaxations or
estimators) as it is; models adds no wrapper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from structgrad.distributions import LatentLayer, Structure
from structgrad.distributions.checks import check_flag, check_options
from structgrad.estimators import relax
from structgrad.estimators.perturbation import PRESETS as PERTURBATION
from structgrad.estimators.score import PRESETS as SCORE
from structgrad.estimators.score import ScoreFunction
from structgrad.relaxations import GumbelSoftmaxLayer, SSTLayer

from ._edges import IndepEdgesLayer
from ._structure import EDGES, LatentStructure

__all__ = [
    "REGISTRY",
    "Method",
    "MethodInfo",
    "method_info",
    "methods_of",
    "no_methods",
    "why_missing",
]


@dataclass(frozen=True)
class Method:
    """A method name, what it needs from a structure and how its layer is built.

    Attributes:
        name: the name :func:`~structgrad.models.latent` takes.
        family: ``"relaxation"``, ``"perturbation"``, ``"score"`` or ``"edges"``.
        applies: whether a Structure has what the method needs.
        build: ``build(structure, options) -> layer``; raises ``ValueError`` for
            options the layer does not take.
        tau: whether ``tau`` (a temperature or noise scale) shapes the method as built
            by default.
    """

    name: str
    family: str
    applies: Callable[[Structure], bool]
    build: Callable[[Structure, dict[str, Any]], LatentLayer]
    tau: bool = True


def _straight_through(name: str, flag: str, soft: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the flag that makes ``name`` straight-through; refused if set False."""
    if not check_flag(options.get(flag, True), flag):
        why = f"{name!r} is {soft!r} with {flag}=True"
        raise ValueError(f"latent: {why}; for {flag}=False use {soft!r}")
    return {**options, flag: True}


def _sst(name: str) -> Method:
    def build(s: Structure, options: dict[str, Any]) -> LatentLayer:
        if name == "st-sst":
            options = _straight_through(name, "straight_through", "sst", options)
        return SSTLayer(s, **options)

    return Method(name, "relaxation", lambda s: s.relaxable and s.relaxation != "softmax", build)


def _gumbel_softmax(name: str) -> Method:
    def build(s: Structure, options: dict[str, Any]) -> LatentLayer:
        check_options(f"latent({s.name!r}, {name!r})", options, ("tau", "hard"))
        if name == "st":
            options = _straight_through(name, "hard", "gumbel-softmax", options)
        return GumbelSoftmaxLayer(**options)

    return Method(name, "relaxation", lambda s: s.relaxation == "softmax", build)


def _perturbation(name: str, preset: str, defaults: dict[str, Any]) -> Method:
    def build(s: Structure, options: dict[str, Any]) -> LatentLayer:
        if "minimize" in options:
            # the estimators' layer would then take costs, a latent layer takes logits
            raise ValueError(
                f"latent({s.name!r}, {name!r}) takes logits to maximise, not minimize=; "
                f"for costs use structgrad.estimators.{preset}({s.name!r}, minimize=True)"
            )
        # the preset's own list names minimize, which a latent layer refuses (above)
        accepted = [o for o in PERTURBATION[preset].accepted(s.name) if o != "minimize"]
        check_options(f"latent({s.name!r}, {name!r})", options, accepted)
        layer: LatentLayer = PERTURBATION[preset](s.name, **{**defaults, **options})
        return layer

    # tau scales the noise: a preset without noise by default (blackbox) has no use for it.
    noisy = {**PERTURBATION[preset].defaults, **defaults}.get("noise", "gumbel") is not None
    applies = lambda s: s.nonlinear is None and not s.minimize  # noqa: E731
    return Method(name, "perturbation", applies, build, tau=noisy)


def _score(name: str) -> Method:
    def build(s: Structure, options: dict[str, Any]) -> LatentLayer:
        layer: LatentLayer = (
            relax(s.name, **options)
            if name == "relax"
            else ScoreFunction(s.name, **{**SCORE[name], **options})
        )
        return layer

    return Method(name, "score", lambda s: s.has_trace, build, tau=False)


def _indep(s: Structure, options: dict[str, Any]) -> LatentLayer:
    check_options(
        "latent('edges', 'indep')", options, ("tau", "symmetric", "categorical", "straight_through")
    )
    return IndepEdgesLayer(**options)


#: Every method, in the order :data:`~structgrad.models.METHODS` lists them.
REGISTRY: dict[str, Method] = {
    m.name: m
    for m in (
        _sst("sst"),
        _sst("st-sst"),
        _gumbel_softmax("gumbel-softmax"),
        _gumbel_softmax("st"),
        _perturbation("imle", "imle", {}),
        _perturbation("aimle", "aimle", {}),
        # perturb-and-MAP straight-through: Gumbel noise by default
        _perturbation("ste", "straight_through", {"noise": "gumbel"}),
        _perturbation("blackbox", "blackbox", {}),
        _perturbation("perturbed", "perturbed", {}),
        *(_score(name) for name in (*SCORE, "relax")),
        Method("indep", "edges", lambda s: False, _indep),
    )
}


@dataclass(frozen=True)
class MethodInfo:
    """What a method of :data:`~structgrad.models.METHODS` is, before any layer is built.

    Attributes:
        name: the method name.
        family: ``"relaxation"``, ``"perturbation"``, ``"score"`` or ``"edges"``.
        pathwise: the gradient flows through the sample (every family but
            ``"score"``, whose layers need ``attach``), as ``layer.pathwise``.
        tau: ``tau`` (a relaxation temperature or noise scale) shapes the method
            as :func:`~structgrad.models.latent` builds it by default.
    """

    name: str
    family: str
    pathwise: bool
    tau: bool


def method_info(method: str) -> MethodInfo:
    """The :class:`MethodInfo` of a method name (for apps that check flags before building).

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    m = REGISTRY.get(method)
    if m is None:
        raise ValueError(f"unknown method {method!r}; known methods: {', '.join(REGISTRY)}")
    return MethodInfo(m.name, m.family, m.family != "score", m.tau)


def methods_of(s: LatentStructure) -> tuple[str, ...]:
    """The method names :func:`~structgrad.models.latent` accepts for ``s`` (may be empty)."""
    if not isinstance(s, Structure):
        return ("indep",)
    return tuple(name for name, m in REGISTRY.items() if m.applies(s))


def _names(family: str) -> tuple[str, ...]:
    return tuple(name for name, m in REGISTRY.items() if m.family == family)


def _reason(s: Structure, text: str) -> str:
    """A Structure's reason string without its leading ``"<name>: "``."""
    return text.removeprefix(f"{s.name}: ")


def _minimize_reason(s: Structure) -> str:
    return (
        "its scores are costs and its MAP minimises them, while latent layers take "
        f"logits to maximise; use structgrad.estimators.imle({s.name!r}, minimize=True) "
        "and friends directly"
    )


def _score_hint(s: Structure) -> str:
    if not s.has_trace:
        return ""
    return f"; the score-function methods apply ({', '.join(_names('score'))})"


def why_missing(s: LatentStructure, method: str) -> str:
    """Why ``method`` is not offered for ``s`` (``""`` for an unknown method name)."""
    if not isinstance(s, Structure):
        return "independent edges are trained with 'indep' (binary concrete per edge)"
    m = REGISTRY.get(method)
    if m is None:
        return ""
    if m.family == "edges":
        return f"'indep' is the method of the structure {EDGES.name!r} (independent edges)"
    if m.name in ("sst", "st-sst"):
        if s.relax_missing is not None:
            return _reason(s, s.relax_missing) + _score_hint(s)
        return (
            f"the {s.name} SST is Gumbel-softmax: use 'gumbel-softmax' (or 'st' for a "
            "one-hot forward)"
        )
    if m.family == "relaxation":
        alternative = (
            "use 'sst' (or 'st-sst') for a structured relaxation"
            if s.relax_missing is None
            else _reason(s, s.relax_missing)
        )
        return f"Gumbel-softmax relaxes categorical variables only; {alternative}"
    if m.family == "perturbation":
        if s.nonlinear is not None:
            return _reason(s, s.nonlinear) + _score_hint(s)
        return _minimize_reason(s)
    return (
        "the score-function estimators need its recursive Gumbel-max trace, which "
        "structgrad.estimators does not have (see RECURSIVE_STRUCTURES)"
    )


def no_methods(s: Structure) -> str:
    """Why ``s`` has no latent-layer method at all (for :func:`methods_of` empty)."""
    reasons = [_reason(s, r) for r in (s.relax_missing, s.nonlinear) if r is not None]
    if s.minimize:
        reasons.append(_minimize_reason(s))
    return "; ".join(reasons) or "no method applies"
