"""Score-function (REINFORCE) estimators through the recursive Gumbel-max trick.

A structure ``X`` is drawn from utilities ``U = θ + G`` by a recursive algorithm
with trace ``T`` (Struminsky et al. 2021, "Leveraging Recursive Gumbel-Max Trick
for Approximate Inference in Combinatorial Spaces"). ``p(X)`` is intractable in
general (many traces give one ``X``), so the score is that of

- the trace, ``∇ log p(T; θ)``: **T-REINFORCE** (``score="trace"``), the
  Rao-Blackwellisation of the next one, never of higher variance;
- the noise, ``∇ log p(U; θ)`` over the entries the algorithm reads:
  **E-REINFORCE** (``score="noise"``; the "Gumbel log-density" score of the
  NRI code in Paulus et al. 2020).

Both give ``∇ E[f(X)] = E[(f(X) − b) ∇ log p(·)]`` for a baseline ``b``
independent of the draw:

- ``None``: ``b = 0``;
- ``"ema"``: a bias-corrected moving average of the mean loss (a buffer, read
  before it is updated with the current losses, updated in training mode);
- ``"nvil"``: ``b = ema + b_ψ`` with a learned ``b_ψ`` (Mnih & Gregor 2014,
  "Neural Variational Inference and Learning in Belief Networks"; the NRI
  code's ``--use_nvil``): a scalar parameter of the layer, or an
  input-dependent ``[*batch]`` tensor from the user's network passed to
  ``attach``. It is trained by ``(f − ema − b_ψ)²``, a zero-valued term whose
  gradient only reaches ``b_ψ``;
- ``"loo"``: ``b_k = mean_{j≠k} f_j`` over ``K ≥ 2`` samples of the same row
  (Kool et al. 2019, "Buy 4 REINFORCE Samples, Get a Baseline for Free!"),
  the "+" estimators of Struminsky et al.

Gradient scale: ``attach`` returns one value per sample; its gradient w.r.t.
the logits row is that sample's ``(f − b) ∇ log p``. With ``samples=K`` the
logits are expanded, so the ``K`` gradients **add up**: average the returned
loss over dim 0 (``.mean(0)``) for the Monte Carlo mean; for ``"loo"`` that
mean is exactly the reference's per-group estimate
``1/(K−1) Σ_k (f_k − mean f) ∇ log p_k``. Reduce over the batch as you like.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..recursive import trace_log_prob, utility_log_prob
from ._baselines import MovingAverage, leave_one_out
from ._draw import Draw, ScoreLayer

__all__ = [
    "PRESETS",
    "ScoreFunction",
    "e_reinforce",
    "e_reinforce_plus",
    "reinforce",
    "t_reinforce",
    "t_reinforce_plus",
]

_SCORES = ("trace", "noise")
_BASELINES = (None, "ema", "nvil", "loo")


class ScoreFunction(ScoreLayer):
    """REINFORCE through a structure, with the trace or the noise score and a baseline.

    ``forward`` draws the structure; ``attach`` turns the per-sample loss into
    ``loss + (s − s.detach())``: the same value, and the estimator as the
    gradient w.r.t. the logits (DiCE-style; Foerster et al. 2018).

    Example::

        layer = ScoreFunction("k_subset", k=3, score="trace", baseline="loo", samples=4)
        x = layer(logits)                      # [4, *batch, n], detached 0/1
        loss = layer.attach(decoder_loss(x))   # [4, *batch], same value as decoder_loss(x)
        loss.mean().backward()

    Args:
        structure: one of :data:`RECURSIVE_STRUCTURES`.
        score: ``"trace"`` (T-REINFORCE) or ``"noise"`` (E-REINFORCE).
        baseline: ``None``, ``"ema"``, ``"nvil"`` or ``"loo"`` (see the module
            docstring).
        samples: ``None`` (one draw per row, no sample dim) or ``K`` draws
            stacked in front; ``"loo"`` needs ``K ≥ 2``.
        ema_decay: decay of the moving average used by ``"ema"`` and ``"nvil"``.
        **structure_options: ``k``, ``root``, ``lengths``, ...

    Raises:
        ValueError: unknown structure, score or baseline; ``"loo"`` with fewer
            than 2 samples; a bad ``ema_decay``.
    """

    own_options = ("score", "baseline", "ema_decay")

    def __init__(
        self,
        structure: str,
        *,
        score: str = "trace",
        baseline: str | None = None,
        samples: int | None = None,
        ema_decay: float = 0.99,
        **structure_options: Any,
    ) -> None:
        super().__init__(structure, samples=samples, structure_options=structure_options)
        if score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, got {score!r}")
        if baseline not in _BASELINES:
            raise ValueError(f"baseline must be one of {_BASELINES}, got {baseline!r}")
        if baseline == "loo" and (self.samples is None or self.samples < 2):
            raise ValueError(
                f"the leave-one-out baseline needs samples=K >= 2 draws per row, got "
                f"samples={samples!r}"
            )
        self.score = score
        self.baseline = baseline
        self.ema: MovingAverage | None = None
        self.nvil_bias: nn.Parameter | None = None
        if baseline in ("ema", "nvil"):
            self.ema = MovingAverage(ema_decay)
        if baseline == "nvil":
            self.nvil_bias = nn.Parameter(torch.zeros(()))

    def log_score(self, draw: Draw) -> Tensor:
        """``log p(T; θ)`` or ``log p(U; θ)`` of a draw, ``[*rows]``, differentiable."""
        if self.score == "trace":
            return trace_log_prob(self.traced.name, draw.trace, draw.logits, **draw.options)
        # Masked entries (θ = U = -inf) would put (-inf) − (-inf) = NaN into the
        # backward pass: give them θ = U = 0 (a constant term, no gradient).
        finite = torch.isfinite(draw.logits)
        logits = torch.where(finite, draw.logits, torch.zeros_like(draw.logits))
        utilities = torch.where(finite, draw.utilities, torch.zeros_like(draw.utilities))
        return utility_log_prob(self.traced.name, utilities, logits, **draw.options)

    def check_baseline(self, baseline: Tensor | None) -> None:
        """A baseline tensor is for ``baseline="nvil"`` only."""
        if baseline is not None and self.baseline != "nvil":
            raise ValueError(
                f"a baseline tensor is only used with baseline='nvil' (this layer has "
                f"baseline={self.baseline!r})"
            )

    def estimate(self, loss: Tensor, draw: Draw, baseline: Tensor | None) -> Tensor:
        """``loss`` plus the zero-valued surrogate ``(f − b) log p``.

        Args:
            loss: ``[*rows]`` per-sample loss of ``draw``.
            draw: the draw.
            baseline: with ``baseline="nvil"`` only: an input-dependent learned
                baseline ``[*batch]`` (broadcast over samples) from the user's
                network, used instead of the layer's scalar; it must not depend
                on the draw.

        Returns:
            ``loss`` (same value) whose gradient w.r.t. the logits is the
            estimator, plus the baseline's training gradient for ``"nvil"``.
        """
        f = loss.detach()
        train: Tensor | None = None
        if self.baseline == "loo":
            signal = leave_one_out(f)
        elif self.ema is not None:
            signal = f - self.ema.value(f)
            if self.baseline == "nvil":
                b = self._learned(baseline, f)
                # The score term sees the baseline as a constant; the squared
                # residual (zero-valued below) trains it and nothing upstream of f.
                train = (signal - b) ** 2
                signal = signal - b.detach()
            if self.training:
                self.ema.update(f)
        else:
            signal = f
        log_p = self.log_score(draw)
        # signal · (log p − log p.detach()) is exactly 0 in value, even where
        # signal · log p would overflow, and its gradient is signal · ∇ log p.
        surrogate = signal.detach() * (log_p - log_p.detach())
        if train is not None:
            surrogate = surrogate + (train - train.detach())
        return loss + surrogate

    def _learned(self, baseline: Tensor | None, f: Tensor) -> Tensor:
        if baseline is None:
            assert self.nvil_bias is not None
            return self.nvil_bias.to(f.dtype)
        if not isinstance(baseline, Tensor):
            raise ValueError(f"baseline must be a torch.Tensor, got {type(baseline).__name__}")
        try:
            shape = torch.broadcast_shapes(baseline.shape, f.shape)
        except RuntimeError:
            shape = None
        if shape != f.shape:
            raise ValueError(
                f"baseline of shape {tuple(baseline.shape)} does not broadcast to the "
                f"per-sample loss shape {tuple(f.shape)}"
            )
        return baseline.to(f.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, score={self.score!r}, baseline={self.baseline!r}"


#: Method name → the :class:`ScoreFunction` configuration it stands for
#: (score kind × baseline; user options override).
PRESETS: dict[str, dict[str, Any]] = {
    # The reference's REINFORCE: log-density of the Gumbel utilities U, EMA baseline.
    "reinforce": {"score": "noise", "baseline": "ema"},
    # NVIL: a learned, input-dependent baseline on top of the EMA.
    "nvil": {"score": "noise", "baseline": "nvil"},
    # Struminsky et al.'s estimators: score of the noise (E) or of the trace (T),
    # without a baseline or with the leave-one-out baseline over K samples ("+").
    "e-reinforce": {"score": "noise"},
    "t-reinforce": {"score": "trace"},
    "e-reinforce+": {"score": "noise", "baseline": "loo", "samples": 3},
    "t-reinforce+": {"score": "trace", "baseline": "loo", "samples": 3},
}


def _preset(name: str) -> Any:
    def build(structure: str, **options: Any) -> ScoreFunction:
        layer = ScoreFunction(structure, **{**PRESETS[name], **options})
        layer.method = name
        return layer

    config = ", ".join(f"{k}={v!r}" for k, v in PRESETS[name].items())
    build.__name__ = build.__qualname__ = name.replace("-", "_").replace("+", "_plus")
    build.__doc__ = f"A :class:`ScoreFunction` with {config} (options override); see its docs."
    return build


reinforce = _preset("reinforce")
e_reinforce = _preset("e-reinforce")
t_reinforce = _preset("t-reinforce")
e_reinforce_plus = _preset("e-reinforce+")
t_reinforce_plus = _preset("t-reinforce+")
