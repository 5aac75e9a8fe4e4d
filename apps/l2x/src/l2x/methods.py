"""The k-subset selection of the explainer: every k-subset method of the toolkit.

Method names are those ``structgrad.models.METHODS["k_subset"]`` lists (built
with ``structgrad.models.latent("k_subset", method, k=k, ...)``), plus two
relaxations of :mod:`structgrad.relaxations` that are not latent layers:

- ``softsub``: the relaxed top-k of Xie and Ermon (``relaxed_top_k``), the
  "SoftSub" baseline of the AIMLE paper;
- ``l2x``: the original L2X sampler, k independent Gumbel-softmax draws over the
  features combined by an element-wise max (Chen et al. 2018, ``gumbel_softmax``).

``--tau`` is the relaxation temperature (``sst``, ``st-sst``, ``softsub``,
``l2x``) or the noise temperature of the perturb-and-MAP methods (``imle``,
``aimle``, ``ste``, ``perturbed``): every method whose
``structgrad.models.method_info(name).tau`` is true. ``--lam`` is λ of ``imle``
(a fixed ``Target(lam)``, gradient divided by λ) and of ``blackbox``; ``aimle``
uses an ``AdaptiveTarget`` starting at β = 0 (the AIMLE paper's L2X setting).
In evaluation mode every method selects the top-k of the logits (no noise), as
the reference does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from structgrad_app_common import CLIError
from structgrad_app_common.runcontrol import check_num_samples
from torch import Tensor, nn

import structgrad.solvers as solvers
from structgrad.estimators import AdaptiveTarget, Target
from structgrad.models import METHODS, latent, method_info
from structgrad.relaxations import gumbel_softmax, relaxed_top_k

__all__ = ["DEFAULT_TAU", "MethodSpec", "Selector", "method_names", "resolve"]

RELAXATIONS = ("softsub", "l2x")
DEFAULT_LAM = {"imle": 10.0, "blackbox": 10.0}


def method_names() -> list[str]:
    """Every method name available in the installed toolkit."""
    return [*METHODS.get("k_subset", ()), *RELAXATIONS]


def _score_function(name: str) -> bool:
    """Whether the method's gradient is a score-function estimate (from the models registry)."""
    return name not in RELAXATIONS and not method_info(name).pathwise


#: The default τ of each method that has one (``structgrad.models.method_info(m).tau``,
#: and the two relaxations): 0.5 for the relaxations, 0.1 for L2X's concrete draws,
#: 1.0 for the noise scales.
DEFAULT_TAU = {
    name: {"sst": 0.5, "st-sst": 0.5, "softsub": 0.5, "l2x": 0.1}.get(name, 1.0)
    for name in method_names()
    if name in RELAXATIONS or method_info(name).tau
}


@dataclass(frozen=True)
class MethodSpec:
    """A checked method and its settings.

    Attributes:
        name: the method name.
        k: subset size.
        n: number of items (features or tokens).
        tau: τ (``None`` for methods without one).
        options: keyword options of ``structgrad.models.latent``.
    """

    name: str
    k: int
    n: int
    tau: float | None
    options: dict[str, Any] = field(default_factory=dict)


def resolve(
    name: str,
    *,
    k: int,
    n: int,
    tau: float | None = None,
    lam: float | None = None,
    aimle_difference: str | None = None,
    num_samples: int | None = None,
) -> MethodSpec:
    """Check a method and its flags; one-line :class:`CLIError` otherwise."""
    if name not in method_names():
        raise CLIError(f"unknown method {name!r}; choose one of: {', '.join(method_names())}")
    if not 1 <= k < n:
        raise CLIError(f"--k must be in [1, {n - 1}] for {n} items, got {k}")
    if tau is not None and name not in DEFAULT_TAU:
        raise CLIError(f"--tau does not apply to {name!r}")
    if tau is not None and not 0 < tau < math.inf:
        raise CLIError(f"--tau must be > 0 and finite, got {tau}")
    if lam is not None and name not in DEFAULT_LAM:
        raise CLIError(f"--lam applies to imle and blackbox only, not {name!r}")
    if lam is not None and not 0 < lam < math.inf:
        raise CLIError(f"--lam must be > 0 and finite, got {lam}")
    if aimle_difference is not None and name != "aimle":
        raise CLIError(f"--aimle-difference applies to aimle only, not {name!r}")
    if num_samples is not None and not _score_function(name):
        raise CLIError(f"--num-samples applies to score-function methods only, not {name!r}")
    check_num_samples(name, num_samples)
    t = DEFAULT_TAU.get(name) if tau is None else float(tau)
    options: dict[str, Any] = {"k": k}
    if name in DEFAULT_TAU and name not in RELAXATIONS:
        options["tau"] = t
    if name == "imle":
        options["target"] = Target(DEFAULT_LAM["imle"] if lam is None else lam)
    if name == "blackbox":
        options["lam"] = DEFAULT_LAM["blackbox"] if lam is None else lam
    if name == "aimle":
        options["difference"] = aimle_difference or "central"
        options["target"] = AdaptiveTarget(0.0, step=1e-3, target_nnz=1.0)
    if num_samples is not None:
        options["samples"] = num_samples
    if name == "relax":  # the default critic reads the sample's shape
        options["event_shape"] = (n,)
    return MethodSpec(name, k, n, t, options)


class Selector(nn.Module):
    """k-subset selection ``[*batch, n] → [*batch, n]`` (``[S, *batch, n]`` with samples).

    Training mode draws with the method's estimator; evaluation mode returns
    the top-k mask of the logits.

    Args:
        spec: the resolved method.
    """

    def __init__(self, spec: MethodSpec) -> None:
        super().__init__()
        self.spec = spec
        # The relaxations have no state; the latent layers keep theirs (AIMLE's β,
        # baselines, RELAX critic) in this module's state_dict.
        self.layer = (
            None if spec.name in RELAXATIONS else latent("k_subset", spec.name, **spec.options)
        )

    def forward(self, logits: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Sample a (relaxed) k-subset of the last dim of ``logits`` ``[*batch, n]``."""
        if not self.training:
            return solvers.top_k(logits.detach(), self.spec.k)
        k, tau = self.spec.k, self.spec.tau
        if self.spec.name == "softsub":
            assert tau is not None  # resolve() gives the relaxations a τ
            return relaxed_top_k(logits, k, tau, generator=generator)
        if self.spec.name == "l2x":
            assert tau is not None
            # k independent concrete draws [*, k, n]; their max is the relaxed k-hot.
            draws = gumbel_softmax(
                logits.unsqueeze(-2).expand(*logits.shape[:-1], k, logits.shape[-1]),
                tau,
                generator=generator,
            )
            return draws.amax(dim=-2)
        assert self.layer is not None
        z: Tensor = self.layer(logits, generator=generator)
        return z

    def attach(self, loss: Tensor) -> Tensor:
        """Per-sample loss ``[*sample, *batch]`` → the loss to backpropagate."""
        return loss if self.layer is None else self.layer.attach(loss)
