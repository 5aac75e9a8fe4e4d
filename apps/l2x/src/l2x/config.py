"""The settings of one (task, method, seed) run and their checks (before any work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from structgrad_app_common import CLIError, RunControl, opt, positive_float, positive_int, seed_int
from structgrad_app_common.runcontrol import check_num_samples

from l2x.methods import method_names
from l2x.tasks import TASKS

__all__ = ["TrainConfig", "check"]

# The groups of ``train --help``.
DATA, METHOD, RUN = "data", "method", "run"


@dataclass
class TrainConfig(RunControl):
    """Everything one run needs (JSON-serialisable; see ``l2x train --help``)."""

    BOUNDS: ClassVar = {
        **dict.fromkeys(("epochs", "batch_size", "eval_batch_size"), ">= 1"),
        "num_train": ">= 2",  # BatchNorm trains on batches of two or more
        **dict.fromkeys(("num_valid", "num_test"), ">= 1"),
        **dict.fromkeys(("lr", "lam"), "> 0"),  # (λ = NaN was taken and saved)
    }
    FREE: ClassVar = ("data", "epochs", "eval_batch_size", "num_valid", "num_test")

    out: str
    task: str = opt(
        "orange_skin", f"task (orange_skin); one of: {', '.join(TASKS)}", group=DATA, sweep=False
    )
    method: str = opt(
        "sst",
        f"k-subset method (sst); one of: {', '.join(method_names())}",
        group=METHOD,
        sweep=False,
    )
    data: str | None = opt(
        None, "beer only: folder with the BeerAdvocate files (see README)", group=DATA
    )
    aspect: int = opt(1, "beer: rating column / aspect (1, aroma)", group=DATA)
    max_len: int = opt(350, "beer: tokens per review (350)", group=DATA, type=positive_int)
    k: int | None = opt(
        None,
        "features / tokens to select (task default: xor 2, orange_skin 4, "
        "nonlinear_additive 4, switch 5, beer 10)",
        group=METHOD,
        type=positive_int,
    )
    tau: float | None = opt(
        None,
        "relaxation or noise temperature (default per method, see README)",
        group=METHOD,
        sweep=False,
        type=float,
    )
    lam: float | None = opt(None, "λ of imle and blackbox (10)", group=METHOD, type=float)
    aimle_difference: str | None = opt(
        None, "AIMLE finite difference (central)", group=METHOD, choices=("forward", "central")
    )
    num_samples: int | None = opt(
        None, "samples per input (score-function methods)", group=METHOD, type=positive_int
    )
    epochs: int = opt(10, "training epochs (10)", group=RUN, type=positive_int)
    batch_size: int = opt(100, "batch size (100)", group=RUN, type=positive_int)
    eval_batch_size: int = opt(1000, "evaluation batch (1000)", group=RUN, type=positive_int)
    lr: float = opt(
        1e-3, "Adam learning rate (1e-3)", group=METHOD, sweep=False, type=positive_float
    )
    seed: int = opt(0, "training seed (0)", group=METHOD, sweep=False, type=seed_int)
    data_seed: int = opt(0, "synthetic data seed (0)", group=DATA, type=seed_int)
    num_train: int = opt(50_000, "synthetic train size (50000)", group=DATA, type=positive_int)
    num_valid: int = opt(5_000, "synthetic valid size (5000)", group=DATA, type=positive_int)
    num_test: int = opt(10_000, "synthetic test size (10000)", group=DATA, type=positive_int)


def check(config: TrainConfig) -> None:
    """One-line errors for impossible settings, before any work."""
    if config.task not in TASKS:
        raise CLIError(f"unknown task {config.task!r}; choose one of: {', '.join(TASKS)}")
    if config.task == "beer" and not config.data:
        raise CLIError("--data is required for the beer task (a BeerAdvocate folder)")
    if config.task != "beer" and config.data:
        raise CLIError(f"--data applies to the beer task only ({config.task!r} is generated)")
    config.check_settings()
    check_num_samples(config.method, config.num_samples)
