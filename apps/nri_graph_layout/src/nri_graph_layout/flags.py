"""The ``generate`` flags, the ``--smoke`` / ``--small`` presets and the data they name.

``generate``'s flags and the data set they make; the training presets of
``--smoke`` and the data set of a training run (``--data``, or the smoke data).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from structgrad_app_common import (
    CLIError,
    config_from_args,
    nonnegative_float,
    positive_int,
    seed_int,
)

from nri_graph_layout import data as data_mod

__all__ = [
    "SMALL",
    "SMOKE_DATA",
    "SMOKE_TRAIN",
    "add_generate_flags",
    "data_path",
    "generate_config",
    "smoke_data",
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
    g.add_argument("--data-seed", type=seed_int, default=42, help="generator seed (42)")
    g.add_argument(
        "--small",
        action="store_true",
        help="quickstart preset: 5000/500/500 graphs (overrides the split sizes)",
    )


def generate_config(args: argparse.Namespace) -> data_mod.GenerateConfig:
    """The data set of the ``generate`` flags (``--small``: the quickstart split sizes)."""
    sizes = SMALL if args.small else {}  # the flags named like its fields, but the seed
    return config_from_args(data_mod.GenerateConfig, args, {}, seed=args.data_seed, **sizes)


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
