"""Command line: ``python -m nri_graph_layout {generate,train,sweep,quickstart} ...``.

Every user error (missing or malformed data file, unknown method, impossible
flag combination, ``--resume`` without a checkpoint) is one line on stderr and
exit code 2.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from structgrad_app_common import (
    ArgumentParser,
    CLIError,
    SearchOptions,
    add_joblib_flags,
    add_resume_flags,
    add_sweep_flags,
    check_names,
    config_from_args,
    positive_int,
    print_failures,
    read_jsonl,
    report_sweep,
    run_command,
    sweep_base,
)

from nri_graph_layout import data as data_mod
from nri_graph_layout.methods import method_names
from nri_graph_layout.train import TrainConfig

PROG = "nri_graph_layout"
SMALL = {"num_train": 5000, "num_valid": 500, "num_test": 500}
SMOKE_DATA = {
    "num_train": 32,
    "num_valid": 16,
    "num_test": 16,
    "num_vertices": 5,
    "num_timesteps": 4,
}
SMOKE_TRAIN = {
    "iterations": 4,
    "eval_every": 2,
    "log_every": 1,
    "batch_size": 8,
    "eval_batch_size": 16,
    "encoder_hidden": 16,
    "decoder_hidden": 16,
}
# The quickstart: a short run of a reduced model (the reference's 256 hidden units
# cost ~8 s per step on one CPU core).
QUICK_TRAIN = {
    "iterations": 300,
    "eval_every": 50,
    "log_every": 20,
    "batch_size": 32,
    "eval_batch_size": 100,
    "encoder_hidden": 32,
    "decoder_hidden": 32,
}
# (lr, τ) picked by short probes at this budget (a lower τ than the full-size
# recipe's 3.86 keeps the relaxed training samples close to the hard ones).
QUICK_METHODS = {"tree-sst": {"lr": 3e-3, "tau": 1.0}, "indep": {"lr": 3e-3, "tau": 0.5}}


def _add_generate_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data set")
    g.add_argument("--num-train", type=positive_int, default=50_000, help="training graphs (50000)")
    g.add_argument(
        "--num-valid", type=positive_int, default=10_000, help="validation graphs (10000)"
    )
    g.add_argument("--num-test", type=positive_int, default=10_000, help="test graphs (10000)")
    g.add_argument("--num-vertices", type=positive_int, default=10, help="vertices n per tree (10)")
    g.add_argument(
        "--num-timesteps", type=positive_int, default=10, help="frames T per trajectory (10)"
    )
    g.add_argument(
        "--noise-std",
        type=float,
        default=0.0,
        help="Gaussian noise added before each later frame (0)",
    )
    g.add_argument("--data-seed", type=int, default=42, help="generator seed (42)")
    g.add_argument(
        "--small",
        action="store_true",
        help="quickstart preset: 5000/500/500 graphs (overrides the split sizes)",
    )


def _generate_config(args: argparse.Namespace) -> data_mod.GenerateConfig:
    sizes = SMALL if args.small else {}
    return data_mod.GenerateConfig(
        num_train=sizes.get("num_train", args.num_train),
        num_valid=sizes.get("num_valid", args.num_valid),
        num_test=sizes.get("num_test", args.num_test),
        num_vertices=args.num_vertices,
        num_timesteps=args.num_timesteps,
        noise_std=args.noise_std,
        seed=args.data_seed,
    )


def _add_train_flags(p: argparse.ArgumentParser, *, sweep: bool) -> None:
    methods = ", ".join(method_names())
    r = p.add_argument_group("run")
    r.add_argument("--data", help="data set .npz written by 'generate' (required unless --smoke)")
    if not sweep:
        r.add_argument("--out", help="output folder (default: runs/<method>-seed<seed>)")
        r.add_argument(
            "--method",
            default="tree-sst",
            help=f"latent graph and estimator (tree-sst); one of: {methods}",
        )
        r.add_argument("--seed", type=int, default=42, help="training seed (42)")
        add_resume_flags(r, unit="step")
    r.add_argument(
        "--iterations", type=positive_int, default=50_000, help="optimiser steps (50000)"
    )
    r.add_argument(
        "--eval-every",
        type=positive_int,
        default=500,
        help="validate every N steps, and at steps 0 and last (500)",
    )
    r.add_argument(
        "--log-every",
        type=positive_int,
        default=50,
        help="log the mean training loss every N steps (50)",
    )
    r.add_argument("--threads", type=positive_int, default=1, help="torch threads per run (1)")
    r.add_argument(
        "--smoke",
        action="store_true",
        help="seconds-long run of the whole pipeline: tiny generated data (unless --data), "
        "tiny model, 4 steps",
    )
    o = p.add_argument_group("optimisation")
    if not sweep:
        o.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (3e-4)")
        o.add_argument(
            "--tau",
            type=float,
            default=5.0,
            help="temperature τ of relaxations / perturbations (5.0)",
        )
    o.add_argument("--batch-size", type=positive_int, default=128, help="training batch size (128)")
    o.add_argument(
        "--eval-batch-size", type=positive_int, default=100, help="evaluation batch size (100)"
    )
    m = p.add_argument_group("model and estimator")
    m.add_argument(
        "--encoder-hidden", type=positive_int, default=256, help="encoder hidden units (256)"
    )
    m.add_argument(
        "--decoder-hidden", type=positive_int, default=256, help="decoder hidden units (256)"
    )
    m.add_argument(
        "--prediction-steps", type=positive_int, help="training rollout length P (default T-1)"
    )
    m.add_argument("--var", type=float, default=5e-5, help="decoder Gaussian variance (5e-5)")
    m.add_argument(
        "--kl",
        choices=("gumbel", "categorical"),
        default="gumbel",
        help="KL term: Gumbel KL of the utilities (all methods) "
        "or NRI's categorical KL (indep only)",
    )
    m.add_argument(
        "--max-range",
        type=float,
        default=15.0,
        help="tree SST: clip scores at max − R (15; 'inf' disables)",
    )
    m.add_argument(
        "--straight-through",
        action="store_true",
        help="hard forward, relaxed backward (SST and indep only)",
    )
    m.add_argument("--symmetric", action="store_true", help="indep: one sample per undirected edge")
    m.add_argument(
        "--aimle-difference",
        choices=("forward", "central"),
        help="AIMLE finite difference (forward)",
    )
    m.add_argument(
        "--num-samples", type=positive_int, help="samples per input (score-function methods only)"
    )


def _train_config(args: argparse.Namespace, *, out: str, data: str) -> TrainConfig:
    progress = not getattr(args, "no_progress", False)
    return config_from_args(TrainConfig, args, SMOKE_TRAIN, out=out, data=data, progress=progress)


def _smoke_data(out: Path) -> str:
    path = out / "smoke-data.npz"
    if not path.exists():
        data_mod.save(path, data_mod.generate(data_mod.GenerateConfig(**SMOKE_DATA)))
    return str(path)


def _data_path(args: argparse.Namespace, out: Path) -> str:
    if args.data:
        return args.data
    if args.smoke:
        return _smoke_data(out)
    raise CLIError("--data is required (create a data set with 'generate', or pass --smoke)")


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate a data set and write it as .npz."""
    config = _generate_config(args)
    out = Path(args.out) if args.out else Path("data") / data_mod.default_filename(config)
    t0 = time.perf_counter()
    arrays = data_mod.generate(config, progress=not args.no_progress)
    data_mod.save(out, arrays)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train one method; print the final JSON."""
    from nri_graph_layout.train import run

    out = Path(args.out or f"runs/{args.method}-seed{args.seed}")
    config = _train_config(args, out=str(out), data=_data_path(args, out))
    final = run(config)
    print(json.dumps(final, indent=2))
    return 0


def _sweep(
    args: argparse.Namespace,
    methods: list[str],
    fixed: dict[str, dict[str, float]] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    from nri_graph_layout.sweep import run_sweep

    check_names("method", methods, method_names())
    out = Path(args.out)
    base = sweep_base(_train_config(args, out=str(out), data=_data_path(args, out)))
    return run_sweep(base, methods, SearchOptions.from_args(args), fixed=fixed)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Random search; print and save the markdown table."""
    records, table = _sweep(args, args.methods)
    return report_sweep(records, table, args.out)


def cmd_quickstart(args: argparse.Namespace) -> int:
    """Generate small data, train tree SST and indep briefly, print the comparison."""
    t0 = time.perf_counter()
    out = Path(args.out)
    if not args.smoke:
        path = out / "data-small.npz"
        if not path.exists():
            config = data_mod.GenerateConfig(**SMALL)
            data_mod.save(path, data_mod.generate(config, progress=not args.no_progress))
            print(f"generated {path}")
        args.data = str(path)
    # Fixed (lr, τ) per method: a one-point "search" through the sweep runner,
    # so every (method, seed) run is one joblib task.
    records, table = _sweep(args, list(QUICK_METHODS), fixed=QUICK_METHODS)
    print_failures(records)
    print(table)
    print("\nplots:")
    for r in read_jsonl(out / "sweep.jsonl"):
        if "plots" in r:
            print(
                f"  {r['method']} seed {r['seed']}: {r['plots']['curves']}  {r['plots']['graph']}"
            )
    print(f"table: {out / 'table.md'}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n")[0]
        + " NRI graph layout with latent spanning trees (Paulus et al. 2020).",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    p = sub.add_parser(
        "generate",
        help="generate a graph-layout data set (.npz)",
        description="Random trees (max spanning tree of Gumbel weights) laid out by "
        "Fruchterman-Reingold, one spring iteration per frame, rescaled to [-1, 1].",
    )
    _add_generate_flags(p)
    p.add_argument("--out", help="output .npz (default data/graph_layout_n{n}_T{T}_seed{seed}.npz)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser(
        "train",
        help="train and evaluate one method",
        description="Train one method; writes metrics.jsonl, last.pt, best.pt, final.json, "
        "curves.png, graph.png in --out.",
    )
    _add_train_flags(p, sweep=False)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser(
        "sweep",
        help="random search over lr and τ with several seeds (joblib)",
        description="Log-uniform random search per method; the best (lr, τ) by mean "
        "validation ELBO is reported as test mean ± standard error over seeds.",
    )
    add_sweep_flags(
        p, methods=["tree-sst", "indep"], trials=20, lr_range=(1e-4, 1e-2), tau_range=(0.1, 10.0)
    )
    _add_train_flags(p, sweep=True)
    p.set_defaults(func=cmd_sweep, tau=5.0)
    p = sub.add_parser(
        "quickstart",
        help="the main job: small data, tree SST vs indep, comparison table",
        description=(
            "Generate a small data set (5000/500/500 graphs, n=10, T=10), train tree-sst "
            f"and indep for {QUICK_TRAIN['iterations']} steps each (reduced model: "
            f"{QUICK_TRAIN['encoder_hidden']} hidden units, batch {QUICK_TRAIN['batch_size']}) "
            "with every seed, and print the comparison table and the plot paths. The "
            "training flags below default to that reduced preset ("
            + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK_TRAIN.items())
            + "), not to the values their help shows for 'train'."
        ),
    )
    p.add_argument("--out", default="runs/quickstart", help="output folder (runs/quickstart)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (0 1)")
    add_joblib_flags(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar while generating")
    p.set_defaults(
        func=cmd_quickstart, search_seed=0, trials=1, lr_range=(1e-3, 1e-3), tau_range=(1.0, 1.0)
    )
    _add_train_flags(p, sweep=True)
    p.set_defaults(**QUICK_TRAIN)  # after the flags: the preset wins over their defaults
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors exit with code 2 and one stderr line."""
    return run_command(build_parser, argv, prog=PROG, prepare=_no_infinite_range)


def _no_infinite_range(args: argparse.Namespace) -> None:
    """``--max-range inf`` disables the clipping (``None``)."""
    if getattr(args, "max_range", None) is not None and args.max_range == float("inf"):
        args.max_range = None
