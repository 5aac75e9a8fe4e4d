"""The settings of one toy run and their checks (before any work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from structgrad_app_common import CLIError, RunControl, opt, positive_float, positive_int, seed_int

from toys.methods import PLUS

__all__ = ["RunConfig", "check"]

# The groups of ``run --help``.
TOY, OPT, EST = "toy problem", "optimisation and evaluation", "estimator options"


@dataclass
class RunConfig(RunControl):
    """Everything one run needs (JSON-serialisable; see ``run --help``)."""

    BOUNDS: ClassVar = {
        **dict.fromkeys(("iters", "eval_every", "plus_samples", "hidden", "num_samples"), ">= 1"),
        **dict.fromkeys(("lr", "lam"), "> 0"),  # (λ = NaN was taken and saved)
    }
    FREE: ClassVar = ("iters", "eval_every", "num_mc")

    structure: str
    estimator: str
    out: str
    dim: int = opt(10, "vertices / items n (10)", group=TOY, type=positive_int)
    k: int | None = opt(
        None, "k_subset: subset size (default dim // 2)", group=TOY, type=positive_int
    )
    target_seed: int = opt(
        0, "k_subset: seed of the target b = |N(0, I)| (0)", group=TOY, type=seed_int
    )
    lr: float = opt(
        0.01, "Adam learning rate, logits and critic (0.01)", group=OPT, type=positive_float
    )
    iters: int = opt(15_000, "optimiser steps (15000)", group=OPT, type=positive_int)
    eval_every: int = opt(
        500,
        "evaluate and checkpoint every N steps, and at steps 0 and last (500)",
        group=OPT,
        type=positive_int,
    )
    num_mc: int = opt(
        10,
        "evaluation: single gradient estimates for the std; num-mc × K samples "
        "for the expected loss (10)",
        group=OPT,
        type=positive_int,
    )
    num_samples: int | None = opt(
        None,
        "independent estimates averaged per step (default 3; 1 for the '+' estimators)",
        group=OPT,
        type=positive_int,
    )
    plus_samples: int = opt(
        3,
        "K samples of one E-/T-REINFORCE+ estimate, leave-one-out baseline (3)",
        group=OPT,
        type=positive_int,
    )
    hidden: int = opt(32, "RELAX critic hidden units (32)", group=EST, type=positive_int)
    tau: float = opt(1.0, "SST / ST-SST temperature (1.0)", group=EST)
    lam: float = opt(1.0, "IMLE / AIMLE perturbation size λ, fixed target (1.0)", group=EST)
    aimle_target: str = opt(
        "fixed",
        "AIMLE λ: fixed (--lam) or adaptive λ = β‖θ‖/‖dL/dz‖, which is 0 at the "
        "zero start, so the logits never move (fixed)",
        group=EST,
        choices=("fixed", "adaptive"),
    )
    seed: int = opt(23, "training seed, torch.Generator (23)", group=OPT, type=seed_int)
    precision: str = opt(
        "float", "float32 or float64 (float)", group=OPT, choices=("float", "double")
    )

    def samples(self) -> int:
        """Independent estimates averaged per step: 3 for plain estimators, 1 for "+"."""
        if self.num_samples is not None:
            return self.num_samples
        return 1 if self.estimator in PLUS else 3


def check(config: RunConfig) -> None:
    """One-line errors for impossible settings (before any work)."""
    config.check_settings()
    if config.num_mc < 2:
        raise CLIError(
            f"--num-mc must be >= 2 (a standard deviation needs two), got {config.num_mc}"
        )
    if config.precision not in ("float", "double"):
        raise CLIError(f"--precision must be float or double, got {config.precision!r}")
