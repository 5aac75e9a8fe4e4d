"""Command line: ``python -m dvae {train,sweep,epochs} ...``.

Every user error (missing or malformed data file, unknown method, impossible
flag combination, ``--resume`` without a checkpoint) is one line on stderr and
exit code 2.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from structgrad_app_common import (
    CLIError,
    Column,
    SearchGroup,
    Sweep,
    format_mean_se,
    markdown_table,
    mean_se,
    positive_int,
    read_jsonl,
)
from structgrad_app_common.app_cli import (
    AppCLI,
    SweepCommand,
    TrainCommand,
    known_methods,
    method_groups,
)
from structgrad_app_common.cli import GIVEN, add_command
from structgrad_app_common.jsonl import is_number

from dvae.config import RUN, TrainConfig, check_renamed, derived_latent
from dvae.methods import method_names
from dvae.train import run

PROG = "dvae"
SMOKE = {"epochs": 2, "batch_size": 50, "hidden": (32, 16), "max_train": 200}
#: The sweep: each method's best (lr, τ) by mean validation loss, its test loss.
SWEEP = Sweep(
    TrainConfig,
    run,
    metrics=("valid_loss", "test_loss", "train_loss", "train_loss_hard", "seconds"),
    columns=(
        Column("test loss", "test_loss", digits=4),
        Column("valid loss", "valid_loss", digits=4),
        Column("train (unrelaxed)", "train_loss_hard", digits=4),
        Column("s", "seconds", decimals=0),
    ),
    score="valid_loss",
)


def _check_methods(args: argparse.Namespace) -> None:
    """Unknown or repeated methods; a renamed one says its new spelling, as ``train`` does."""
    for method in args.methods:
        check_renamed(method)
    known_methods(method_names)(args)


def _groups(args: argparse.Namespace, base: TrainConfig) -> Iterable[SearchGroup]:
    """One group per method; the sweep ranks by validation loss, so it needs a split."""
    if base.valid_size == 0:
        raise CLIError("the sweep ranks trials by validation loss: pass --valid-size N > 0")
    return method_groups()(args, base)


def _fields(args: argparse.Namespace, out: str) -> dict[str, Any]:
    """``--config RUN/config.json --method OTHER``: RUN's derived latent sizes derived again.

    A size given on the command line stays (see :func:`dvae.config.derived_latent`).
    """
    if not getattr(args, "config", None):  # sweep has no --config
        return {}
    saved = json.loads(Path(args.config).read_text())  # read back and checked already
    given: frozenset[str] = getattr(args, GIVEN, frozenset())
    return {name: None for name in derived_latent(saved, args.method) if name not in given}


def _value(record: Any, key: str) -> float | None:
    """A record's number ``key``; None (left out of the mean, "n/a" if none) where missing.

    A log edited by hand or written by another version may lack a field, or
    hold a line that is not an object or a value that is not a number.
    """
    value = record.get(key) if isinstance(record, dict) else None
    return value if is_number(value) else None


def epoch_table(folder: str | Path, *, every: int = 1) -> str:
    """Per-epoch mean ± SE over the seed runs ``<folder>/seed*/metrics.jsonl``.

    Args:
        folder: a trial folder of a sweep (or any folder of ``seed*`` runs).
        every: keep every ``every``-th epoch (and the last).

    Returns:
        A markdown table: epoch, training objective, unrelaxed training loss, test loss.

    Raises:
        CLIError: if the folder holds no run logs.
    """
    logs = [read_jsonl(p) for p in sorted(Path(folder).glob("seed*/metrics.jsonl"))]
    logs = [log for log in logs if log]
    if not logs:
        raise CLIError(f"{str(folder)!r} holds no seed*/metrics.jsonl run logs")
    last = min(len(log) for log in logs)
    keys = ("train_loss", "train_loss_hard", "test_loss")
    lines = []
    for e in range(last):
        if (e + 1) % every and e + 1 != last:
            continue
        cells = [format_mean_se(*mean_se(_value(log[e], k) for log in logs)[:2], 4) for k in keys]
        lines.append([e + 1, *cells])
    headers = ["epoch", "train (objective)", "train (unrelaxed)", f"test ({len(logs)} seeds)"]
    return markdown_table(headers, lines)


def cmd_epochs(args: argparse.Namespace) -> int:
    """Per-epoch losses (mean ± SE over seeds) of sweep trial folders.

    A markdown table per folder of seed*/metrics.jsonl runs (e.g.
    runs/sweep/st/trial0): training objective, unrelaxed training loss, test loss.
    """
    for folder in args.folders:
        print(f"{folder}\n\n{epoch_table(folder, every=args.every)}\n")
    return 0


def _add_epochs(sub: Any) -> None:
    p = add_command(sub, cmd_epochs)
    p.add_argument("folders", nargs="+", help="folders holding seed*/metrics.jsonl")
    p.add_argument("--every", type=positive_int, default=1, help="show every N-th epoch (1)")


APP = AppCLI(
    PROG,
    description="Discrete VAEs: the SGA tutorial's categorical VAE (30 x 10, Gumbel-softmax "
    "/ straight-through) and the AIMLE paper's k-subset VAE (20 x 10-of-20; AIMLE, IMLE, "
    "SST, STE, Gumbel top-k). Default data: scikit-learn's 8x8 digits, binarised.",
    train=TrainCommand(
        TrainConfig,
        run,
        smoke=SMOKE,
        smoke_help="seconds-long run of the whole pipeline: 2 epochs on 200 digits, hidden "
        "32,16, batch 50 (flags given win)",
        out="runs/{method}-seed{seed}",
        out_help="output folder (default: runs/<method>-seed<seed>)",
        help="train one method, evaluating every epoch",
        description="Train one method; writes config.json, metrics.jsonl (one record per "
        "epoch: relaxed and unrelaxed training loss, valid / test loss with exact samples), "
        "last.pt, final.json, curves.png, reconstructions.png and samples.png in --out.",
        run_group=RUN,
        fields=_fields,
    ),
    sweep=SweepCommand(
        SWEEP,
        help="random search over lr and τ with several seeds (joblib)",
        description="Log-uniform random search per method; the best (lr, τ) by mean final "
        "validation loss is reported as test loss mean ± standard error over seeds.",
        methods=["gumbel-softmax", "st"],
        trials=8,
        lr_range=(3e-4, 3e-3),
        tau_range=(0.3, 3.0),
        groups=_groups,
        check=_check_methods,
    ),
    commands=("train", "sweep", _add_epochs),
)

#: The parser of every subcommand, and the entry point (user errors: one stderr line, exit 2).
build_parser, main = APP.build_parser, APP.main
