"""The settings of one training run and their checks (before any work)."""

from __future__ import annotations

from dataclasses import dataclass

from structgrad_app_common import CLIError
from structgrad_app_common.training import RunControl

__all__ = ["RESUME_KEYS", "TrainConfig", "check"]

# Fields that must not change between a run and its resumption.
RESUME_KEYS = (
    "method",
    "tau",
    "lr",
    "batch_size",
    "seed",
    "straight_through",
    "symmetric",
    "aimle_difference",
    "num_samples",
    "max_range",
    "kl",
    "encoder_hidden",
    "decoder_hidden",
    "var",
    "prediction_steps",
)


@dataclass
class TrainConfig(RunControl):
    """Everything one training run needs (JSON-serialisable; see ``train --help``)."""

    data: str
    out: str
    method: str = "tree-sst"
    tau: float = 5.0
    lr: float = 3e-4
    batch_size: int = 128
    iterations: int = 50_000
    eval_every: int = 500
    eval_batch_size: int = 100
    log_every: int = 50
    seed: int = 42
    straight_through: bool = False
    symmetric: bool = False
    aimle_difference: str | None = None
    num_samples: int | None = None
    max_range: float | None = 15.0
    kl: str = "gumbel"
    encoder_hidden: int = 256
    decoder_hidden: int = 256
    var: float = 5e-5
    prediction_steps: int | None = None


def check(config: TrainConfig) -> None:
    """One-line errors for impossible settings (before any work)."""
    for name in ("batch_size", "iterations", "eval_every", "eval_batch_size", "log_every"):
        if getattr(config, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be >= 1")
    if not config.lr > 0:
        raise CLIError(f"--lr must be > 0, got {config.lr}")
    if config.kl not in ("gumbel", "categorical"):
        raise CLIError(f"--kl must be gumbel or categorical, got {config.kl!r}")
    if config.kl == "categorical" and config.method != "indep":
        raise CLIError(
            "--kl categorical applies to 'indep' only (trees and top-k need the Gumbel KL)"
        )
    config.check_run_flags()
