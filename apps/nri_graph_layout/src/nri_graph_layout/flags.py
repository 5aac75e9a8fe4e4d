"""The subcommands' flags, their presets, and the configs they make.

``generate`` and the training flags (shared by ``train``, ``sweep`` and
``quickstart``) with their ``--smoke`` / ``--small`` / quickstart presets, and
the data set and run settings built from parsed arguments.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from structgrad_app_common import (
    CLIError,
    add_run_flags,
    config_from_args,
    nonnegative_float,
    positive_float,
    positive_int,
    positive_range,
)

from nri_graph_layout import data as data_mod
from nri_graph_layout.config import SELECT, TrainConfig
from nri_graph_layout.methods import method_names
from nri_graph_layout.model import DECODER_EDGES

__all__ = [
    "SMALL",
    "SMOKE_DATA",
    "SMOKE_TRAIN",
    "add_generate_flags",
    "add_train_flags",
    "data_path",
    "generate_config",
    "smoke_data",
    "train_config",
]

#: ``generate --small``: a quick data set.
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


def add_generate_flags(p: argparse.ArgumentParser) -> None:
    """The ``generate`` flags: split sizes, graph size, noise, seed, ``--small``."""
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
        type=nonnegative_float,
        default=0.0,
        help="Gaussian noise added before each later frame (0)",
    )
    g.add_argument("--data-seed", type=int, default=42, help="generator seed (42)")
    g.add_argument(
        "--small",
        action="store_true",
        help="quickstart preset: 5000/500/500 graphs (overrides the split sizes)",
    )


def generate_config(args: argparse.Namespace) -> data_mod.GenerateConfig:
    """The data set of the ``generate`` flags (``--small``: the quickstart split sizes)."""
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


def add_train_flags(p: argparse.ArgumentParser, *, sweep: bool, data: bool = True) -> None:
    """The training flags.

    ``sweep``: without those set per run (out, method, seed, lr, τ); ``data``:
    with ``--data`` (``quickstart`` makes its own data set).
    """
    methods = ", ".join(method_names())
    r = p.add_argument_group("run")
    if data:
        r.add_argument(
            "--data", help="data set .npz written by 'generate' (required unless --smoke)"
        )
    else:
        p.set_defaults(data=None)
    if not sweep:
        r.add_argument("--out", help="output folder (default: runs/<method>-seed<seed>)")
        r.add_argument(
            "--method",
            default="tree-sst",
            help=f"latent graph and estimator (tree-sst); one of: {methods}",
        )
        r.add_argument("--seed", type=int, default=42, help="training seed (42)")
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
    add_run_flags(r, unit=None if sweep else "step")
    r.add_argument(
        "--smoke",
        action="store_true",
        help="seconds-long run of the whole pipeline: tiny generated data (unless --data), "
        "tiny model, 4 steps",
    )
    o = p.add_argument_group("optimisation")
    if not sweep:
        o.add_argument("--lr", type=positive_float, default=3e-4, help="Adam learning rate (3e-4)")
        o.add_argument(
            "--tau",
            type=float,
            default=5.0,
            help="temperature τ of relaxations / perturbations (5.0)",
        )
    o.add_argument(
        "--tau-final",
        type=positive_float,
        help="anneal τ geometrically from --tau to this value (default: constant τ)",
    )
    o.add_argument(
        "--anneal-steps",
        type=positive_int,
        default=3000,
        help="steps of the τ annealing (3000)",
    )
    o.add_argument(
        "--lr-final",
        type=positive_float,
        help="decay the learning rate geometrically to this value (default: constant)",
    )
    o.add_argument(
        "--lr-decay-steps",
        type=positive_int,
        default=20_000,
        help="steps of the learning-rate decay (20000)",
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
    m.add_argument(
        "--var", type=positive_float, default=5e-5, help="decoder Gaussian variance (5e-5)"
    )
    m.add_argument(
        "--kl",
        choices=("gumbel", "categorical"),
        default="gumbel",
        help="KL term: Gumbel KL of the utilities (all methods) "
        "or NRI's categorical KL (indep only)",
    )
    m.add_argument(
        "--max-range",
        type=positive_range,
        default=15.0,
        help="tree SST: clip scores at max − R (15; 'inf' disables)",
    )
    m.add_argument(
        "--straight-through",
        action="store_true",
        help="hard forward, relaxed backward (SST and indep only)",
    )
    m.add_argument(
        "--soft-steps",
        type=int,
        default=0,
        help="with --straight-through: relaxed forward samples for the first N steps (0)",
    )
    m.add_argument(
        "--rws-after",
        type=int,
        default=None,
        help="from step N on, train with reweighted wake-sleep over exact samples of the "
        "latent graph instead of the method's estimator (the recipe's refinement; off)",
    )
    m.add_argument(
        "--rws-samples",
        type=int,
        default=8,
        help="graphs drawn per trajectory in the reweighted wake-sleep steps (8)",
    )
    m.add_argument("--symmetric", action="store_true", help="indep: one sample per undirected edge")
    m.add_argument(
        "--decoder-edges",
        choices=DECODER_EDGES,
        default="complement",
        help="decoder edge types: [1-x, x] as the reference (complement) "
        "or [1, x] (base: messages along every pair plus along the sampled edges)",
    )
    m.add_argument(
        "--kl-shift",
        action="store_true",
        help="tree / top-k: shift the scores by the constant that minimises the Gumbel KL "
        "(the laws ignore it; keeps the scores from drifting)",
    )
    m.add_argument(
        "--select",
        choices=tuple(SELECT),
        default="elbo",
        help="checkpoint criterion on the validation set: elbo (the reference), "
        "nll (hard samples; tracks structure) or precision (uses the true edges)",
    )
    m.add_argument(
        "--aimle-difference",
        choices=("forward", "central"),
        help="AIMLE finite difference (forward)",
    )
    m.add_argument(
        "--num-samples", type=positive_int, help="samples per input (score-function methods only)"
    )


def train_config(args: argparse.Namespace, *, out: str, data: str) -> TrainConfig:
    """The :class:`TrainConfig` of parsed training flags (``--smoke`` presets applied)."""
    progress = not getattr(args, "no_progress", False)
    return config_from_args(TrainConfig, args, SMOKE_TRAIN, out=out, data=data, progress=progress)


def smoke_data(out: Path) -> str:
    """``<out>/smoke-data.npz``, the tiny data set of ``--smoke`` (generated once)."""
    path = out / "smoke-data.npz"
    if not path.exists():
        data_mod.save(path, data_mod.generate(data_mod.GenerateConfig(**SMOKE_DATA)))
    return str(path)


def data_path(args: argparse.Namespace, out: Path) -> str:
    """``--data``, or the smoke data set under ``--smoke``; else a one-line error."""
    if args.data:
        return args.data
    if args.smoke:
        return smoke_data(out)
    raise CLIError("--data is required (create a data set with 'generate', or pass --smoke)")
