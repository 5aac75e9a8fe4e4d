"""Command line: ``python -m nri_graph_layout {generate,train,sweep,reproduce,quickstart} ...``.

Every user error (missing or malformed data file, unknown method, impossible
flag combination, ``--resume`` without a checkpoint) is one line on stderr and
exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from structgrad_app_common import (
    CLIError,
    Column,
    Sweep,
    add_joblib_flags,
    check_names,
    positive_int,
    seed_int,
)
from structgrad_app_common.app_cli import (
    AppCLI,
    SweepCommand,
    TrainCommand,
    known_methods,
    method_groups,
)
from structgrad_app_common.cli import add_command
from structgrad_app_common.flags import config_from_args
from structgrad_app_common.runcontrol import check_device, check_unique

from nri_graph_layout import data as data_mod
from nri_graph_layout import reproduce as rep
from nri_graph_layout.config import MODEL, OPT, RUN, TrainConfig, check
from nri_graph_layout.flags import SMOKE_TRAIN, add_generate_flags, data_path, generate_config
from nri_graph_layout.methods import method_names, resolve_config
from nri_graph_layout.train import run

PROG = "nri_graph_layout"
#: The sweep: each method's best (lr, τ) by mean validation ELBO, its test metrics.
SWEEP = Sweep(
    TrainConfig,
    run,
    metrics=("valid_elbo", "test_elbo", "test_precision", "test_recall", "seconds"),
    columns=(
        Column("test ELBO", "test_elbo"),
        Column("edge precision", "test_precision"),
        Column("edge recall", "test_recall"),
        Column("valid ELBO", "valid_elbo"),
        Column("s / run", "seconds", decimals=0),
    ),
    score="valid_elbo",
    higher=True,
    keep=("test_accuracy", "diverged", "plots"),
)


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate a graph-layout data set (.npz).

    Random trees (max spanning tree of Gumbel weights) laid out by
    Fruchterman-Reingold, one spring iteration per frame, rescaled to [-1, 1].
    """
    config = generate_config(args)
    out = Path(args.out) if args.out else Path("data") / data_mod.default_filename(config)
    if out.is_dir():
        raise CLIError(f"--out {str(out)!r} is a folder; give the .npz file to write")
    t0 = time.perf_counter()
    arrays = data_mod.generate(config, progress=not args.no_progress)
    data_mod.save(out, arrays)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    return 0


def _fields(args: argparse.Namespace, out: str) -> dict[str, str]:
    """The run folder as a path, and the data set (the smoke data made there)."""
    if Path(out).exists() and not Path(out).is_dir():  # before the smoke data goes there
        raise CLIError(f"--out {out!r} is a file, not a folder")
    if args.smoke and not args.data:  # the settings' checks, before the smoke data is written
        base = config_from_args(TrainConfig, args, SMOKE_TRAIN, out=out, data=str(out))
        for method in getattr(args, "methods", None) or [base.method]:  # a sweep's, or train's
            check(dataclasses.replace(base, method=method))
    return {"out": str(Path(out)), "data": data_path(args, Path(out))}


def _has_tau(method: str, base: TrainConfig) -> bool:
    """Whether ``method`` has a τ (else its runs keep ``--tau``)."""
    return resolve_config(base, 2, method).has_tau


def _recipe(args: argparse.Namespace, base: Any) -> Any:
    """The recipe of ``reproduce`` / ``quickstart`` with the flags' overrides.

    ``--smoke`` picks the tiny recipe; the flags given win over it as over any.
    """
    recipe = rep.SMOKE if args.smoke else base
    changes = {k: getattr(args, k) for k in ("iterations", "restarts", "warmup")}
    changes = {k: v for k, v in changes.items() if v is not None}
    check_device(args.device)
    recipe = dataclasses.replace(recipe, **changes, train={**recipe.train, "device": args.device})
    if recipe.restarts > 1 and recipe.warmup > recipe.iterations:
        raise CLIError("--warmup must not exceed --iterations")
    return recipe


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Train the CPU recipe for every method and seed; print and save the table."""
    check_names("method", args.methods, method_names())
    check_unique("seed", args.seeds)
    rep.reproduce(
        _recipe(args, rep.CPU), args.methods, args.seeds, data_seed=args.data_seed,
        out=Path(args.out), n_jobs=args.n_jobs, backend=args.backend, smoke=args.smoke,
        scheduler=args.scheduler,
    )  # fmt: skip
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    """The reproduction's short version: tree SST and indep, the table and the plots."""
    check_unique("seed", args.seeds)
    rows = rep.reproduce(
        _recipe(args, rep.QUICK), ["tree-sst", "indep"], args.seeds, data_seed=args.data_seed,
        out=Path(args.out), n_jobs=args.n_jobs, backend=args.backend, smoke=args.smoke,
        scheduler=args.scheduler,
    )  # fmt: skip
    print("\nplots:")
    for r in rows:
        final = json.loads((Path(r["out"]) / "final.json").read_text())
        print(f"  {r['method']} seed {r['seed']}: {final['plots']['curves']}  "
              f"{final['plots']['graph']}")  # fmt: skip
    return 0


def _add_recipe_flags(p: argparse.ArgumentParser, *, out: str, seeds: list[int]) -> None:
    """Flags shared by ``reproduce`` and ``quickstart``."""
    p.add_argument("--out", default=out, help=f"output folder ({out})")
    p.add_argument(
        "--seeds", type=seed_int, nargs="+", default=seeds,
        help=f"training seeds ({' '.join(map(str, seeds))})",
    )  # fmt: skip
    p.add_argument("--data-seed", type=seed_int, default=42, help="seed of the generated data (42)")
    p.add_argument("--iterations", type=positive_int, help="steps of each kept run (the recipe's)")
    p.add_argument("--warmup", type=positive_int, help="steps of each restart (the recipe's)")
    p.add_argument(
        "--restarts", type=positive_int, help="runs started per method and seed (the recipe's)"
    )
    p.add_argument(
        "--smoke", action="store_true", help="the whole pipeline on tiny data in seconds"
    )
    p.add_argument("--device", default="cpu", help="torch device of every run (cpu; cuda)")
    add_joblib_flags(p, scheduler=True)


def _add_generate(sub: Any) -> None:
    p = add_command(sub, cmd_generate)
    add_generate_flags(p)
    p.add_argument("--out", help="output .npz (default data/graph_layout_n{n}_T{T}_seed{seed}.npz)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")


def _add_reproduce(sub: Any) -> None:
    cpu = rep.CPU
    p = sub.add_parser(
        "reproduce",
        help="the paper's comparison with the CPU recipe: table.json, table.md, plots",
        description=(
            f"Generate the data ({cpu.num_train}/{cpu.num_valid}/{cpu.num_test} graphs, "
            f"n=10, T=10) and train each method and seed with the CPU recipe: "
            + _plan(cpu)
            + ". Prints the table beside the paper's and writes table.json, table.md and "
            "precision.png."
        ),
    )
    p.add_argument(
        "--methods", nargs="+", default=["tree-sst", "topk-sst", "indep"],
        help="methods (tree-sst topk-sst indep)",
    )  # fmt: skip
    _add_recipe_flags(p, out="runs/reproduce", seeds=[0, 1, 2])
    p.set_defaults(func=cmd_reproduce)


def _add_quickstart(sub: Any) -> None:
    p = sub.add_parser(
        "quickstart",
        help="the main job: tree SST against independent edges in a few minutes",
        description=(
            f"The reproduction in short: {rep.QUICK.num_train} training graphs, tree-sst and "
            f"indep, {_plan(rep.QUICK)}; prints the table and the plot paths."
        ),
    )
    _add_recipe_flags(p, out="runs/quickstart", seeds=[0])
    p.set_defaults(func=cmd_quickstart)


def _no_infinite_range(args: argparse.Namespace) -> None:
    """``--max-range inf`` disables the clipping (``None``: the exact marginals)."""
    if getattr(args, "max_range", None) is not None and args.max_range == float("inf"):
        args.max_range = None


APP = AppCLI(
    PROG,
    description=__doc__.split("\n")[0]
    + " NRI graph layout with latent spanning trees (Paulus et al. 2020).",
    train=TrainCommand(
        TrainConfig,
        run,
        smoke=SMOKE_TRAIN,
        smoke_help="seconds-long run of the whole pipeline: tiny generated data (unless "
        "--data), tiny model, 4 steps",
        out="runs/{method}-seed{seed}",
        out_help="output folder (default: runs/<method>-seed<seed>)",
        help="train and evaluate one method",
        description="Train one method; writes metrics.jsonl, last.pt, best.pt, final.json, "
        "curves.png, graph.png in --out.",
        run_group=RUN,
        groups=(RUN, OPT, MODEL),
        unit="step",
        run_flags=lambda r: r.add_argument(
            "--data", help="data set .npz written by 'generate' (required unless --smoke)"
        ),
        fields=_fields,
    ),
    sweep=SweepCommand(
        SWEEP,
        help="random search over lr and τ with several seeds (joblib)",
        description="Log-uniform random search per method; the best (lr, τ) by mean "
        "validation ELBO is reported as test mean ± standard error over seeds.",
        methods=["tree-sst", "indep"],
        trials=20,
        lr_range=(1e-4, 1e-2),
        tau_range=(0.1, 10.0),
        groups=method_groups(tau=_has_tau),
        check=known_methods(method_names),
    ),
    commands=(_add_generate, "train", "sweep", _add_reproduce, _add_quickstart),
    prepare=_no_infinite_range,
)

#: The parser of every subcommand, and the entry point (user errors: one stderr line, exit 2).
build_parser, main = APP.build_parser, APP.main


def _plan(recipe: Any) -> str:
    """A recipe's restarts, steps and training settings (as ``train`` flags)."""
    flags = []
    for key, value in recipe.train.items():
        flag = "--" + key.replace("_", "-")
        flags.append(flag if value is True else f"{flag} {value}")
    runs = (
        f"{recipe.restarts} restarts of {recipe.warmup} steps, the one with the lowest "
        f"validation NLL trained on to {recipe.iterations} steps"
        if recipe.restarts > 1
        else f"one run of {recipe.iterations} steps"
    )
    return f"{runs} ({' '.join(flags)})"
