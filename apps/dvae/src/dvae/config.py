"""The settings of one training run, their checks and the τ schedule."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from structgrad_app_common import CLIError, RunControl

from dvae.methods import METHODS, model_of

__all__ = ["DEFAULT_LATENT", "TrainConfig", "check", "tau_at"]

DEFAULT_LATENT = {"categorical": (30, 10, 1), "k_subset": (20, 20, 10)}


@dataclass
class TrainConfig(RunControl):
    """Everything one training run needs (JSON-serialisable; see ``train --help``)."""

    BOUNDS: ClassVar = {
        **dict.fromkeys(("epochs", "batch_size", "samples", "anneal_every"), ">= 1"),
        **dict.fromkeys(("latent_m", "latent_n", "max_train"), ">= 1"),
        **dict.fromkeys(("lr", "tau", "tau_min", "lam"), "> 0"),
        "anneal_rate": ">= 0",
    }
    FREE: ClassVar = ("epochs",)

    out: str
    data: str | None = None
    method: str = "gumbel-softmax"
    latent_m: int | None = None
    latent_n: int | None = None
    k: int | None = None
    hidden: tuple[int, ...] = (512, 256)
    epochs: int = 10
    batch_size: int = 100
    lr: float = 1e-3
    tau: float = 1.0
    tau_min: float = 0.5
    anneal_rate: float = 0.0
    anneal_every: int = 1000
    samples: int = 1
    lam: float = 10.0
    beta_step: float = 1e-3
    target_nnz: float = 10.0
    seed: int = 0
    valid_size: int | None = None
    max_train: int | None = None

    def resolved(self) -> TrainConfig:
        """A copy with the latent sizes filled in from the method's model defaults."""
        if self.method not in METHODS:
            raise CLIError(f"unknown method {self.method!r}; choose among: {', '.join(METHODS)}")
        m, n, k = DEFAULT_LATENT[model_of(self.method)]
        return dataclasses.replace(
            self,
            latent_m=self.latent_m or m,
            latent_n=self.latent_n or n,
            k=self.k or k,
            hidden=tuple(self.hidden),
        )


def check(c: TrainConfig) -> None:
    """One-line errors for impossible settings of a resolved config (before any work)."""
    c.check_settings()
    if not c.hidden or min(c.hidden) < 1:
        raise CLIError(f"--hidden needs positive sizes, got {list(c.hidden)}")
    model = model_of(c.method)
    assert c.k is not None and c.latent_n is not None
    if model == "k_subset" and not 1 <= c.k < c.latent_n:
        raise CLIError(f"--k must be in [1, {c.latent_n - 1}] for N={c.latent_n}, got {c.k}")
    if model == "categorical" and c.k != 1:
        raise CLIError(f"--k applies to k-subset methods only, not {c.method!r}")
    if c.anneal_rate > 0 and METHODS[c.method].perturbation:
        raise CLIError(
            f"--anneal-rate anneals a relaxation temperature; {c.method!r} has a fixed noise "
            "temperature"
        )


def tau_at(c: TrainConfig, step: int) -> float:
    """The reference schedule ``max(τ₀·exp(−rate·t), τ_min)``, updated every ``anneal_every``."""
    if c.anneal_rate == 0:
        return c.tau
    t = (step // c.anneal_every) * c.anneal_every
    return max(c.tau * math.exp(-c.anneal_rate * t), c.tau_min)
