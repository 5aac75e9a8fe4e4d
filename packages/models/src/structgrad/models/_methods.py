"""Which methods a structure has, and why the others are missing, read off the Structure.

A method family is offered according to the Structure's attributes:

- the relaxation, if it is ``relaxable``: ``sst`` / ``st-sst``, except for the
  categorical structure, whose relaxation is the softmax, so that its SST is
  Gumbel-softmax (``gumbel-softmax`` / ``st``);
- the solver-wrapping estimators (:data:`SOLVER_METHODS`) if its MAP is
  ``argmax_z <z, θ>`` (``nonlinear`` is ``None``) over logits it maximises
  (``minimize`` is false: grid-path costs are left to
  :mod:`structgrad.estimators`);
- the score-function methods if ``structgrad.estimators`` has its recursive
  Gumbel-max trace (:func:`._score.has_trace`);
- ``indep`` for the pseudo-structure ``edges`` only.
"""

from __future__ import annotations

from structgrad.distributions import Structure

from ._pathwise import ESTIMATORS
from ._score import SCORE_METHODS, has_trace
from ._structure import EDGES, IndependentEdges, LatentStructure

__all__ = [
    "GUMBEL_SOFTMAX_METHODS",
    "INDEP_METHODS",
    "SOLVER_METHODS",
    "SST_METHODS",
    "methods_of",
    "no_methods",
    "why_missing",
]

SST_METHODS = ("sst", "st-sst")
GUMBEL_SOFTMAX_METHODS = ("gumbel-softmax", "st")
SOLVER_METHODS = tuple(ESTIMATORS)  # imle, aimle, ste, blackbox, perturbed
INDEP_METHODS = ("indep",)


def _softmax_relaxed(s: Structure) -> bool:
    """Whether the relaxation of ``s`` is the softmax (its SST is Gumbel-softmax)."""
    return s.relaxation == "softmax"


def methods_of(s: LatentStructure) -> tuple[str, ...]:
    """The method names :func:`~structgrad.models.latent` accepts for ``s`` (may be empty)."""
    if isinstance(s, IndependentEdges):
        return INDEP_METHODS
    relaxed: tuple[str, ...] = ()
    if s.relaxable:
        relaxed = GUMBEL_SOFTMAX_METHODS if _softmax_relaxed(s) else SST_METHODS
    solver = SOLVER_METHODS if s.nonlinear is None and not s.minimize else ()
    score = SCORE_METHODS if has_trace(s) else ()
    return (*relaxed, *solver, *score)


def _reason(s: Structure, text: str) -> str:
    """A Structure's reason string without its leading ``"<name>: "``."""
    return text.removeprefix(f"{s.name}: ")


def _minimize_reason(s: Structure) -> str:
    return (
        "its scores are costs and its MAP minimises them, while latent layers take "
        f"logits to maximise; use structgrad.estimators.imle({s.name!r}) or aimle directly"
    )


def _score_hint(s: Structure) -> str:
    if not has_trace(s):
        return ""
    return f"; the score-function methods apply ({', '.join(SCORE_METHODS)})"


def why_missing(s: LatentStructure, method: str) -> str:
    """Why ``method`` is not offered for ``s`` (``""`` for an unknown method name)."""
    if isinstance(s, IndependentEdges):
        return "independent edges are trained with 'indep' (binary concrete per edge)"
    if method in INDEP_METHODS:
        return f"'indep' is the method of the structure {EDGES.name!r} (independent edges)"
    if method in SST_METHODS:
        if s.relax_missing is not None:
            return _reason(s, s.relax_missing) + _score_hint(s)
        return (
            f"the {s.name} SST is Gumbel-softmax: use 'gumbel-softmax' (or 'st' for a "
            "one-hot forward)"
        )
    if method in GUMBEL_SOFTMAX_METHODS:
        alternative = (
            "use 'sst' (or 'st-sst') for a structured relaxation"
            if s.relax_missing is None
            else _reason(s, s.relax_missing)
        )
        return f"Gumbel-softmax relaxes categorical variables only; {alternative}"
    if method in SOLVER_METHODS:
        if s.nonlinear is not None:
            return _reason(s, s.nonlinear) + _score_hint(s)
        return _minimize_reason(s)
    if method in SCORE_METHODS:
        return (
            "the score-function estimators need its recursive Gumbel-max trace, which "
            "structgrad.estimators does not have (see RECURSIVE_STRUCTURES)"
        )
    return ""


def no_methods(s: Structure) -> str:
    """Why ``s`` has no latent-layer method at all (for :func:`methods_of` empty)."""
    reasons = [_reason(s, r) for r in (s.relax_missing, s.nonlinear) if r is not None]
    if s.minimize:
        reasons.append(_minimize_reason(s))
    return "; ".join(reasons) or "no method applies"
