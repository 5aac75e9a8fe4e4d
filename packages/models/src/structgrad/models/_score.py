"""Score-function latent layers: REINFORCE (EMA / NVIL baselines), T-REINFORCE+, RELAX.

The estimators live in :mod:`structgrad.estimators` (``ScoreFunction``,
``RELAX``); this module only names the configurations and adapts them to the
:class:`LatentLayer` interface. The methods are offered for the structures
whose recursive Gumbel-max trace the estimators support.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from structgrad.distributions import Structure
from structgrad.estimators import RELAX, ScoreFunction

from ._layer import LatentLayer

__all__ = ["SCORE_DEFAULTS", "SCORE_METHODS", "ScoreLayer", "has_trace"]

#: Method name → the ``ScoreFunction`` options it stands for (user options override).
SCORE_DEFAULTS: dict[str, dict[str, Any]] = {
    # The reference's REINFORCE: log-density of the Gumbel utilities U, EMA baseline.
    "reinforce": {"score": "noise", "baseline": "ema"},
    # NVIL: the same score with a learned, input-dependent baseline passed to attach.
    "nvil": {"score": "noise", "baseline": "nvil"},
    # Struminsky et al.'s estimators: score of the noise (E) or of the trace (T),
    # without a baseline or with the leave-one-out baseline over K samples ("+").
    "e-reinforce": {"score": "noise"},
    "t-reinforce": {"score": "trace"},
    "e-reinforce+": {"score": "noise", "baseline": "loo", "samples": 3},
    "t-reinforce+": {"score": "trace", "baseline": "loo", "samples": 3},
}

#: The score-function methods, offered for every structure with a recursive
#: Gumbel-max trace (``structgrad.estimators.RECURSIVE_STRUCTURES``; see :func:`has_trace`).
SCORE_METHODS: tuple[str, ...] = (*SCORE_DEFAULTS, "relax")


def has_trace(structure: Structure) -> bool:
    """Whether the score-function estimators have ``structure``'s recursive Gumbel-max trace."""
    return structure.has_trace


class ScoreLayer(LatentLayer):
    """A score-function estimator as a latent layer.

    The sample carries no gradient; :meth:`attach` adds the zero-valued
    surrogate whose gradient is the estimator's (DiCE-style). With
    ``samples=K`` the sample is ``[K, *batch, *event]`` and the per-sample loss
    ``[K, *batch]``. Options go to ``structgrad.estimators.ScoreFunction`` (or
    ``RELAX`` for ``"relax"``) over :data:`SCORE_DEFAULTS`.

    Args:
        structure: a structure with a recursive Gumbel-max trace (:func:`has_trace`).
        method: a key of :data:`SCORE_DEFAULTS` or ``relax``.
        **options: estimator options (``samples``, ``baseline``, ``score``,
            ``ema_decay``, ``k``, ...); ``relax`` needs ``event_shape`` (the
            default critic's input, e.g. ``(n, n)``) or a ``critic``.

    References:
        Williams, "Simple statistical gradient-following algorithms", 1992.
        Mnih and Gregor, "Neural Variational Inference and Learning in Belief
        Networks", ICML 2014, https://arxiv.org/abs/1402.0030.
        Struminsky, Gadetsky, Rakitin, Karpushkin and Vetrov, "Leveraging
        Recursive Gumbel-Max Trick for Approximate Inference in Combinatorial
        Spaces", NeurIPS 2021, https://arxiv.org/abs/2110.15072.
        Grathwohl et al., "Backpropagation through the Void", ICLR 2018,
        https://arxiv.org/abs/1711.00123.
    """

    pathwise = False

    structure: Structure

    def __init__(self, structure: Structure, method: str, **options: Any) -> None:
        hard_options = {k: v for k, v in options.items() if k in structure.option_names}
        super().__init__(structure, method, **hard_options)
        # Any: the estimator's attach is not visible through nn.Module's __getattr__.
        self.estimator: Any
        if method == "relax":
            self.estimator = RELAX(structure.name, **options)
        else:
            self.estimator = ScoreFunction(structure.name, **{**SCORE_DEFAULTS[method], **options})

    def forward(self, logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """A detached sample ``[*batch, *event]`` (``[K, *batch, *event]`` with ``samples=K``)."""
        out: Tensor = self.estimator(logits, generator=generator)
        # The sample's event dims: a binary tree's [n] scores give an [n, n] adjacency.
        event = logits.shape[logits.ndim - self.structure.event_dim :]
        self._rows = out.shape[: out.ndim - len(self.structure.solution_shape(event))]
        return out

    def attach(self, loss: Tensor, *, baseline: Tensor | None = None) -> Tensor:
        """``loss`` plus the score-function surrogate (zero-valued).

        Args:
            loss: per-sample loss ``[*batch]`` (``[K, *batch]`` with ``samples=K``)
                of the last sample; it must not be reduced over the batch. A
                loss over a prefix of the sample's rows (e.g. ``[B]`` for
                categorical edge types ``[B, E, C]``) is shared by the rows it
                covers: their structures are independent parts of one sample.
            baseline: learned baseline ``[*batch]`` for ``"nvil"`` (e.g. the NRI
                encoder's baseline head); its regression loss is included.

        Returns:
            The loss to backpropagate, shaped like ``loss``.
        """
        rows = getattr(self, "_rows", loss.shape)
        extra = len(rows) - loss.ndim
        if extra <= 0 or tuple(rows[: loss.ndim]) != tuple(loss.shape):
            return self._attach(loss, baseline)

        # Several independent rows per loss (e.g. one categorical per edge of a
        # graph): log p of the graph is the sum over its rows, so every row gets
        # the graph's loss; the zero-valued surrogates are summed back per graph.
        def spread(t: Tensor) -> Tensor:
            return t.reshape(*t.shape, *([1] * extra)).expand(rows)

        wide = spread(loss)
        out = self._attach(wide, None if baseline is None else spread(baseline))
        return (out - wide).flatten(loss.ndim).sum(-1) + loss

    def _attach(self, loss: Tensor, baseline: Tensor | None) -> Tensor:
        if self.method == "relax":
            if baseline is not None:
                raise ValueError("'relax' takes no baseline: its critic is the control variate")
            relaxed: Tensor = self.estimator.attach(loss)
            return relaxed
        out: Tensor = self.estimator.attach(loss, baseline=baseline)
        return out
