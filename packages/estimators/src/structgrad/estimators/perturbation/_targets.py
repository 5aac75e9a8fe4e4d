"""Target distributions of IMLE / AIMLE: where the backward pass moves the scores.

The target is ``θ' = αθ − λ·dL/dz`` (maximisation form). A fixed
:class:`Target` keeps λ constant; an :class:`AdaptiveTarget` sets
``λ = β‖θ‖/‖dL/dz‖`` and adapts β so that the estimated gradients have a target
number of non-zero entries. Both are ``nn.Module``s so that their state goes in
the ``state_dict()`` of the layer that holds them.

About the ``1/λ`` scaling. The finite difference ``MAP(θ+ε) − MAP(θ'+ε)`` has
the magnitude of a solution, not of a gradient; dividing it by λ makes it a
derivative estimate whose size does not depend on λ. torch-imle (uclnlp) never
divides; torch-adaptive-imle (EdinburghNLP) divides only when asked
(``do_gradient_scaling``) with a fixed target and always with its adaptive one.
Here ``scale`` is an explicit switch on both targets, on by default;
``Target(lam, scale=False)`` gives torch-imle's estimate (with α = 1,
``tau_target = tau`` and one sample: torch-imle averages its samples).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from structgrad.distributions.checks import check_flag, check_real

__all__ = ["AdaptiveTarget", "Target"]


def _norms(x: Tensor, event_ndim: int) -> Tensor:
    """Euclidean norm over the last ``event_ndim`` dims, kept as size-1 dims."""
    dims = tuple(range(x.ndim - event_ndim, x.ndim))
    if not x.numel():
        return torch.linalg.vector_norm(x, dim=dims, keepdim=True)
    # Scaled by the largest entry: the squares of 1e30 (float32) or 1e200
    # (float64) would overflow to inf.
    top = x.abs().amax(dim=dims, keepdim=True)
    top = torch.where(top > 0, top, 1.0)
    return top * torch.linalg.vector_norm(x / top, dim=dims, keepdim=True)


class Target(nn.Module):
    """Fixed target ``θ' = αθ − λ·dL/dz`` (the IMLE "perturbation-based" target).

    Args:
        lam: perturbation size λ ≥ 0 (``beta`` in torch-imle's ``TargetDistribution``).
        alpha: weight α of the current scores (1: finite difference around θ;
            0: target from the loss gradient alone).
        scale: divide the estimate by λ (see the module docstring).

    References:
        Niepert, Minervini, Franceschi, "Implicit MLE", NeurIPS 2021,
        https://arxiv.org/abs/2106.01798 (§3, target distributions).
    """

    def __init__(self, lam: float = 1.0, *, alpha: float = 1.0, scale: bool = True) -> None:
        super().__init__()
        self.lam_value = check_real(lam, "lam", lo=0.0, strict=True)
        self.alpha = check_real(alpha, "alpha")
        self.scale = check_flag(scale, "scale")

    def lam(self, theta: Tensor, dy: Tensor, event_ndim: int) -> Tensor | float:
        """Perturbation size λ, broadcastable against ``dy``.

        Args:
            theta: ``[*batch, *event]`` scores.
            dy: ``[S, M, *batch, *event]`` upstream gradients.
            event_ndim: number of event dims.

        Returns:
            λ, here the constant as a Python float.
        """
        return self.lam_value

    def update(self, g: Tensor, event_ndim: int) -> None:
        """Observe the unscaled per-sample estimates ``[S, *batch, *event]`` (no-op here)."""

    def extra_repr(self) -> str:
        return f"lam={self.lam_value}, alpha={self.alpha}, scale={self.scale}"


class AdaptiveTarget(Target):
    """Adaptive target of AIMLE: λ = β·‖θ‖/‖dL/dz‖ with β tuned online.

    At every backward pass (in training mode) the layer reports its per-sample
    gradient estimates ``g``; the running mean of their number of non-zero
    entries, ``ν ← d·ν + (1−d)·mean nnz(g)``, drives β towards ``target_nnz``:
    ``Δ ← step·sign(target_nnz − ν) + momentum·Δ``, ``β ← max(β + Δ, 0)``
    (``sign`` taken as −1 at equality). β, ν and Δ are buffers, saved with
    ``state_dict()``; ``eval()`` freezes them.

    Norms are taken per problem instance and per sample (over the event dims),
    so λ does not depend on the batch's composition or size; torch-adaptive-imle
    takes them over the whole batch tensor and rescales with a λ that is
    ``√S`` smaller than the one it perturbs with when it draws ``S > 1``
    samples. Here the same λ is used for the perturbation and the ``1/λ``
    scaling; an instance with ``dL/dz = 0`` gets λ = 0 and a zero gradient.

    Args:
        beta: initial β ≥ 0 (0 starts with no perturbation, as in the AIMLE runs).
        alpha: weight α of the current scores in the target.
        step: increment of β per backward pass.
        momentum: momentum of the β increments.
        decay: decay ``d`` of the running mean of non-zero counts.
        target_nnz: target mean number of non-zero gradient entries per sample.
        initial_nnz: initial running mean ν.
        scale: divide the estimate by λ (on, as in the reference adaptive target).

    References:
        Minervini, Franceschi, Niepert, "Adaptive Perturbation-Based Gradient
        Estimation for Discrete Latent Variable Models", AAAI 2023,
        https://arxiv.org/abs/2209.04862 (§4).
    """

    beta: Tensor
    nnz: Tensor
    delta: Tensor

    def __init__(
        self,
        beta: float = 1.0,
        *,
        alpha: float = 1.0,
        step: float = 1e-4,
        momentum: float = 0.0,
        decay: float = 0.9,
        target_nnz: float = 1.0,
        initial_nnz: float = 1.0,
        scale: bool = True,
    ) -> None:
        # (λ is computed per call; the fixed λ of the base class is not used)
        super().__init__(1.0, alpha=alpha, scale=scale)
        beta = check_real(beta, "beta", lo=0.0)
        self.step = check_real(step, "step", lo=0.0)
        self.momentum = check_real(momentum, "momentum", lo=0.0)
        self.decay = check_real(decay, "decay", lo=0.0)
        if self.decay >= 1 or self.momentum >= 1:
            raise ValueError(f"decay and momentum must be in [0, 1), got {decay}, {momentum}")
        self.target_nnz = check_real(target_nnz, "target_nnz", lo=0.0)
        initial_nnz = check_real(initial_nnz, "initial_nnz", lo=0.0)
        f64 = torch.float64
        self.register_buffer("beta", torch.tensor(float(beta), dtype=f64))
        self.register_buffer("nnz", torch.tensor(float(initial_nnz), dtype=f64))
        self.register_buffer("delta", torch.tensor(0.0, dtype=f64))

    def lam(self, theta: Tensor, dy: Tensor, event_ndim: int) -> Tensor:
        """λ = β‖θ_b‖/‖dy_{s,b}‖ per instance b and sample s, 0 where ``dy = 0``.

        Args:
            theta: ``[*batch, *event]`` scores.
            dy: ``[S, M, *batch, *event]`` upstream gradients.
            event_ndim: number of event dims.

        Returns:
            λ ``[S, M, *batch, 1, ..., 1]`` in ``dy``'s dtype.
        """
        # -inf entries (forbidden choices) do not count in the size of θ.
        finite = torch.where(torch.isfinite(theta), theta, 0.0)
        num = _norms(finite, event_ndim) * self.beta.to(dy.dtype)
        den = _norms(dy, event_ndim)
        # where ‖dy‖ = 0 the estimate is 0 whatever λ is; avoid 0/0. A ratio
        # beyond the dtype's range is capped at its largest value (not inf).
        info = torch.finfo(dy.dtype)
        lam = (num / den.clamp_min(info.tiny)).clamp(max=info.max)
        return torch.where(den > 0, lam, 0.0)

    @torch.no_grad()
    def update(self, g: Tensor, event_ndim: int) -> None:
        """Update β from the unscaled estimates ``g`` ``[S, *batch, *event]``.

        Does nothing in eval mode or for an empty batch (no estimate to count:
        the state must not decay towards 0). All operations stay on the
        buffers' device (no host synchronisation).
        """
        # numel is a shape fact (static under torch.compile), not a value.
        if not self.training or g.numel() == 0:
            return
        event_size = math.prod(g.shape[g.ndim - event_ndim :])
        n_problems = max(1, g.numel() // max(1, event_size))
        mean_nnz = torch.count_nonzero(g).to(self.nnz) / n_problems
        self.nnz.mul_(self.decay).add_(mean_nnz, alpha=1.0 - self.decay)
        up = torch.where(self.nnz < self.target_nnz, 1.0, -1.0).to(self.delta)
        self.delta.mul_(self.momentum).add_(up, alpha=self.step)
        self.beta.add_(self.delta).clamp_(min=0.0)

    def extra_repr(self) -> str:
        return (
            f"beta={float(self.beta):.4g}, alpha={self.alpha}, step={self.step}, "
            f"momentum={self.momentum}, target_nnz={self.target_nnz}, scale={self.scale}"
        )
