"""The settings of one training run and their checks (before any work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from structgrad_app_common import CLIError, RunControl

__all__ = ["SELECT", "TrainConfig", "check"]

#: Checkpoint criteria: the validation ELBO (the reference), the validation NLL of
#: hard samples (unsupervised; tracks structure, unlike the ELBO whose KL grows
#: with the scores), or the edge precision (uses the labels).
SELECT = {"elbo": ("elbo", True), "nll": ("nll", False), "precision": ("precision", True)}


@dataclass
class TrainConfig(RunControl):
    """Everything one training run needs (JSON-serialisable; see ``train --help``)."""

    BOUNDS: ClassVar = {
        **dict.fromkeys(("batch_size", "iterations", "eval_every", "eval_batch_size"), ">= 1"),
        **dict.fromkeys(("log_every", "anneal_steps", "lr_decay_steps"), ">= 1"),
        **dict.fromkeys(("soft_steps", "rws_after"), ">= 0"),
        "lr": "> 0",
        "rws_samples": ">= 2",
    }
    FREE: ClassVar = ("data", "iterations", "eval_every", "eval_batch_size", "log_every")

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
    tau_final: float | None = None
    anneal_steps: int = 3000
    decoder_edges: str = "complement"
    kl_shift: bool = False
    select: str = "elbo"
    soft_steps: int = 0
    lr_final: float | None = None
    lr_decay_steps: int = 20_000
    rws_after: int | None = None
    rws_samples: int = 8

    def rws_at(self, step: int) -> bool:
        """Whether ``step`` trains with reweighted wake-sleep (see :mod:`.rws`)."""
        return self.rws_after is not None and step > self.rws_after

    def tau_at(self, step: int) -> float:
        """τ at ``step``: geometric from ``tau`` to ``tau_final`` over ``anneal_steps``."""
        return _geometric(self.tau, self.tau_final, step / self.anneal_steps)

    def lr_at(self, step: int) -> float:
        """The learning rate at ``step``: geometric from ``lr`` to ``lr_final``."""
        return _geometric(self.lr, self.lr_final, step / self.lr_decay_steps)


def _geometric(start: float, end: float | None, frac: float) -> float:
    """``start (end / start)^min(1, frac)`` (``start`` when ``end`` is None)."""
    if end is None:
        return start
    return start * (end / start) ** min(1.0, frac)


def check(config: TrainConfig) -> None:
    """One-line errors for impossible settings (before any work)."""
    config.check_settings()
    if config.kl not in ("gumbel", "categorical"):
        raise CLIError(f"--kl must be gumbel or categorical, got {config.kl!r}")
    if config.kl == "categorical" and config.method != "indep":
        raise CLIError(
            "--kl categorical applies to 'indep' only (trees and top-k need the Gumbel KL)"
        )
    for name in ("tau_final", "lr_final"):
        value = getattr(config, name)
        if value is not None and not 0 < value < float("inf"):
            raise CLIError(f"--{name.replace('_', '-')} must be positive and finite, got {value}")
    if config.soft_steps and not config.straight_through:
        raise CLIError("--soft-steps applies with --straight-through only")
    if config.select not in SELECT:
        raise CLIError(f"--select must be one of {', '.join(SELECT)}, got {config.select!r}")
