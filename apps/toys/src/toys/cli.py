"""Command line: ``python -m toys {run,all} ...``.

Every user error (unknown structure or estimator, an estimator that does not
apply to the structure, impossible flags, ``--resume`` without a checkpoint)
is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from structgrad_app_common import (
    ArgumentParser,
    add_config_flags,
    add_joblib_flags,
    add_resume_flags,
    add_run_flags,
    config_from_args,
    print_failures,
    run_command,
)

from toys.config import EST, OPT, TOY, RunConfig
from toys.methods import ESTIMATORS, PATHWISE, PATHWISE_STRUCTURES
from toys.problems import STRUCTURES

__all__ = ["build_parser", "main"]

PROG = "toys"
#: ``--smoke``: the whole pipeline in about a second per run.
SMOKE = {"dim": 5, "iters": 20, "eval_every": 10, "num_mc": 4}


def _add_run_flags(p: argparse.ArgumentParser, *, run: bool) -> None:
    for title in (TOY, OPT, EST):  # the groups in --help order
        p.add_argument_group(title)
    add_config_flags(p, RunConfig)
    r = p.add_argument_group("run control")
    if run:  # one run: --config FILE, --stop-after, --no-progress too
        add_run_flags(r, unit="step")
    else:
        add_run_flags(r)
        add_resume_flags(r, unit="step", stop_after=False, progress=False)
    r.add_argument(
        "--smoke",
        action="store_true",
        help="seconds-long run of the whole pipeline: "
        + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in SMOKE.items())
        + " (flags set explicitly win)",
    )


def _config(args: argparse.Namespace, **fields: object) -> RunConfig:
    return config_from_args(RunConfig, args, SMOKE, **fields)


def cmd_run(args: argparse.Namespace) -> int:
    """Train one estimator on one toy; print the final JSON."""
    from toys.methods import check
    from toys.train import run

    check(args.structure, args.estimator)
    out = args.out or f"runs/{args.structure}/{args.estimator}-seed{args.seed}"
    config = _config(args, structure=args.structure, estimator=args.estimator, out=out)
    print(json.dumps(run(config), indent=2))
    return 0


def cmd_all(args: argparse.Namespace) -> int:
    """Every structure × estimator × seed in parallel; print the table."""
    from toys.sweep import run_all

    t0 = time.perf_counter()
    base = _config(args, structure=STRUCTURES[0], estimator=ESTIMATORS[0], out=args.out)
    results, md = run_all(
        base,
        args.structures,
        args.estimators,
        args.seeds,
        n_jobs=args.n_jobs,
        backend=args.backend,
    )
    print_failures(results, lambda r: f"{r['structure']}/{r['estimator']} seed {r['seed']}")
    print(md)
    out = Path(args.out)
    print(f"\ntable: {out / 'table.md'}\nplots: " + " ".join(
        str(out / f"{s}.png") for s in args.structures if (out / f"{s}.png").exists()
    ))  # fmt: skip
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = ArgumentParser(
        prog=PROG,
        description="Recursive Gumbel-max toys (Struminsky et al. 2021) and the IMLE synthetic "
        "top-k problem (Niepert et al. 2021): minimise the expected loss of a structure "
        "from logits at zero with every gradient estimator that applies.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    p = sub.add_parser(
        "run",
        help="train one estimator on one structure",
        description="Writes metrics.jsonl (mean loss and gradient std per evaluation), "
        "last.pt, config.json, final.json and curve.png in --out.",
    )
    p.add_argument("--structure", required=True, help=f"one of: {', '.join(STRUCTURES)}")
    p.add_argument(
        "--estimator",
        required=True,
        help=f"one of: {', '.join(ESTIMATORS)} ({', '.join(PATHWISE)} only for "
        f"{' and '.join(PATHWISE_STRUCTURES)})",
    )
    p.add_argument("--out", help="output folder (default runs/<structure>/<estimator>-seed<seed>)")
    _add_run_flags(p, run=True)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser(
        "all",
        help="every structure × estimator (× seed) through joblib, with the table",
        description="Runs every applicable (structure, estimator) pair, writes one PNG per "
        "structure and table.md: loss at 1k/2k/5k/final steps and the first step within "
        "0.5 of the optimum, beside the reference numbers in parentheses (--dim 10 only).",
    )
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
    p.add_argument("--seeds", type=int, nargs="+", default=[23], help="training seeds (23)")
    add_joblib_flags(p)
    _add_run_flags(p, run=False)
    p.set_defaults(func=cmd_all)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run, and turn user errors into one line + exit code 2."""
    return run_command(build_parser, argv, prog=PROG, single_thread_env=False)
