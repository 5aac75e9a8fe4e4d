"""Noise distributions for perturb-and-MAP: Gumbel, Sum-of-Gamma, Normal.

Every distribution draws with the dtype and device it is given (those of the
scores being perturbed) and an optional ``torch.Generator``; none touches the
global random state unless no generator is passed.
"""

from __future__ import annotations

import math
from typing import NotRequired, TypedDict

import torch
from torch import Tensor

from structgrad.distributions import sample_uniform
from structgrad.distributions.checks import (
    FLOAT_DTYPES,
    InputTypeError,
    check_generator,
    check_int,
    check_real,
)

__all__ = ["Gumbel", "NoiseDistribution", "Normal", "SumOfGamma", "resolve_noise"]


class Placement(TypedDict):
    """The keyword arguments of torch's samplers that :meth:`NoiseDistribution.sample` passes on.

    ``generator`` is left out when there is none: ``torch.randn(symbolic shape,
    generator=None)`` does not trace under ``torch.compile(dynamic=True)``.
    """

    dtype: torch.dtype
    device: torch.device
    generator: NotRequired[torch.Generator]


class NoiseDistribution:
    """Base class: a distribution of i.i.d. noise added to the scores.

    Subclasses implement :meth:`_draw` (or override :meth:`sample` whole).

    Attributes:
        dtypes: the floating dtypes it draws in (``None``: every floating dtype).
    """

    dtypes: tuple[torch.dtype, ...] | None = None

    def sample(
        self,
        shape: tuple[int, ...],
        *,
        dtype: torch.dtype,
        device: torch.device,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw noise of the given shape, dtype and device.

        Args:
            shape: shape of the result.
            dtype: floating dtype of the result.
            device: device of the result.
            generator: source of randomness (on ``device``).

        Returns:
            Noise ``shape``.

        Raises:
            InputTypeError: (a ``TypeError``) for a ``dtype`` it does not draw in.
        """
        check_generator(generator, device)
        self._check_dtype(dtype)
        at: Placement = {"dtype": dtype, "device": device}
        if generator is not None:
            at["generator"] = generator
        return self._draw(shape, at)

    def _check_dtype(self, dtype: object) -> None:
        """Raise :class:`InputTypeError` naming ``dtype`` unless this noise is drawn in it."""
        if dtype is None:  # torch's default dtype
            return
        floating = isinstance(dtype, torch.dtype) and dtype.is_floating_point
        if not floating:
            raise InputTypeError(f"{self!r}: dtype must be a floating torch dtype, got {dtype!r}")
        if self.dtypes is not None and dtype not in self.dtypes:
            names = " or ".join(str(d).removeprefix("torch.") for d in self.dtypes)
            raise InputTypeError(f"{self!r} draws in {names}, not dtype {dtype}")

    def _draw(self, shape: tuple[int, ...], at: Placement) -> Tensor:
        """The distribution's own draw, for :meth:`sample`."""
        raise NotImplementedError

    def score(self, eps: Tensor) -> Tensor:
        """``∇ν(ε) = -∇ log p(ε)``, the noise score used by perturbed optimizers.

        Args:
            eps: noise ``[...]`` drawn from this distribution.

        Returns:
            The elementwise score, shaped like ``eps``.
        """
        raise ValueError(
            f"{type(self).__name__} has no tractable density gradient; perturbed "
            "optimizers need Normal or Gumbel noise"
        )


class Gumbel(NoiseDistribution):
    """Gumbel noise with location ``loc`` and scale ``scale``.

    With ``loc=0, scale=1``, ``argmax(θ + G)`` samples ``P(k) ∝ exp(θ_k)``
    (the Gumbel-max trick).

    Args:
        loc: location μ.
        scale: scale β > 0 (mean ``μ + γβ``, variance ``π²β²/6``).
    """

    def __init__(self, loc: float = 0.0, scale: float = 1.0) -> None:
        self.loc = check_real(loc, "Gumbel loc")
        self.scale = check_real(scale, "Gumbel scale", lo=0.0, strict=True)

    def _draw(self, shape: tuple[int, ...], at: Placement) -> Tensor:
        """Draw ``loc - scale·log(-log U)`` with ``U ~ Uniform(0, 1)``."""
        # torch.rand may return exactly 0: the uniforms are clamped to [tiny, 1 - eps]
        # so that both logs stay finite. In place, skipping the identity scale and shift.
        u = sample_uniform(shape, **at)
        g = u.log_().neg_().log_()
        g = g.neg_() if self.scale == 1.0 else g.mul_(-self.scale)
        return g if self.loc == 0.0 else g.add_(self.loc)

    def score(self, eps: Tensor) -> Tensor:
        """``(1 - exp(-(ε - μ)/β)) / β`` for the density ``exp(-(x + e^{-x}))/β``, x = (ε-μ)/β."""
        x = (eps - self.loc) / self.scale
        return -torch.expm1(-x) / self.scale

    def __repr__(self) -> str:
        return f"Gumbel(loc={self.loc}, scale={self.scale})"


class Normal(NoiseDistribution):
    """Centred Gaussian noise with standard deviation ``std``.

    Args:
        std: standard deviation (> 0).
    """

    def __init__(self, std: float = 1.0) -> None:
        self.std = check_real(std, "Normal std", lo=0.0, strict=True)

    def _draw(self, shape: tuple[int, ...], at: Placement) -> Tensor:
        """Draw ``std · N(0, 1)``."""
        z = torch.randn(shape, **at)
        return z.mul_(self.std)

    def score(self, eps: Tensor) -> Tensor:
        """``ε / std²``."""
        return eps / self.std**2

    def __repr__(self) -> str:
        return f"Normal(std={self.std})"


class SumOfGamma(NoiseDistribution):
    """Sum-of-Gamma noise of Niepert et al. (2021), tailored to ``k``-hot solutions.

    ``ε = (Σ_{i=1..s} Γ(1/k, rate i/k) - log s) / k`` with ``s = terms``. The sum
    of ``k`` independent draws has the law of ``Σ_i E_i / i - log s`` (``E_i``
    i.i.d. Exp(1)), i.e. of the maximum of ``s`` exponentials minus ``log s``,
    which tends to a standard Gumbel as ``s → ∞``: mean ``H_s - log s`` and
    variance ``Σ_{i≤s} 1/i²`` (0.6264 and 1.5498 at ``s = 10``, against γ = 0.5772
    and π²/6 = 1.6449). Perturbing each entry of a problem whose solutions have
    ``k`` ones thus makes the perturbation of a solution's score Gumbel-like.

    Args:
        k: number of ones in a solution (> 0, may be fractional); ``None`` lets
            a structure-bound layer use its own count (``k`` of a k-subset,
            ``n - 1`` for trees, ``n`` for matchings).
        terms: number ``s`` of Gamma terms (≥ 1).

    Raises:
        InputTypeError: (a ``TypeError``) for a non-number ``k``; at draw time, a
            ``dtype`` other than float32 / float64 (torch's Gamma sampler has no
            half-precision CPU kernel).
        ValueError: for ``k`` not a positive finite number (``k = inf`` would
            draw zero noise), or ``terms < 1``.

    References:
        Niepert, Minervini, Franceschi, "Implicit MLE: Backpropagating Through
        Discrete Exponential Family Distributions", NeurIPS 2021,
        https://arxiv.org/abs/2106.01798 (§5, Sum-of-Gamma noise).
    """

    dtypes = FLOAT_DTYPES

    def __init__(self, k: float | None = None, terms: int = 10) -> None:
        self.k = None if k is None else check_real(k, "SumOfGamma k", lo=0.0, strict=True)
        self.terms = check_int(terms, "SumOfGamma terms", 1)

    def with_k(self, k: float) -> SumOfGamma:
        """This distribution with ``k`` filled in (itself if ``k`` is already set)."""
        return self if self.k is not None else SumOfGamma(k, self.terms)

    def _draw(self, shape: tuple[int, ...], at: Placement) -> Tensor:
        """Draw Sum-of-Gamma noise (one Gamma tensor per term, summed in place)."""
        if self.k is None:
            raise ValueError(
                "SumOfGamma(k=None) needs k: pass SumOfGamma(k=...) with the number of "
                "ones in a solution (structure-bound layers fill it in)"
            )
        k = self.k
        # Γ(1/k) draws can underflow to 0 in float32; that only drops a tiny term.
        conc = torch.full(shape, 1.0 / k, dtype=at["dtype"], device=at["device"])
        total = torch.zeros_like(conc)
        for i in range(1, self.terms + 1):
            gamma = torch._standard_gamma(conc, generator=at.get("generator"))  # rate 1
            total.add_(gamma, alpha=1.0 / i)  # Γ(1/k, rate i/k) / k = Γ(1/k, 1) / i
        return total.sub_(math.log(self.terms) / k)

    def __repr__(self) -> str:
        return f"SumOfGamma(k={self.k}, terms={self.terms})"


def resolve_noise(noise: NoiseDistribution | str | None) -> NoiseDistribution | None:
    """Turn ``"gumbel"``, ``"sog"``, ``"normal"``, ``None`` or a distribution into one.

    Args:
        noise: a :class:`NoiseDistribution`, one of the names, or ``None`` / ``"none"``.

    Returns:
        The distribution, or ``None`` for no noise.
    """
    if noise is None or isinstance(noise, NoiseDistribution):
        return noise
    names: dict[str, NoiseDistribution | None] = {
        "gumbel": Gumbel(),
        "sog": SumOfGamma(),
        "sum_of_gamma": SumOfGamma(),
        "normal": Normal(),
        "none": None,
    }
    if isinstance(noise, str) and noise.lower() in names:
        return names[noise.lower()]
    raise ValueError(
        f"unknown noise {noise!r}: use 'gumbel', 'sog', 'normal', 'none' or a NoiseDistribution"
    )
