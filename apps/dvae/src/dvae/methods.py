"""App method names → latent layers from :func:`structgrad.models.latent` (or a relaxation).

Two latent models:

- ``categorical`` (the SGA tutorial): ``M`` categorical variables with ``N``
  categories; ``gumbel-softmax`` (relaxed sample, Jang et al. 2017) and ``st``
  (one-hot forward, Gumbel-softmax gradient).
- ``k_subset`` (the AIMLE paper's DVAE): ``M`` variables, each a ``k``-subset of
  ``N`` positions; ``aimle`` (adaptive target, Sum-of-Gamma noise, as the
  reference's run; ``--aimle-difference forward|central``), ``imle`` (fixed λ), ``sst``
  (exact k-subset marginals of ``(θ+G)/τ``), ``st-sst`` (top-k forward, SST
  gradient), ``ste`` (top-k of ``θ+G``, identity backward) and ``gumbel-topk``
  (Xie & Ermon's relaxed top-k, :func:`structgrad.relaxations.relaxed_top_k`,
  which the factory does not wrap).

``--tau`` is the relaxation temperature of the relaxed methods and the noise
temperature of the perturb-and-MAP ones (``imle``, ``aimle``, ``ste``). Every
method name but ``gumbel-topk`` (an app layer) is a name of
``structgrad.models.METHODS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from structgrad.distributions import structure
from structgrad.estimators import AdaptiveTarget, Target
from structgrad.models import LatentLayer, latent, method_info
from structgrad.relaxations import relaxed_top_k

if TYPE_CHECKING:
    from dvae.config import TrainConfig

__all__ = [
    "METHODS",
    "RENAMED",
    "GumbelTopK",
    "MethodSpec",
    "build_layer",
    "method_names",
    "model_of",
]

#: Method names of earlier versions → the ``--aimle-difference`` they stand for.
RENAMED = {"aimle-forward": "forward", "aimle-central": "central"}


@dataclass(frozen=True)
class MethodSpec:
    """How one app method is built.

    Attributes:
        model: ``"categorical"`` or ``"k_subset"``.
        factory: the :func:`structgrad.models.latent` method name (``None``: app layer).
        relaxed: the training sample is continuous (its loss differs from the hard one).
        options: fixed options of the factory call.
    """

    model: str
    factory: str | None
    relaxed: bool
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def perturbation(self) -> bool:
        """``--tau`` is a perturb-and-MAP noise temperature (the models registry's family)."""
        return self.factory is not None and method_info(self.factory).family == "perturbation"


METHODS: dict[str, MethodSpec] = {
    "gumbel-softmax": MethodSpec("categorical", "gumbel-softmax", relaxed=True),
    "st": MethodSpec("categorical", "st", relaxed=False),
    "aimle": MethodSpec("k_subset", "aimle", relaxed=False, options=(("noise", "sog"),)),
    "imle": MethodSpec("k_subset", "imle", relaxed=False, options=(("noise", "sog"),)),
    "ste": MethodSpec("k_subset", "ste", relaxed=False),
    "sst": MethodSpec("k_subset", "sst", relaxed=True),
    "st-sst": MethodSpec("k_subset", "st-sst", relaxed=False),
    "gumbel-topk": MethodSpec("k_subset", None, relaxed=True),
}


def method_names(model: str | None = None) -> list[str]:
    """The app's method names (of one latent model, or all)."""
    return [name for name, spec in METHODS.items() if model in (None, spec.model)]


def model_of(method: str) -> str:
    """The latent model (``categorical`` / ``k_subset``) of a method name."""
    return METHODS[method].model


class GumbelTopK(LatentLayer):
    """Relaxed Gumbel top-k (Xie & Ermon 2019) as a latent layer.

    ``z = Σ_j softmax(r_j/τ)`` over ``k`` rounds of soft exclusion, with
    ``r_1 = θ + G``; the hard sample (``sample_hard``) is the top-k of ``θ + G``.

    Args:
        k: subset size.
        tau: temperature τ > 0.

    References:
        Xie and Ermon, "Reparameterizable Subset Sampling via Continuous
        Relaxations", IJCAI 2019, https://arxiv.org/abs/1901.10517.
    """

    takes_lengths = False

    def __init__(self, k: int, tau: float = 1.0) -> None:
        super().__init__(structure("k_subset"), {"k": k})
        self.method = "gumbel-topk"
        self.tau = float(tau)

    def _sample(self, logits: Tensor, lengths: Any, generator: torch.Generator | None) -> Tensor:
        """Relaxed k-hot sample ``[*batch, n]`` from logits ``[*batch, n]``."""
        k = int(self.structure_options["k"])
        return relaxed_top_k(logits, k, self.tau, generator=generator)


def build_layer(c: TrainConfig) -> LatentLayer:
    """The latent layer of a resolved config's method.

    ``c.tau`` is the relaxation temperature, or the noise temperature of the
    perturb-and-MAP methods; those draw ``c.samples`` samples (a leading ``[S]``
    dim when ``S > 1``). IMLE keeps a fixed λ ``c.lam`` (its gradient divided by
    λ, as in the tf-imle DVAE); AIMLE's β starts at 0 and grows by ``c.beta_step``
    per backward pass towards ``c.target_nnz`` non-zero gradient entries per
    sample, with the ``c.aimle_difference`` finite difference.
    """
    spec = METHODS[c.method]
    if spec.factory is None:
        assert c.k is not None  # a resolved config has its k
        return GumbelTopK(c.k, c.tau)
    opts: dict[str, Any] = {**dict(spec.options), "tau": c.tau}
    if spec.model == "k_subset":
        opts["k"] = c.k
    if spec.perturbation and c.samples > 1:
        opts["samples"] = c.samples
    if spec.factory == "aimle":
        opts["target"] = AdaptiveTarget(beta=0.0, step=c.beta_step, target_nnz=c.target_nnz)
        opts["difference"] = c.aimle_difference
    elif spec.factory == "imle":
        opts["target"] = Target(c.lam)
    return latent(spec.model, spec.factory, **opts)
