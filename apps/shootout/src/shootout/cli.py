"""``python -m shootout``: the estimator shootout table, JSONL rows and heat-maps."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from structgrad_app_common import (
    ArgumentParser,
    CLIError,
    JsonlLogger,
    add_config_flag,
    add_config_flags,
    atomic_write_text,
    check_bounds,
    config_from_args,
    read_back,
    read_jsonl,
    run_main,
)
from structgrad_app_common.runcontrol import check_device, check_run_flags
from tqdm import tqdm

from .estimators import ESTIMATORS
from .plots import heatmap
from .problems import SIZES, STRUCTURES
from .run import Config, markdown, pairs, run

__all__ = ["main", "parser"]

#: Estimator names of earlier versions → their one spelling (structgrad.models.METHODS).
RENAMED = {"aimle-fwd": "aimle", "reinforce-ema": "reinforce"}

PROG = "shootout"
SMOKE_STRUCTURES = ("categorical", "arborescence")
#: ``--smoke``: a run of a few seconds (flags set to other values win).
SMOKE = {"draws": 200, "warmup": 5, "reference_samples": 20_000}


def _names(values: list[str] | None) -> list[str] | None:
    """Accept both ``--x a b`` and ``--x a,b``."""
    if values is None:
        return None
    return [v for value in values for v in value.split(",") if v]


def parser() -> ArgumentParser:
    """The argument parser (every flag explained in ``--help``)."""
    sizes = ", ".join(
        f"{s} n={n}" + "".join(f" {k}={v}" for k, v in o.items()) for s, (n, o) in SIZES.items()
    )
    estimators = "; ".join(f"{name}: {spec.describe}" for name, spec in ESTIMATORS.items())
    p = ArgumentParser(
        prog=PROG,
        description="Bias (cosine, relative bias, max |z|), variance and time of every gradient "
        "estimator on every structure, against exact gradients of E[f(X)] for a fixed random "
        "linear-plus-quadratic f. Writes DIR/shootout.md, DIR/rows.jsonl, DIR/config.json and "
        "DIR/heatmap_cosine.png, DIR/heatmap_logvar.png.",
    )
    p.add_argument(
        "--structures",
        nargs="+",
        metavar="S",
        default=None,
        help=f"structures to run, space- or comma-separated (default all: {sizes}; "
        f"{', '.join(SMOKE_STRUCTURES)} with --smoke)",
    )
    p.add_argument(
        "--estimators",
        nargs="+",
        metavar="E",
        default=None,
        help=f"estimators to run (default all; pairs that do not apply are skipped): {estimators}",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="a run of a few seconds: 200 draws, 20000 reference samples, "
        "5 warm-up steps, two structures",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs/shootout"),
        metavar="DIR",
        help="output directory (default runs/shootout)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="J",
        help="pairs evaluated in parallel by joblib processes (default 1)",
    )
    add_config_flags(p, Config)
    add_config_flag(p)
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows of DIR/rows.jsonl measured with the same settings and "
        "only run the missing pairs (rows of pairs outside the selection stay in the file)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh even if DIR/rows.jsonl holds rows (without it, or --resume, "
        "an existing rows.jsonl is an error)",
    )
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p


def _config(args: Any) -> Config:
    config = config_from_args(Config, args, SMOKE)
    check_bounds(config, Config.BOUNDS)
    check_device(config.device)
    check_run_flags(resume=args.resume, overwrite=args.overwrite, stop_after=None)
    if args.jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {args.jobs}")
    return config


def _chosen(args: Any) -> tuple[list[str], list[str]]:
    """The structures and the estimators to run (``--smoke``: its two structures by default)."""
    structures = _names(args.structures) or list(SMOKE_STRUCTURES if args.smoke else STRUCTURES)
    return structures, _names(args.estimators) or list(ESTIMATORS)


def _selection(structures: list[str], estimators: list[str]) -> list[tuple[str, str]]:
    """The applicable (structure, estimator) pairs; one-line errors for unknown names."""
    for s in structures:
        if s not in SIZES:
            raise CLIError(f"unknown structure {s!r}; choose from {', '.join(STRUCTURES)}")
    for e in estimators:
        if e in RENAMED:
            raise CLIError(f"estimator {e!r} is now called {RENAMED[e]!r}")
        if e not in ESTIMATORS:
            raise CLIError(f"unknown estimator {e!r}; choose from {', '.join(ESTIMATORS)}")
    todo = pairs(dict.fromkeys(structures), dict.fromkeys(estimators))
    if not todo:
        raise CLIError(
            f"no estimator of {', '.join(estimators)} applies to {', '.join(structures)} "
            "(binary_tree takes score-function estimators only)"
        )
    return todo


def _kept(
    path: Path, config: Config, todo: list[tuple[str, str]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of ``path`` to reuse (selected pairs, same settings) and those left alone.

    Rows of pairs outside the selection stay in the file whatever their settings;
    a selected pair measured with other settings, or whose row the table cannot
    show (a hand-edited one), is measured again (its row goes).
    """
    if not path.exists():
        return [], []
    try:
        rows = [r for r in read_jsonl(path) if isinstance(r, dict)]
    except (OSError, UnicodeDecodeError) as err:
        raise CLIError(f"cannot resume from {path}: {err}") from None
    want = {f"config_{k}": v for k, v in dataclasses.asdict(config).items()}
    wanted = set(todo)
    reused, others = [], []
    for r in rows:
        if (r.get("structure"), r.get("estimator")) not in wanted:
            others.append(r)
        elif all(r.get(k) == v for k, v in want.items()) and _usable(r):
            reused.append(r)
    return reused, others


#: The measurements of a row (``null`` in the JSONL: inf).
NUMBERS = ("cosine", "rel_bias", "max_z", "total_var", "us_per_draw", "ms_per_call")


def _usable(row: dict[str, Any]) -> bool:
    """The row's measurements are numbers (or ``null``: inf) and the table shows it."""
    if not all(isinstance(row.get(k), int | float | None) for k in NUMBERS):
        return False
    try:
        markdown([row])
    except (KeyError, TypeError, ValueError):
        return False
    return True


def _main(argv: Sequence[str] | None) -> int:
    p = parser()
    read_back(p, sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    config = _config(args)
    structures, estimators = _chosen(args)
    todo = _selection(structures, estimators)
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "rows.jsonl"
    if log_path.exists() and not (args.resume or args.overwrite):
        raise CLIError(f"{str(log_path)!r} already holds rows; pass --resume or --overwrite")
    kept, others = _kept(log_path, config, todo) if args.resume else ([], [])
    done = {(r["structure"], r["estimator"]) for r in kept}
    missing = [p for p in todo if p not in done]
    with (
        JsonlLogger(log_path) as log,
        tqdm(
            total=len(todo), initial=len(done), desc="pairs", unit="pair", disable=args.no_progress
        ) as bar,
    ):
        for r in [*others, *kept]:  # rewritten: other pairs' rows stay
            log.log(r)
        # Rows are logged as each batch of pairs finishes, so an interrupted
        # run resumes from them.
        new = run(missing, config, jobs=args.jobs, progress=bar.update, record=log.log)
    by_pair = {(r["structure"], r["estimator"]): r for r in [*kept, *new]}
    rows = [by_pair[p] for p in todo]
    table = markdown(rows)
    command = "python -m shootout " + " ".join(sys.argv[1:] if argv is None else argv)
    header = (
        f"<!-- {command.strip()} -->\n"
        f"draws per pair: {config.draws}, seed {config.seed}, tau {config.tau}, "
        f"warm-up {config.warmup}, perturb-and-MAP reference samples "
        f"{config.reference_samples}\n\n"
    )
    atomic_write_text(out / "shootout.md", header + table + "\n")
    # The selection is no Config field (rows and --resume compare Config only),
    # yet --config reads it back like the settings: flags given win.
    selection = {"structures": structures, "estimators": estimators}
    tagged = {"app": PROG, **dataclasses.asdict(config), **selection}  # app: what --config checks
    atomic_write_text(out / "config.json", json.dumps(tagged, indent=2) + "\n")
    heatmap(rows, out / "heatmap_cosine.png", metric="cosine")
    heatmap(rows, out / "heatmap_logvar.png", metric="logvar")
    print(table)
    print(
        f"wrote {out / 'shootout.md'}, {log_path}, {out / 'heatmap_cosine.png'}, "
        f"{out / 'heatmap_logvar.png'}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user mistakes exit with one error line and code 2."""
    return run_main(_main, argv, prog=PROG)
