"""What score-function layers share: drawing with traces, the pending draw, baselines.

A score-function layer draws structures with :func:`sample_with_trace` in
``forward`` and keeps what its ``attach`` needs (the logits the draw came from,
the trace, the utilities) until the per-sample loss arrives.

Shapes: logits ``[*batch, *event]``; with ``samples=None`` one draw per row,
per-sample loss ``[*batch]``; with ``samples=K`` the logits are expanded to
``[K, *batch, *event]`` (so their gradients add up over ``K``, as for any
``expand``) and the per-sample loss is ``[K, *batch]``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from structgrad.distributions import Structure

from ._recursive import sample_with_trace
from ._rg_prepare import RECURSIVE_STRUCTURES, traced

__all__ = ["Draw", "MovingAverage", "ScoreLayer", "leave_one_out"]


class Draw(NamedTuple):
    """A draw waiting for its loss.

    Attributes:
        logits: ``[*rows, *event]`` scores the draw came from, still attached
            to the caller's graph (expanded to ``K`` samples in front if asked).
        trace: the structure's trace, batch shape ``rows``.
        utilities: ``[*rows, *event]`` detached utilities ``U = θ + G``.
        options: the structure options of the draw.
        rows: ``[K, *batch]`` or ``[*batch]``: the per-sample loss shape.
    """

    logits: Tensor
    trace: Any
    utilities: Tensor
    options: dict[str, Any]
    rows: torch.Size


def leave_one_out(loss: Tensor) -> Tensor:
    """``loss_k − mean_{j≠k} loss_j`` over dim 0 (Kool et al. 2019, "Buy 4 REINFORCE samples").

    Equal to ``K/(K−1) (loss_k − mean_j loss_j)``: averaged over the ``K``
    samples, ``Σ_k (·) ∇log p_k / K`` is the reference's
    ``1/(K−1) Σ_k (loss_k − mean loss) ∇log p_k``.

    Args:
        loss: ``[K, *batch]`` detached per-sample losses, ``K ≥ 2``.

    Returns:
        ``[K, *batch]`` centred learning signals.
    """
    k = loss.shape[0]
    # Sum minus self avoids building the K x K matrix of "others".
    return loss - (loss.sum(0, keepdim=True) - loss) / (k - 1)


class MovingAverage(nn.Module):
    """Bias-corrected exponential moving average of the mean loss (buffers).

    ``value`` is ``0`` before the first update, then
    ``avg_t / (1 − decay^t)`` (the Adam correction, so the first batches are
    not pulled towards 0). It is read before it is updated with the current
    losses, so a baseline built from it is independent of the current draw.

    Args:
        decay: weight of the past, ``0 ≤ decay < 1``.
    """

    average: Tensor
    steps: Tensor

    def __init__(self, decay: float) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        # float64 accumulation: the average of many float32 batches drifts otherwise.
        self.register_buffer("average", torch.zeros((), dtype=torch.float64))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def value(self, like: Tensor) -> Tensor:
        """The current (bias-corrected) average, a 0-dim tensor like ``like``."""
        steps = int(self.steps)
        if steps == 0:
            return torch.zeros((), dtype=like.dtype, device=like.device)
        corrected = self.average / (1.0 - self.decay**steps)
        assert isinstance(corrected, Tensor)
        return corrected.to(dtype=like.dtype, device=like.device)

    @torch.no_grad()
    def update(self, loss: Tensor) -> None:
        """Fold the mean of ``loss`` (any shape) into the average."""
        mean = loss.detach().to(dtype=torch.float64, device=self.average.device).mean()
        self.average.mul_(self.decay).add_((1.0 - self.decay) * mean)
        self.steps.add_(1)

    def extra_repr(self) -> str:
        return f"decay={self.decay}"


class ScoreLayer(nn.Module):
    """Base of the score-function layers: structure, samples, draws, the pending draw.

    Args:
        structure: one of :data:`RECURSIVE_STRUCTURES`.
        samples: ``None`` for one draw per row without a sample dim, or ``K``.
        structure_options: ``k``, ``root``, ... (``lengths`` may also be given
            per call to ``forward``).
    """

    def __init__(
        self, structure: str, *, samples: int | None, structure_options: dict[str, Any]
    ) -> None:
        super().__init__()
        if structure not in RECURSIVE_STRUCTURES:
            raise ValueError(
                f"no score-function estimator for structure {structure!r}: it needs a "
                f"tractable trace; supported: {', '.join(RECURSIVE_STRUCTURES)}"
            )
        self.traced: Structure = traced(structure)
        unknown = set(structure_options) - set(self.traced.option_names)
        if unknown:
            raise ValueError(
                f"{structure} takes options {self.traced.option_names or '()'}, got "
                f"{sorted(unknown)}"
            )
        self.structure = structure
        self.structure_options = dict(structure_options)
        if samples is not None and (
            isinstance(samples, bool) or int(samples) != samples or samples < 1
        ):
            raise ValueError(f"samples must be a positive integer or None, got {samples!r}")
        self.samples = None if samples is None else int(samples)
        self._pending: Draw | None = None

    def draw(
        self, logits: Tensor, generator: torch.Generator | None, options: dict[str, Any]
    ) -> tuple[Tensor, Draw]:
        """Draw the structure(s); returns the detached sample and the pending draw."""
        if not isinstance(logits, Tensor):
            raise ValueError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
        # Per-call options (lengths [*batch]) broadcast over the K samples in front.
        opts = {**self.structure_options, **options}
        ev = self.traced.event_dim
        if self.samples is not None:
            logits = logits.expand(self.samples, *logits.shape)
        drawn = sample_with_trace(self.structure, logits, generator=generator, **opts)
        rows = logits.shape[: logits.ndim - ev]
        return drawn.sample, Draw(logits, drawn.trace, drawn.utilities, opts, rows)

    def take(self, loss: Any) -> tuple[Draw, Tensor]:
        """The pending draw (consumed) and the per-sample loss, checked against it."""
        draw = self._pending
        if draw is None:
            raise ValueError(
                f"{type(self).__name__}.attach needs a draw: call the layer on the logits "
                "first (each draw can be attached once)"
            )
        if not isinstance(loss, Tensor) or not loss.is_floating_point():
            raise ValueError(f"loss must be a floating torch.Tensor, got {type(loss).__name__}")
        if loss.shape != draw.rows:
            want = "[K, *batch]" if self.samples is not None else "[*batch]"
            raise ValueError(
                f"attach takes the per-sample loss of shape {want} = {tuple(draw.rows)}, got "
                f"{tuple(loss.shape)}: reduce over the event dims only, not over samples or batch"
            )
        self._pending = None
        return draw, loss

    def extra_repr(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.structure_options.items())
        return f"structure={self.structure!r}, samples={self.samples}{options}"
