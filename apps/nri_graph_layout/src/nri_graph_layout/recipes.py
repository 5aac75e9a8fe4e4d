"""The recipes of ``reproduce`` and ``quickstart``: data sizes, training settings, restarts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CPU", "QUICK", "SMOKE", "Recipe"]


@dataclass(frozen=True)
class Recipe:
    """A data set size, training settings and the restart scheme.

    Attributes:
        num_train: training graphs.
        num_valid: validation graphs (checkpoint choice and restarts).
        num_test: test graphs (the table).
        iterations: total steps of the kept run.
        warmup: steps of each restart.
        restarts: runs started per method and seed.
        train: :class:`TrainConfig` fields shared by every run.
    """

    num_train: int
    num_valid: int
    num_test: int
    iterations: int
    warmup: int
    restarts: int
    train: dict[str, Any] = field(default_factory=dict)


_MODEL = {
    "encoder_hidden": 64,
    "decoder_hidden": 64,
    "batch_size": 64,
    "lr": 3e-3,
    "tau": 2.0,
    "tau_final": 0.5,
    "anneal_steps": 3000,
    "straight_through": True,
    "soft_steps": 300,
    "kl_shift": True,
    "select": "nll",
}
#: The CPU recipe: the stochastic softmax trick from three restarts (the best by
#: validation NLL is kept) to step 3000, where its precision has levelled off,
#: then reweighted wake-sleep over exact samples of the latent graph to step
#: 4500 (see :mod:`.rws` and the README for the times and the ablation).
CPU = Recipe(
    num_train=50_000,
    num_valid=1000,
    num_test=10_000,
    iterations=4500,
    warmup=800,
    restarts=3,
    train={
        **_MODEL,
        "lr_final": 1e-3,
        "lr_decay_steps": 3000,
        "rws_after": 3000,
        "rws_samples": 8,
        "eval_every": 500,
        "eval_batch_size": 500,
        "log_every": 100,
    },
)
#: The quickstart: the same model, one short run per method and seed (150
#: relaxed steps: faster to a positive start than 300 at this length).
QUICK = Recipe(
    num_train=20_000,
    num_valid=500,
    num_test=1000,
    iterations=1200,
    warmup=1200,
    restarts=1,
    train={
        **_MODEL,
        "soft_steps": 150,
        "eval_every": 300,
        "eval_batch_size": 500,
        "log_every": 50,
    },
)
#: Seconds of the whole pipeline on tiny data (tests).
SMOKE = Recipe(
    num_train=32,
    num_valid=16,
    num_test=16,
    iterations=4,
    warmup=2,
    restarts=2,
    train={
        **_MODEL,
        "encoder_hidden": 16,
        "decoder_hidden": 16,
        "batch_size": 8,
        "eval_every": 2,
        "eval_batch_size": 16,
        "log_every": 1,
        "soft_steps": 1,
        "rws_after": 3,
        "rws_samples": 2,
    },
)
