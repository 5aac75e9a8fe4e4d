"""The discrete VAE: MLP encoder → latent layer → MLP decoder, and its loss.

Architecture of both references: encoder ``D → 512 → 256 → M·N`` (ReLU),
decoder ``M·N → 256 → 512 → D`` (ReLU, Bernoulli logits). The loss of one
image is the reference's

``BCE(x, decoder(z))`` summed over pixels ``+ Σ_{m,n} q_{mn} log(N q_{mn})``

with ``q = softmax(θ_m)`` over the ``N`` entries of each variable: the exact
KL to the uniform prior for the categorical model, and the AIMLE reference's
surrogate (the categorical KL of the same logits) for the k-subset model.
With ``S`` samples per image the reconstruction term is averaged over them.

References:
    Jang, Gu and Poole, "Categorical Reparameterization with Gumbel-Softmax",
    ICLR 2017, https://arxiv.org/abs/1611.01144.
    Minervini, Franceschi, Niepert, "Adaptive Perturbation-Based Gradient
    Estimation for Discrete Latent Variable Models", AAAI 2023,
    https://arxiv.org/abs/2209.04862.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dvae.methods import METHODS, build_layer
from structgrad.models import map_sample

if TYPE_CHECKING:
    from dvae.config import TrainConfig

__all__ = ["DiscreteVAE", "LossTerms"]


class _Tempered(Protocol):
    """A latent layer with a relaxation temperature (``hasattr(layer, "tau")``)."""

    tau: float


class LossTerms(NamedTuple):
    """Per-image loss terms, each ``[B]``: ``loss = bce + kl``."""

    loss: Tensor
    bce: Tensor
    kl: Tensor


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DiscreteVAE(nn.Module):
    """A VAE with ``M`` discrete latent variables of ``N`` entries each.

    Args:
        dim: pixels per image ``D``.
        c: the resolved run config: the method (see :mod:`dvae.methods`), ``M``
            latent variables (``latent_m``) of ``N`` entries (``latent_n``), the
            encoder's ``hidden`` sizes (reversed in the decoder) and ``S``
            training samples per image (``samples``).
    """

    def __init__(self, dim: int, c: TrainConfig) -> None:
        super().__init__()
        assert c.latent_m is not None and c.latent_n is not None and c.k is not None
        self.spec = METHODS[c.method]
        self.m, self.n, self.k, self.samples = c.latent_m, c.latent_n, c.k, c.samples
        code = self.m * self.n
        self.encoder = _mlp([dim, *c.hidden, code])
        self.decoder = _mlp([code, *reversed(c.hidden), dim])
        if self.spec.model == "k_subset":  # the AIMLE reference initialises with Xavier
            for mod in self.modules():
                if isinstance(mod, nn.Linear):
                    nn.init.xavier_uniform_(mod.weight)
                    nn.init.zeros_(mod.bias)
        self.layer = build_layer(c)

    @property
    def tau(self) -> float:
        """The relaxation / noise temperature in use."""
        return float(getattr(self.layer, "tau", 0.0))

    def set_tau(self, tau: float) -> None:
        """Change the relaxation temperature (annealing); perturbation methods ignore it."""
        if not self.spec.perturbation and hasattr(self.layer, "tau"):
            # nn.Module types unknown attributes as Tensor | Module: name the checked one
            cast("_Tempered", self.layer).tau = float(tau)

    def beta(self) -> float | None:
        """AIMLE's adaptive β (``None`` for the other methods)."""
        target = getattr(self.layer, "target", None)
        beta = getattr(target, "beta", None)
        return None if beta is None else float(beta)

    def logits(self, x: Tensor) -> Tensor:
        """Encoder logits ``[B, M, N]`` of images ``[B, D]``."""
        return self.encoder(x).view(len(x), self.m, self.n)

    def sample(self, logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Training samples ``[S, B, M, N]`` through the method (with its gradient)."""
        if self.spec.perturbation:
            z = self.layer(logits, generator=generator)  # [S, B, M, N] or [B, M, N]
            return z if self.samples > 1 else z.unsqueeze(0)
        expanded = logits.expand(self.samples, *logits.shape)  # [S, B, M, N]
        return self.layer(expanded, generator=generator)

    @torch.no_grad()
    def sample_hard(self, logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Discrete samples ``[B, M, N]`` of the method's own distribution, no gradient.

        Relaxed and straight-through methods: argmax / top-k of ``θ + G``, the
        exact sample whose relaxation they train (the tutorial's "unrelaxed"
        sample). Perturb-and-MAP methods (``imle``, ``aimle-*``, ``ste``): the
        layer's forward sample, top-k of ``θ + τε`` with the method's noise
        (Sum-of-Gamma for I-MLE / AIMLE), as the AIMLE reference evaluates.
        """
        if self.spec.perturbation:
            z = self.layer(logits, generator=generator)  # [S, B, M, N] or [B, M, N]
            return z[0] if self.samples > 1 else z
        return self.layer.sample_hard(logits, generator=generator)

    def decode(self, z: Tensor) -> Tensor:
        """Bernoulli logits ``[*S, B, D]`` of codes ``[*S, B, M, N]``."""
        return self.decoder(z.flatten(-2))

    def loss(self, x: Tensor, z: Tensor, logits: Tensor) -> LossTerms:
        """The per-image loss of codes ``z`` ``[S, B, M, N]`` (or ``[B, M, N]``).

        Args:
            x: images ``[B, D]`` in [0, 1].
            z: codes, with or without the sample dim.
            logits: encoder logits ``[B, M, N]``.

        Returns:
            :class:`LossTerms`, each ``[B]``.
        """
        if z.ndim == 3:
            z = z.unsqueeze(0)
        recon = self.decode(z)  # [S, B, D]
        target = x.expand_as(recon)
        bce = F.binary_cross_entropy_with_logits(recon, target, reduction="none").sum(-1).mean(0)
        # KL(q || uniform) = Σ q (log q + log N); log_softmax keeps q log q finite at q → 0.
        log_q = F.log_softmax(logits, dim=-1)  # [B, M, N]
        kl = (log_q.exp() * (log_q + math.log(self.n))).sum((-2, -1))  # [B]
        return LossTerms(bce + kl, bce, kl)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> LossTerms:
        """Training loss terms ``[B]`` of images ``[B, D]`` (``layer.attach`` applied)."""
        logits = self.logits(x)
        terms = self.loss(x, self.sample(logits, generator=generator), logits)
        return terms._replace(loss=self.layer.attach(terms.loss))

    @torch.no_grad()
    def prior_sample(self, count: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Decoded pixel probabilities ``[count, D]`` of uniform prior codes."""
        zeros = torch.zeros(count, self.m, self.n)
        opts: dict[str, Any] = {"k": self.k} if self.spec.model == "k_subset" else {}
        # argmax / top-k of pure Gumbel noise: a uniform category / uniform k-subset.
        z = map_sample(self.spec.model, zeros, generator=generator, **opts)
        return torch.sigmoid(self.decode(z))
