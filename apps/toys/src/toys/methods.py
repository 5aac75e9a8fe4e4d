"""The estimators of the toys: names, which structure each applies to, how to build it.

Score-function estimators (every structure; ``structgrad.estimators``, which
has the recursive Gumbel-max trace of all five structures, including binary
trees and matchings that ``structgrad.models.latent`` does not offer):

- ``e-reinforce``: score of the noise, no baseline;
- ``t-reinforce``: score of the trace, no baseline;
- ``e-reinforce+`` / ``t-reinforce+``: the same with the leave-one-out
  baseline over ``K`` (``--plus-samples``, 3) samples;
- ``relax``: RELAX with the conditional reparameterisation ``U | T`` and the
  default MLP critic on the utilities (``--hidden`` units), trained jointly in
  the same Adam as the logits, by the single-sample second moment.

Pathwise estimators (``k_subset`` and ``spanning_tree`` only, through
``structgrad.models.latent``): ``imle``, ``aimle`` (central difference),
``ste`` (perturb-and-MAP straight-through), ``sst`` and ``st-sst`` (stochastic
softmax trick, relaxed or straight-through). For these two structures the
perturb-and-MAP law (top-k or maximum spanning tree of ``θ + G``) *is* the
recursive Gumbel-max law, so every curve optimises the same expected loss.
They are not offered for the other three: binary trees have no pathwise method
at all (the tree does not live in the space of its scores); for arborescences
and matchings perturb-and-MAP (maximum arborescence / linear assignment of
``θ + G``) is a different distribution from the recursive one (CLE on the
exponentials / the greedy crossing matching), so their curves would optimise
a different objective than the score-function ones. ``perturbed`` and
``blackbox`` are left out as well: the perturbed optimizer returns the mean
structure (the loss of the mean is another objective) and blackbox
differentiates the noiseless MAP, which is a tie at θ = 0.
"""

from __future__ import annotations

import math
from typing import Any

from structgrad_app_common import CLIError

import structgrad.estimators as est
from structgrad.estimators.score import PRESETS as SCORE_PRESETS
from structgrad.models import LatentLayer, latent
from toys.problems import STRUCTURES, Problem

__all__ = [
    "ESTIMATORS",
    "PATHWISE",
    "PATHWISE_STRUCTURES",
    "PLUS",
    "SCORE",
    "applicable",
    "build",
    "check",
]

#: Score-function estimators: presets of ``structgrad.estimators.score.PRESETS``.
SCORE = ("e-reinforce", "t-reinforce", "e-reinforce+", "t-reinforce+")
#: The "+" estimators: K samples per estimate with the leave-one-out baseline.
PLUS = tuple(name for name in SCORE if SCORE_PRESETS[name].get("baseline") == "loo")
#: Pathwise estimators (``structgrad.models.latent`` method names).
PATHWISE = ("imle", "aimle", "ste", "sst", "st-sst")
#: Structures on which the pathwise estimators apply.
PATHWISE_STRUCTURES = ("k_subset", "spanning_tree")
#: Every estimator name, in table order.
ESTIMATORS = (*SCORE, "relax", *PATHWISE)


def applicable(structure: str) -> tuple[str, ...]:
    """The estimators that apply to ``structure``, in table order."""
    names: tuple[str, ...] = (*SCORE, "relax")
    return (*names, *PATHWISE) if structure in PATHWISE_STRUCTURES else names


def check(structure: str, estimator: str) -> None:
    """One-line errors for an unknown structure or estimator, or a pair that does not apply.

    Raises:
        CLIError: naming the problem and the valid choices.
    """
    if structure not in STRUCTURES:
        raise CLIError(f"unknown structure {structure!r}; choose one of: {', '.join(STRUCTURES)}")
    if estimator not in ESTIMATORS:
        raise CLIError(f"unknown estimator {estimator!r}; choose one of: {', '.join(ESTIMATORS)}")
    if estimator not in applicable(structure):
        raise CLIError(
            f"estimator {estimator!r} does not apply to {structure!r} (pathwise estimators "
            f"only for {' and '.join(PATHWISE_STRUCTURES)}); choose one of: "
            f"{', '.join(applicable(structure))}"
        )


#: The keyword options of :func:`build` that a run config sets (same names).
LAYER_OPTIONS = ("plus_samples", "hidden", "tau", "lam", "aimle_target")


def build(
    problem: Problem,
    estimator: str,
    *,
    plus_samples: int = 3,
    hidden: int = 32,
    tau: float = 1.0,
    lam: float = 1.0,
    aimle_target: str = "fixed",
) -> LatentLayer:
    """Build the layer of ``estimator`` for ``problem``.

    Every layer is called as ``z = layer(logits, generator=g)`` and turns the
    per-sample loss into the loss to backpropagate with ``layer.attach(loss)``.

    Args:
        problem: the toy.
        estimator: a name of :func:`applicable` for the problem's structure.
        plus_samples: ``K`` of the "+" estimators (``≥ 2``).
        hidden: hidden units of the RELAX critic.
        tau: SST temperature.
        lam: IMLE / AIMLE perturbation size λ (fixed target, gradient scaled by 1/λ).
        aimle_target: ``fixed`` (λ = ``lam``) or ``adaptive`` (λ = β‖θ‖/‖dL/dz‖,
            which is 0 at the toys' θ = 0 start: the logits never move).

    Returns:
        The layer (a ``LatentLayer`` module; the RELAX critic and AIMLE's state are in it).

    Raises:
        CLIError: a pair that does not apply, or bad options.
    """
    check(problem.structure, estimator)
    structure, options = problem.structure, dict(problem.options)
    if estimator in SCORE:
        preset = dict(SCORE_PRESETS[estimator])
        if estimator in PLUS:
            if plus_samples < 2:
                raise CLIError(f"--plus-samples must be >= 2 for {estimator}, got {plus_samples}")
            preset["samples"] = plus_samples
        return est.ScoreFunction(structure, **preset, **options)
    if estimator == "relax":
        return est.RELAX(structure, event_shape=problem.event_shape, hidden=hidden, **options)
    pathwise: dict[str, Any] = {}
    if estimator in ("sst", "st-sst"):
        if not 0 < tau < math.inf:
            raise CLIError(f"--tau must be > 0 and finite, got {tau}")
        pathwise["tau"] = tau
    if estimator in ("imle", "aimle"):
        if not 0 < lam < math.inf:
            raise CLIError(f"--lam must be > 0 and finite, got {lam}")
        if aimle_target not in ("fixed", "adaptive"):
            raise CLIError(f"--aimle-target must be fixed or adaptive, got {aimle_target!r}")
        adaptive = estimator == "aimle" and aimle_target == "adaptive"
        pathwise["target"] = est.AdaptiveTarget() if adaptive else est.Target(lam)
    if estimator == "aimle":
        pathwise["difference"] = "central"
    k = {"k": options["k"]} if "k" in options else {}
    return latent(structure, estimator, **k, **pathwise)
