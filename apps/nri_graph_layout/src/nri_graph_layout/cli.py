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
    SearchOptions,
    add_joblib_flags,
    add_sweep_flags,
    check_names,
    print_failures,
    read_jsonl,
    report_sweep,
    run_command,
    sweep_base,
)

from nri_graph_layout import data as data_mod
from nri_graph_layout.flags import (
    QUICK_METHODS,
    QUICK_TRAIN,
    SMALL,
    add_generate_flags,
    add_train_flags,
    data_path,
    generate_config,
    train_config,
)
from nri_graph_layout.methods import method_names

PROG = "nri_graph_layout"


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate a data set and write it as .npz."""
    config = generate_config(args)
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
    config = train_config(args, out=str(out), data=data_path(args, out))
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
    base = sweep_base(train_config(args, out=str(out), data=data_path(args, out)))
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
    add_generate_flags(p)
    p.add_argument("--out", help="output .npz (default data/graph_layout_n{n}_T{T}_seed{seed}.npz)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser(
        "train",
        help="train and evaluate one method",
        description="Train one method; writes metrics.jsonl, last.pt, best.pt, final.json, "
        "curves.png, graph.png in --out.",
    )
    add_train_flags(p, sweep=False)
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
    add_train_flags(p, sweep=True)
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
    add_train_flags(p, sweep=True, data=False)
    p.set_defaults(**QUICK_TRAIN)  # after the flags: the preset wins over their defaults
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors exit with code 2 and one stderr line."""
    return run_command(build_parser, argv, prog=PROG, prepare=_no_infinite_range)


def _no_infinite_range(args: argparse.Namespace) -> None:
    """``--max-range inf`` disables the clipping (``None``)."""
    if getattr(args, "max_range", None) is not None and args.max_range == float("inf"):
        args.max_range = None
