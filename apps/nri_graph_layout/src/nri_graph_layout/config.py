"""The settings of one training run and their checks (before any work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from structgrad_app_common import (
    CLIError,
    RunControl,
    opt,
    positive_float,
    positive_int,
    positive_range,
    seed_int,
)
from structgrad_app_common.runcontrol import check_num_samples

from nri_graph_layout.methods import method_names, split_name
from nri_graph_layout.model import DECODER_EDGES

__all__ = ["SELECT", "TrainConfig", "check"]

# The groups of ``train --help``.
RUN, OPT, MODEL = "run", "optimisation", "model and estimator"

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
    method: str = opt(
        "tree-sst",
        f"latent graph and estimator (tree-sst); one of: {', '.join(method_names())}",
        group=RUN,
        sweep=False,
    )
    tau: float = opt(
        5.0, "temperature τ of relaxations / perturbations (5.0)", group=OPT, sweep=False
    )
    lr: float = opt(3e-4, "Adam learning rate (3e-4)", group=OPT, sweep=False, type=positive_float)
    batch_size: int = opt(128, "training batch size (128)", group=OPT, type=positive_int)
    iterations: int = opt(50_000, "optimiser steps (50000)", group=RUN, type=positive_int)
    eval_every: int = opt(
        500, "validate every N steps, and at steps 0 and last (500)", group=RUN, type=positive_int
    )
    eval_batch_size: int = opt(100, "evaluation batch size (100)", group=OPT, type=positive_int)
    log_every: int = opt(
        50, "log the mean training loss every N steps (50)", group=RUN, type=positive_int
    )
    seed: int = opt(42, "training seed (42)", group=RUN, sweep=False, type=seed_int)
    straight_through: bool = opt(
        False, "hard forward, relaxed backward (SST and indep only)", group=MODEL
    )
    symmetric: bool = opt(False, "indep: one sample per undirected edge", group=MODEL)
    aimle_difference: str | None = opt(
        None, "AIMLE finite difference (forward)", group=MODEL, choices=("forward", "central")
    )
    num_samples: int | None = opt(
        None, "samples per input (score-function methods only)", group=MODEL, type=positive_int
    )
    max_range: float | None = opt(
        15.0, "tree SST: clip scores R nats below the MAP (15, the reference's; 'inf': "
        "exact marginals)", group=MODEL,
        type=positive_range,
    )  # fmt: skip
    kl: str = opt(
        "gumbel",
        "KL term: Gumbel KL of the utilities (all methods) or NRI's categorical KL (indep only)",
        group=MODEL,
        choices=("gumbel", "categorical"),
    )
    encoder_hidden: int = opt(256, "encoder hidden units (256)", group=MODEL, type=positive_int)
    decoder_hidden: int = opt(256, "decoder hidden units (256)", group=MODEL, type=positive_int)
    var: float = opt(5e-5, "decoder Gaussian variance (5e-5)", group=MODEL, type=positive_float)
    prediction_steps: int | None = opt(
        None,
        "training rollout length P (default min(T-1, 10): the reference's 9 at T=10, 10 at T=20)",
        group=MODEL,
        type=positive_int,
    )
    tau_final: float | None = opt(
        None,
        "anneal τ geometrically from --tau to this value (default: constant τ)",
        group=OPT,
        type=positive_float,
    )
    anneal_steps: int = opt(3000, "steps of the τ annealing (3000)", group=OPT, type=positive_int)
    decoder_edges: str = opt(
        "complement",
        "decoder edge types: [1-x, x] as the reference (complement) "
        "or [1, x] (base: messages along every pair plus along the sampled edges)",
        group=MODEL,
        choices=DECODER_EDGES,
    )
    kl_shift: bool = opt(
        False,
        "tree / top-k: shift the scores by the constant that minimises the Gumbel KL "
        "(the laws ignore it; keeps the scores from drifting)",
        group=MODEL,
    )
    select: str = opt(
        "elbo",
        "checkpoint criterion on the validation set: elbo (the reference), "
        "nll (hard samples; tracks structure) or precision (uses the true edges)",
        group=MODEL,
        choices=tuple(SELECT),
    )
    soft_steps: int = opt(
        0,
        "with --straight-through: relaxed forward samples for the first N steps (0)",
        group=MODEL,
    )
    lr_final: float | None = opt(
        None,
        "decay the learning rate geometrically to this value (default: constant)",
        group=OPT,
        type=positive_float,
    )
    lr_decay_steps: int = opt(
        20_000, "steps of the learning-rate decay (20000)", group=OPT, type=positive_int
    )
    rws_after: int | None = opt(
        None,
        "from step N on, train with reweighted wake-sleep over exact samples of the "
        "latent graph instead of the method's estimator (the recipe's refinement; off)",
        group=MODEL,
        type=int,
    )
    rws_samples: int = opt(
        8, "graphs drawn per trajectory in the reweighted wake-sleep steps (8)", group=MODEL
    )

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
    check_num_samples(split_name(config.method)[1], config.num_samples, config.method)
