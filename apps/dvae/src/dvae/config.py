"""The settings of one training run, their checks and the τ schedule."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from structgrad_app_common import CLIError
from structgrad_app_common.training import RunControl

from dvae.methods import METHODS, model_of

__all__ = ["DEFAULT_LATENT", "RESUME_KEYS", "TrainConfig", "check", "tau_at"]

# Fields that must not change between a run and its resumption.
RESUME_KEYS = (
    "data",
    "method",
    "latent_m",
    "latent_n",
    "k",
    "hidden",
    "batch_size",
    "lr",
    "tau",
    "tau_min",
    "anneal_rate",
    "anneal_every",
    "samples",
    "lam",
    "beta_step",
    "target_nnz",
    "seed",
    "valid_size",
    "max_train",
)
DEFAULT_LATENT = {"categorical": (30, 10, 1), "k_subset": (20, 20, 10)}


@dataclass
class TrainConfig(RunControl):
    """Everything one training run needs (JSON-serialisable; see ``train --help``)."""

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
    """One-line errors for impossible settings (before any work)."""
    ints = ("epochs", "batch_size", "samples", "anneal_every", "latent_m", "latent_n", "threads")
    for name in ints:
        if getattr(c, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(c, name)}")
    for name in ("lr", "tau", "tau_min", "lam"):
        if not getattr(c, name) > 0:
            raise CLIError(f"--{name.replace('_', '-')} must be > 0, got {getattr(c, name)}")
    if c.anneal_rate < 0:
        raise CLIError(f"--anneal-rate must be >= 0, got {c.anneal_rate}")
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
    c.check_run_flags()
    if c.max_train is not None and c.max_train < 1:
        raise CLIError("--max-train must be >= 1")


def tau_at(c: TrainConfig, step: int) -> float:
    """The reference schedule ``max(τ₀·exp(−rate·t), τ_min)``, updated every ``anneal_every``."""
    if c.anneal_rate == 0:
        return c.tau
    t = (step // c.anneal_every) * c.anneal_every
    return max(c.tau * math.exp(-c.anneal_rate * t), c.tau_min)
