"""Command line: ``python -m l2x {train,eval,sweep} ...`` (or the ``l2x`` script).

Every user error (missing or malformed data, unknown task or method, a flag
that does not apply, ``--resume`` without a checkpoint) is one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from structgrad_app_common import (
    CLIError,
    Column,
    SearchGroup,
    Sweep,
    check_names,
    json_safe,
    load_checkpoint,
    positive_int,
)
from structgrad_app_common.app_cli import AppCLI, SweepCommand, TrainCommand
from structgrad_app_common.cli import add_command, read_back
from structgrad_app_common.training import load_entry

from l2x.config import DATA, METHOD, RUN, TrainConfig, check
from l2x.methods import DEFAULT_TAU, method_names, resolve
from l2x.tasks import TASKS
from l2x.train import run, setup

PROG = "l2x"
SMOKE = {"num_train": 256, "num_valid": 64, "num_test": 128, "epochs": 2, "batch_size": 64}
#: The sweep: each (task, method)'s best setting by mean validation loss, its
#: test metrics (the synthetic tasks' or BeerAdvocate's, whichever ran).
SWEEP = Sweep(
    TrainConfig,
    run,
    metrics=(
        *("valid_loss", "test_accuracy", "test_precision", "test_median_rank"),
        *("test_mse", "test_subset_precision", "seconds"),
    ),
    columns=(
        Column("accuracy", "test_accuracy", optional=True),
        Column("precision", "test_precision", optional=True),
        Column("median rank", "test_median_rank", optional=True),
        Column("MSE ×100", "test_mse", scale=100, optional=True),
        Column("subset precision ×100", "test_subset_precision", scale=100, optional=True),
        Column("s / run", "seconds", decimals=0),
    ),
    score="valid_loss",
    by=("task", "method"),
    default_tau=DEFAULT_TAU,
    failure=None,
)


def cmd_eval(args: argparse.Namespace) -> int:
    """Score a trained run on validation and test.

    Rebuilds the run's data from its config.json (beer: --data may point to the
    folder's new place) and prints JSON.
    """
    run_dir = Path(args.run)
    ckpt = run_dir / f"{args.checkpoint}.pt"
    if not (run_dir / "config.json").is_file() or not ckpt.is_file():
        raise CLIError(f"{str(run_dir)!r} holds no run (config.json and {ckpt.name} needed)")
    try:
        saved = json.loads((run_dir / "config.json").read_text())
        app = saved.pop("app", PROG)  # write_config's tag
        if app != PROG:
            raise TypeError(f"written by {app!r}, not {PROG}")
    except (json.JSONDecodeError, TypeError, AttributeError) as err:
        raise CLIError(f"{run_dir / 'config.json'}: not a run configuration ({err})") from None
    # Read back as 'train --config' reads it: every saved value gets its flag's
    # checks, so a hand-edited "data_seed": 0.5 is one line, not a TypeError later.
    argv = [APP.train.name, "--config", str(run_dir / "config.json")]
    parser = build_parser()
    read_back(parser, argv)
    train_args = parser.parse_args(argv)
    config = APP.config(train_args, train_args.out or str(run_dir))
    if args.data:
        config = dataclasses.replace(config, data=args.data)
    if args.device:
        config = dataclasses.replace(config, device=args.device)
    check(dataclasses.replace(config, resume=False))
    task, spec, model = setup(config)
    load_entry(model, load_checkpoint(ckpt), "model", str(ckpt))
    result: dict[str, Any] = {
        "run": str(run_dir),
        "checkpoint": ckpt.name,
        "task": task.name,
        "method": spec.name,
    }
    for split in ("valid", "test"):
        res = task.evaluate(model, split, args.eval_batch_size)
        result.update({f"{split}_{k}": v for k, v in res.items()})
    print(json.dumps(json_safe(result), indent=2))
    return 0


def _check_names(args: argparse.Namespace) -> None:
    """Unknown or repeated tasks and methods (a repeat would count its runs as more seeds)."""
    check_names("task", args.tasks, TASKS, phrase="choose one of")
    check_names("method", args.methods, method_names())


def _groups(args: argparse.Namespace, base: TrainConfig) -> list[SearchGroup]:
    """Every (task, method); τ is searched for the methods that have one.

    With a τ range, the others keep ``--tau`` (none: the method's default).
    """
    for method in args.methods:  # an unknown method or option: one line, before any run
        resolve(
            method, k=2, n=10, aimle_difference=base.aimle_difference, num_samples=base.num_samples
        )
    # --data is the beer task's (the synthetic runs refused it one by one, and the
    # beer runs without it): given to the beer runs only, and checked before any run.
    if "beer" in args.tasks or base.data:
        check(dataclasses.replace(base, task="beer" if "beer" in args.tasks else args.tasks[0]))
    return [
        SearchGroup(
            (task, method),
            {"task": task, "method": method, "data": base.data if task == "beer" else None},
            tau=method in DEFAULT_TAU,
        )
        for task in args.tasks
        for method in args.methods
    ]


def _add_eval(sub: Any) -> None:
    p = add_command(sub, cmd_eval)
    p.add_argument("--run", required=True, help="a folder written by 'train'")
    p.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="which checkpoint (best: lowest validation loss)",
    )
    p.add_argument("--data", help="beer: BeerAdvocate folder (default: the one of the run)")
    p.add_argument("--device", help="torch device (default: the run's; cpu, cuda)")
    p.add_argument("--eval-batch-size", type=positive_int, default=1000, help="batch size (1000)")


APP = AppCLI(
    PROG,
    description="Learning to explain (Chen et al. 2018) with the k-subset methods of "
    "structgrad: synthetic tasks and BeerAdvocate.",
    train=TrainCommand(
        TrainConfig,
        run,
        smoke=SMOKE,
        smoke_help="seconds-long run: 256/64/128 synthetic instances, 2 epochs, batch 64",
        out="runs/{task}-{method}-seed{seed}",
        out_help="output folder (default runs/<task>-<method>-seed<seed>)",
        help="train and test one method on one task",
        description="Writes metrics.jsonl (one record per epoch), last.pt, "
        "best.pt, config.json, final.json, curves.png and, for synthetic "
        "tasks, selection.png in --out.",
        run_group=RUN,
        groups=(DATA, METHOD, RUN),
    ),
    sweep=SweepCommand(
        SWEEP,
        help="random search and seeds over tasks x methods (joblib)",
        description="For every (task, method), --trials settings (lr log-uniform, τ "
        "log-uniform if --tau-range) are trained with every seed; the best "
        "setting by mean validation loss is reported as test mean ± standard "
        "error. A LOW=HIGH range fixes a value (a plain multi-seed comparison). "
        "Writes sweep.jsonl, summary.json and table.md in --out.",
        methods=["sst", "imle", "aimle", "ste"],
        trials=8,
        lr_range=(3e-4, 3e-3),
        tau_range=None,
        groups=_groups,
        methods_help="methods",
        flags=lambda p: p.add_argument(
            "--tasks", nargs="+", default=["orange_skin"], help="tasks (orange_skin)"
        ),
        check=_check_names,
        fields=lambda args: {"task": args.tasks[0], "method": "sst"},
    ),
    commands=("train", _add_eval, "sweep"),
)

#: The parser of every subcommand, and the entry point (user errors: one stderr line, exit 2).
build_parser, main = APP.build_parser, APP.main
