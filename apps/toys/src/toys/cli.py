"""Command line: ``python -m toys {run,all} ...``.

Every user error (unknown structure or estimator, an estimator that does not
apply to the structure, impossible flags, ``--resume`` without a checkpoint)
is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from structgrad_app_common import (
    CLIError,
    add_joblib_flags,
    print_failures,
    seed_int,
    sweep_exit_code,
)
from structgrad_app_common.app_cli import AppCLI, TrainCommand
from structgrad_app_common.cli import add_command
from structgrad_app_common.runcontrol import check_device, check_run_flags, check_unique

from toys.config import EST, OPT, TOY, RunConfig
from toys.methods import ESTIMATORS, PATHWISE, PATHWISE_STRUCTURES, check
from toys.problems import STRUCTURES
from toys.sweep import run_all
from toys.train import run

__all__ = ["build_parser", "main"]

PROG = "toys"
#: ``--smoke``: the whole pipeline in about a second per run.
SMOKE = {"dim": 5, "iters": 20, "eval_every": 10, "num_mc": 4}


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """``run``'s own flags: the structure, the estimator and the run folder."""
    p.add_argument("--structure", required=True, help=f"one of: {', '.join(STRUCTURES)}")
    p.add_argument(
        "--estimator",
        required=True,
        help=f"one of: {', '.join(ESTIMATORS)} ({', '.join(PATHWISE)} only for "
        f"{' and '.join(PATHWISE_STRUCTURES)})",
    )
    p.add_argument("--out", help="output folder (default runs/<structure>/<estimator>-seed<seed>)")


def cmd_all(args: argparse.Namespace) -> int:
    """Every structure × estimator (× seed) through joblib, with the table.

    Runs every applicable (structure, estimator) pair, writes one PNG per
    structure and table.md: loss at 1k/2k/5k/final steps and the first step
    within 0.5 of the optimum, beside the reference numbers in parentheses
    (--dim 10 only).
    """
    t0 = time.perf_counter()
    check_run_flags(resume=args.resume, overwrite=args.overwrite, stop_after=None)
    if args.seed != RunConfig.seed:  # a run's flag: `all` trains every seed of --seeds
        raise CLIError(f"--seed {args.seed}: `all` takes --seeds (e.g. --seeds {args.seed})")
    base = APP.config(args, args.out, structure=STRUCTURES[0], estimator=ESTIMATORS[0])
    check_device(base.device)  # before any run: each would fail the same way
    check_unique("seed", args.seeds)
    results, md = run_all(
        base,
        args.structures,
        args.estimators,
        args.seeds,
        n_jobs=args.n_jobs,
        backend=args.backend,
        scheduler=args.scheduler,
    )
    print_failures(results, lambda r: f"{r['structure']}/{r['estimator']} seed {r['seed']}")
    print(md)
    out = Path(args.out)
    print(f"\ntable: {out / 'table.md'}\nplots: " + " ".join(
        str(out / f"{s}.png") for s in args.structures if (out / f"{s}.png").exists()
    ))  # fmt: skip
    print(f"total {time.perf_counter() - t0:.0f} s")
    return sweep_exit_code(results, PROG)


def _add_all(sub: Any) -> None:
    p = add_command(sub, cmd_all)
    p.add_argument("--out", default="runs/all", help="sweep folder (runs/all)")
    p.add_argument(
        "--structures",
        nargs="+",
        default=list(STRUCTURES),
        help=f"structures to run (all: {' '.join(STRUCTURES)})",
    )
    p.add_argument(
        "--estimators",
        nargs="+",
        help="estimators to run where they apply (default: all that apply)",
    )
    p.add_argument("--seeds", type=seed_int, nargs="+", default=[23], help="training seeds (23)")
    add_joblib_flags(p, scheduler=True)
    APP.add_flags(p, sweep=True)


APP = AppCLI(
    PROG,
    description="Recursive Gumbel-max toys (Struminsky et al. 2021) and the IMLE synthetic "
    "top-k problem (Niepert et al. 2021): minimise the expected loss of a structure "
    "from logits at zero with every gradient estimator that applies.",
    train=TrainCommand(
        RunConfig,
        run,
        smoke=SMOKE,
        smoke_help="seconds-long run of the whole pipeline: "
        + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in SMOKE.items())
        + " (flags set explicitly win)",
        out="runs/{structure}/{estimator}-seed{seed}",
        out_help=None,
        help="train one estimator on one structure",
        description="Writes metrics.jsonl (mean loss and gradient std per evaluation), "
        "last.pt, config.json, final.json and curve.png in --out.",
        run_group="run control",
        groups=(TOY, OPT, EST, "run control"),
        unit="step",
        name="run",
        flags=_add_run_flags,
        check=lambda args: check(args.structure, args.estimator),
        config_first=True,
        batch_resume=True,
    ),
    commands=("run", _add_all),
    single_thread_env=False,
)

#: The parser of every subcommand, and the entry point (user errors: one stderr line, exit 2).
build_parser, main = APP.build_parser, APP.main
