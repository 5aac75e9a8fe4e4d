"""Conformance suite for gradient estimators: bias and variance against an exact gradient.

An estimator is given as a callable ``draw(logits, n_draws, generator)`` returning
``[n_draws, *logits.shape]`` independent single-draw estimates of ``∇_θ E[f(X)]``
(the caller wraps its estimator, structure and ``f``). :func:`evaluate` draws them in
chunks and summarises them in a :class:`Report`; :func:`assert_unbiased` fails when
some entry's mean is too many standard errors away from the exact gradient (from
:func:`structgrad.testing.traces.exact_gradient`, say).

torch is imported inside the functions, so this module imports without it.

References:
    Mohamed, Rosca, Figurnov, Mnih, "Monte Carlo Gradient Estimation in Machine
    Learning", JMLR 2020 (the estimators and how they are compared).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Report", "assert_unbiased", "evaluate"]

Draw = Callable[[Any, int, Any], Any]


@dataclass(frozen=True)
class Report:
    """Summary of ``n_draws`` single-draw gradient estimates (tensors are float64, CPU).

    Attributes:
        mean: ``[*shape]`` mean of the draws.
        stderr: ``[*shape]`` standard error of the mean, ``sqrt(var / n_draws)``.
        exact: ``[*shape]`` the exact gradient.
        z: ``[*shape]`` ``(mean - exact) / sqrt(stderr² + tolerance²)``: the
            Monte Carlo error and the draws' rounding together (an entry that is
            exactly zero in every draw and in ``exact`` gets 0).
        cosine: cosine similarity of ``mean`` and ``exact`` (1 if both are zero,
            0 if only one is).
        relative_bias: ``‖mean − exact‖ / ‖exact‖`` (includes Monte Carlo error;
            ``inf`` if the exact gradient is zero and the mean is not).
        total_variance: ``Σ_entries Var[single draw]``, the usual variance figure.
        max_z: ``max |z|``.
        worst: the entry (index tuple) of ``max_z``.
        tolerance: ``[*shape]`` the draws' rounding per entry,
            ``eps^(3/4) · max(1, |exact|, rms)`` with ``rms`` the root mean square
            of the entry's draws and ``eps`` the machine epsilon of their dtype
            (6.5e-6 for float32, 2e-12 for float64: above accumulated rounding,
            below any bias worth a test).
        n_draws: number of draws.
        seconds_per_draw: wall time inside ``draw`` divided by ``n_draws``.
    """

    mean: Any
    stderr: Any
    exact: Any
    z: Any
    cosine: float
    relative_bias: float
    total_variance: float
    max_z: float
    worst: tuple[int, ...]
    tolerance: Any
    n_draws: int
    seconds_per_draw: float

    def as_row(self) -> dict[str, float | int]:
        """One row of a markdown results table (column name -> value)."""
        return {
            "cosine": self.cosine,
            "rel. bias": self.relative_bias,
            "total var.": self.total_variance,
            "max |z|": self.max_z,
            "draws": self.n_draws,
            "ms/draw": 1e3 * self.seconds_per_draw,
        }


def evaluate(
    draw: Draw,
    logits: Any,
    exact_grad: Any,
    *,
    n_draws: int = 10_000,
    generator: Any = None,
    chunk: int = 1_000,
) -> Report:
    """Draw ``n_draws`` gradient estimates in chunks and compare them with ``exact_grad``.

    Args:
        draw: ``draw(logits, m, generator) -> [m, *logits.shape]`` independent estimates.
        logits: torch tensor ``[*shape]``, passed to ``draw`` as is.
        exact_grad: ``[*shape]`` the exact gradient (torch or array-like).
        n_draws: total number of draws (``>= 2``).
        generator: a ``torch.Generator``, passed to ``draw``.
        chunk: draws per call to ``draw``.

    Returns:
        The :class:`Report`.

    Raises:
        ValueError: on ``n_draws < 2``, ``chunk < 1``, draws of the wrong shape or
            non-finite draws.
    """
    import torch

    if n_draws < 2 or chunk < 1:
        raise ValueError(f"need n_draws >= 2 and chunk >= 1, got {n_draws} and {chunk}")
    shape = tuple(logits.shape)
    exact = torch.as_tensor(exact_grad).detach().to("cpu", torch.float64)
    if tuple(exact.shape) != shape:
        raise ValueError(f"exact_grad has shape {tuple(exact.shape)}, logits {shape}")
    count, mean, m2, seconds, eps = 0, torch.zeros(shape, dtype=torch.float64), None, 0.0, 0.0
    while count < n_draws:
        m = min(chunk, n_draws - count)
        start = time.perf_counter()
        g = draw(logits, m, generator)
        seconds += time.perf_counter() - start
        if tuple(g.shape) != (m, *shape):
            raise ValueError(f"draw returned shape {tuple(g.shape)}, expected {(m, *shape)}")
        eps = max(eps, torch.finfo(g.dtype).eps if g.dtype.is_floating_point else 0.0)
        g = g.detach().to("cpu", torch.float64)
        if not torch.isfinite(g).all():
            raise ValueError("draw returned non-finite gradient estimates")
        # Chan et al.'s pairwise update of (count, mean, sum of squared deviations):
        # numerically stable, unlike accumulating Σg and Σg² when |mean| >> std.
        c_mean = g.mean(0)
        c_m2 = (g - c_mean).square().sum(0)
        delta, total = c_mean - mean, count + m
        mean = mean + delta * (m / total)
        m2 = c_m2 if m2 is None else m2 + c_m2 + delta.square() * (count * m / total)
        count = total
    assert m2 is not None
    var = m2 / (count - 1)
    stderr = (var / count).sqrt()
    # Each entry's rounding scales with its own size (the draws' root mean square,
    # or the exact value): one scale from the largest entry waved through a
    # float32 bias of 0.05 on an entry of 0.01 beside one of 1e4.
    rms = (mean.square() + var * ((count - 1) / count)).sqrt()
    scale = torch.maximum(torch.maximum(exact.abs(), rms), torch.ones_like(rms))
    tol = (eps or torch.finfo(torch.float64).eps) ** 0.75 * scale
    err = mean - exact
    # The rounding of the draws adds to the Monte Carlo error (a float32 estimator
    # with a standard error below sqrt(eps) got z = ±inf, or a bias waved through);
    # the floor also keeps z finite where every draw is the same number.
    z = err / (stderr.square() + tol**2).sqrt()
    worst = int(z.abs().argmax()) if z.numel() else 0
    return Report(
        mean=mean,
        stderr=stderr,
        exact=exact,
        z=z,
        cosine=_cosine(mean, exact),
        relative_bias=_ratio(float(err.norm()), float(exact.norm())),
        total_variance=float(var.sum()),
        max_z=float(z.abs().max()) if z.numel() else 0.0,
        worst=tuple(int(i) for i in _unravel(worst, shape)),
        tolerance=tol,
        n_draws=count,
        seconds_per_draw=seconds / count,
    )


def assert_unbiased(report: Report, z: float = 4.0) -> None:
    """Fail if some entry's mean is more than ``z`` standard errors from the exact value.

    With ``d`` entries and an unbiased estimator, ``P(max |z| > 4) ≈ d · 6e-5`` (normal
    approximation), so the default suits gradients of up to a few hundred entries.

    Args:
        report: from :func:`evaluate`.
        z: threshold on ``max |z|``.

    Raises:
        AssertionError: naming the worst entry, its z-score, mean, exact value and
            standard error, with the cosine similarity and relative bias.
    """
    if not report.max_z <= z:
        i = report.worst
        raise AssertionError(
            f"gradient estimator looks biased: entry {i} has z = {float(report.z[i]):.3g} "
            f"(|z| > {z}): mean {float(report.mean[i]):.6g}, exact {float(report.exact[i]):.6g}, "
            f"standard error {float(report.stderr[i]):.3g} over {report.n_draws} draws; "
            f"cosine {report.cosine:.4f}, relative bias {report.relative_bias:.3g}"
        )


def _cosine(a: Any, b: Any) -> float:
    na, nb = float(a.norm()), float(b.norm())
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float((a * b).sum()) / (na * nb)


def _ratio(num: float, den: float) -> float:
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for size in reversed(shape):
        flat, r = divmod(flat, size)
        out.append(r)
    return tuple(reversed(out))
