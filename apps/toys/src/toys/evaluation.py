"""One training step and one evaluation of a toy (the reference protocol, §5.1).

Training: the logits θ are expanded to ``num_samples`` rows, each row gets one
estimate (for the "+" estimators one estimate uses the layer's ``K`` samples),
and the estimates are averaged. The backward pass runs on the *sum* of the
per-sample losses (so IMLE's λ sees ``dL/dz`` of one sample, not ``1/S`` of
it) and every gradient is then divided by the number of samples: the mean.

Evaluation: the MC estimate of the expected loss from ``num_mc · K`` hard
samples of the recursive Gumbel-max law of θ, and the gradient std: the
per-parameter standard deviation of ``num_mc`` single estimates (as used in
training with ``num_samples = 1``), averaged over all entries of θ.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

import structgrad.estimators as est
from structgrad.models import LatentLayer
from toys.problems import Problem

__all__ = ["EvalResult", "evaluate", "samples_per_estimate", "train_step"]


def samples_per_estimate(layer: nn.Module) -> int:
    """``K`` for the leave-one-out layers, 1 otherwise."""
    k = getattr(layer, "samples", None)
    return int(k) if isinstance(k, int) else 1


def _estimate(
    layer: LatentLayer, problem: Problem, rows: Tensor, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Draw, score and attach: ``(attached loss, raw loss)``, both ``[K?, rows]``."""
    z = layer(rows, generator=generator)
    loss = problem.loss(z)
    return layer.attach(loss), loss.detach()


def train_step(
    theta: Tensor,
    layer: LatentLayer,
    problem: Problem,
    optimizer: torch.optim.Optimizer,
    *,
    num_samples: int,
    generator: torch.Generator,
) -> float:
    """One Adam step on θ (and the layer's parameters, e.g. a RELAX critic).

    Args:
        theta: ``[*event]`` logits (a leaf with ``requires_grad``).
        layer: the estimator's layer.
        problem: the toy.
        optimizer: the optimiser of θ and the layer's parameters.
        num_samples: independent estimates averaged.
        generator: the training noise stream.

    Returns:
        The mean loss of the step's samples (a training-time estimate).
    """
    rows = theta.expand(num_samples, *theta.shape)
    attached, loss = _estimate(layer, problem, rows, generator)
    optimizer.zero_grad(set_to_none=True)
    attached.sum().backward()
    n = attached.numel()
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                p.grad.div_(n)
    optimizer.step()
    return float(loss.mean())


@dataclass(frozen=True)
class EvalResult:
    """One evaluation.

    Attributes:
        mean_loss: MC estimate of the expected loss.
        grad_std: per-parameter std of single estimates, averaged over θ.
        grad_norm: norm of the mean of the single estimates.
    """

    mean_loss: float
    grad_std: float
    grad_norm: float


def evaluate(
    theta: Tensor,
    layer: LatentLayer,
    problem: Problem,
    *,
    num_mc: int,
    generator: torch.Generator,
) -> EvalResult:
    """Expected loss and gradient spread at θ; the layer's state is left untouched.

    Args:
        theta: ``[*event]`` logits.
        layer: the estimator's layer (its state dict is restored afterwards;
            its parameters get no gradient).
        problem: the toy.
        num_mc: number of single estimates (``num_mc · K`` samples for the loss).
        generator: the evaluation noise stream (kept apart from training's, so a
            resumed run draws the same training noise as an uninterrupted one).
    """
    k = samples_per_estimate(layer)
    base = theta.detach()
    with torch.no_grad():
        draw = est.sample_with_trace(
            problem.structure,
            base.expand(num_mc * k, *base.shape),
            generator=generator,
            **problem.options,
        )
        mean_loss = float(problem.loss(draw.sample).mean())
    # The probe may move state (AIMLE's β, EMA baselines): put it back afterwards.
    state = copy.deepcopy(layer.state_dict())
    rows = base.expand(num_mc, *base.shape).clone().requires_grad_(True)
    attached, _ = _estimate(layer, problem, rows, generator)
    (grads,) = torch.autograd.grad(attached.sum(), rows)
    layer.load_state_dict(state)
    grads = grads / k  # the K samples of one "+" estimate add up
    return EvalResult(
        mean_loss=mean_loss,
        grad_std=float(grads.std(0).mean()),
        grad_norm=float(grads.mean(0).norm()),
    )
