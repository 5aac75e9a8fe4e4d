"""The settings of one training run, their checks and the τ schedule."""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from structgrad_app_common import (
    CLIError,
    RunControl,
    nonnegative_float,
    opt,
    positive_float,
    positive_int,
    seed_int,
)

from dvae.methods import METHODS, RENAMED, method_names, model_of

__all__ = [
    "DEFAULT_LATENT",
    "LATENT",
    "TrainConfig",
    "check",
    "check_renamed",
    "derived_latent",
    "sizes",
    "tau_at",
]

DEFAULT_LATENT = {"categorical": (30, 10, 1), "k_subset": (20, 20, 10)}
#: The fields whose defaults derive from the method's model (``DEFAULT_LATENT``).
LATENT = ("latent_m", "latent_n", "k")
# The groups of ``train --help``.
RUN, OPT, MODEL = "data and run", "optimisation", "model and estimator"


def sizes(text: str) -> tuple[int, ...]:
    """``argparse`` type: comma-separated sizes ``>= 1`` (``512,256``)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 512,256, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be >= 1, got {text!r}")
    return values


@dataclass
class TrainConfig(RunControl):
    """Everything one training run needs (JSON-serialisable; see ``train --help``)."""

    BOUNDS: ClassVar = {
        **dict.fromkeys(("epochs", "batch_size", "samples", "anneal_every"), ">= 1"),
        **dict.fromkeys(("latent_m", "latent_n", "max_train"), ">= 1"),
        **dict.fromkeys(("lr", "tau", "tau_min", "lam"), "> 0"),
        **dict.fromkeys(("anneal_rate", "beta_step"), ">= 0"),
    }
    FREE: ClassVar = ("epochs",)

    out: str
    data: str | None = opt(
        None,
        "MNIST: a folder with train-images-idx3-ubyte[.gz] and t10k-images-idx3-ubyte[.gz], "
        "or a .npz with uint8/float arrays x_train, x_test ([N,28,28] or [N,784]); "
        "default: scikit-learn's bundled 8x8 digits, binarised",
        group=RUN,
    )
    method: str = opt(
        "gumbel-softmax",
        "latent model and estimator (gumbel-softmax); categorical: "
        f"{', '.join(method_names('categorical'))}; k-subset: "
        f"{', '.join(method_names('k_subset'))}",
        group=RUN,
        sweep=False,
    )
    latent_m: int | None = opt(
        None, "latent variables M (categorical 30, k-subset 20)", group=MODEL, type=positive_int
    )
    latent_n: int | None = opt(
        None,
        "categories / positions N per variable (categorical 10, k-subset 20)",
        group=MODEL,
        type=positive_int,
    )
    k: int | None = opt(
        None, "subset size k (k-subset methods; 10)", group=MODEL, type=positive_int
    )
    hidden: tuple[int, ...] = opt(
        (512, 256), "encoder hidden sizes (512,256)", group=MODEL, type=sizes
    )
    epochs: int = opt(10, "training epochs (10)", group=OPT, type=positive_int)
    batch_size: int = opt(100, "batch size (100)", group=OPT, type=positive_int)
    lr: float = opt(1e-3, "Adam learning rate (1e-3)", group=OPT, sweep=False, type=positive_float)
    tau: float = opt(
        1.0,
        "relaxation temperature (gumbel-softmax, st, sst, st-sst, gumbel-topk) or noise "
        "temperature (imle, aimle, ste) (1.0)",
        group=OPT,
        sweep=False,
    )
    tau_min: float = opt(0.5, "annealing floor (0.5)", group=OPT)
    anneal_rate: float = opt(
        0.0,
        "relaxed methods: tau = max(tau0*exp(-rate*step), tau-min), updated every "
        "--anneal-every batches (0: fixed tau, as the tutorial; the AIMLE reference uses 3e-5)",
        group=OPT,
    )
    anneal_every: int = opt(1000, "annealing period (1000)", group=OPT, type=positive_int)
    samples: int = opt(
        1,
        "samples per image in training; the reconstruction term is averaged (1)",
        group=MODEL,
        type=positive_int,
    )
    lam: float = opt(10.0, "imle: fixed λ, gradient divided by λ (10)", group=MODEL)
    beta_step: float = opt(1e-3, "aimle: β increment per batch (1e-3; β starts at 0)", group=MODEL)
    aimle_difference: str = opt(
        "forward", "aimle: finite difference, forward or central (forward)", group=MODEL
    )
    target_nnz: float = opt(
        10.0,
        "aimle: target non-zero gradient entries per sample (10)",
        group=MODEL,
        type=nonnegative_float,
    )
    seed: int = opt(0, "training seed (0)", group=RUN, sweep=False, type=seed_int)
    valid_size: int | None = opt(
        None,
        "validation images carved from the end of the training set "
        "(default 200 for digits, 0 for --data)",
        group=RUN,
        type=int,
    )
    max_train: int | None = opt(
        None, "use only the first N training images (all)", group=RUN, type=positive_int
    )

    def resolved(self) -> TrainConfig:
        """A copy with the latent sizes filled in from the method's model defaults."""
        check_renamed(self.method)
        if self.method not in METHODS:
            raise CLIError(f"unknown method {self.method!r}; choose among: {', '.join(METHODS)}")
        if self.aimle_difference not in ("forward", "central"):
            raise CLIError(
                f"--aimle-difference must be forward or central, got {self.aimle_difference!r}"
            )
        m, n, k = DEFAULT_LATENT[model_of(self.method)]
        return dataclasses.replace(
            self,
            latent_m=self.latent_m or m,
            latent_n=self.latent_n or n,
            k=self.k or k,
            hidden=tuple(self.hidden),
        )


def derived_latent(saved: dict[str, Any], method: str) -> list[str]:
    """The latent sizes of a saved config that came from its method's defaults.

    ``config.json`` holds :meth:`TrainConfig.resolved` values, so a run read
    back with ``--config`` under another ``--method`` would keep the old
    method's sizes (a 30 x 10 categorical latent for ``imle``, ``k`` 10 for
    ``st``). A saved size equal to its method's default is taken as derived:
    those are returned, to be derived again for ``method``; the others were
    chosen and stay. With the same method (a plain round trip) none are.

    Args:
        saved: the settings of ``config.json``.
        method: the method of the new run.
    """
    old = saved.get("method")
    if old == method or old not in METHODS or method not in METHODS:
        return []  # an unknown name gets its one-line error from resolved()
    defaults = DEFAULT_LATENT[model_of(old)]
    return [name for name, d in zip(LATENT, defaults, strict=True) if saved.get(name) == d]


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


def check_renamed(method: str) -> None:
    """A one-line error naming the new spelling of a renamed method (``aimle-central``)."""
    if method in RENAMED:
        raise CLIError(
            f"method {method!r} is now 'aimle' with --aimle-difference {RENAMED[method]}"
        )
