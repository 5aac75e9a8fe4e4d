"""The baselines of the score-function estimators: a moving average and leave-one-out."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from structgrad.distributions.checks import check_real

__all__ = ["MovingAverage", "leave_one_out"]


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
        decay = check_real(decay, "ema_decay", lo=0.0)
        if not decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {decay}")
        self.decay = decay
        # float64 accumulation: the average of many float32 batches drifts otherwise.
        self.register_buffer("average", torch.zeros((), dtype=torch.float64))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def value(self, like: Tensor) -> Tensor:
        """The current (bias-corrected) average, a 0-dim tensor like ``like``."""
        # Tensor arithmetic on the step count, not int(steps): no host read, so a
        # compiled step traces whole. Before the first update the average is 0 and
        # the correction's 1 − decay^0 = 0 is replaced by 1 (0 / 1, not 0 / 0).
        started = self.steps > 0
        correction = 1.0 - torch.pow(self.decay, self.steps.to(torch.float64))
        corrected = torch.where(started, self.average / torch.where(started, correction, 1.0), 0.0)
        return corrected.to(dtype=like.dtype, device=like.device)

    @torch.no_grad()
    def update(self, loss: Tensor) -> None:
        """Fold the mean of ``loss`` (any shape) into the average.

        An empty ``loss`` (an empty batch) leaves the average and the step
        count unchanged.
        """
        # The mean of nothing is NaN, which would stay in the average for good.
        # numel is a shape fact (static under torch.compile): no host sync.
        if loss.numel() == 0:
            return
        mean = loss.detach().to(dtype=torch.float64, device=self.average.device).mean()
        # New buffers rather than in-place updates: torch 2.13's compiled graphs
        # (aot_eager, inductor) drop an in-place update of a 0-dim float64
        # buffer, and AOTAutograd's backward would recompute a value read
        # before the update (NVIL's residual) from the updated buffer.
        # (in the buffer's own dtype, as an in-place update keeps it after a cast)
        new = self.average * self.decay + (1.0 - self.decay) * mean
        # (dynamo refuses is_inference_mode_enabled; a compiled step never runs in it)
        if not torch.compiler.is_compiling() and torch.is_inference_mode_enabled():
            # New buffers made here would be inference tensors, which a later
            # load_state_dict cannot update (as BatchNorm, update in place).
            self.average.copy_(new)
            self.steps.add_(1)
            return
        self.average = new.to(self.average.dtype)
        self.steps = self.steps + 1

    def extra_repr(self) -> str:
        return f"decay={self.decay}"
