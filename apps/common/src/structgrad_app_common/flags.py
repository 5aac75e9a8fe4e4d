"""The flags every app shares, and configs built from them.

The run flags (``--threads``, ``--device``, ``--config``, ``--resume``...), the joblib
and search flags of a sweep, and :func:`opt` / :func:`add_config_flags` / :func:`config_from_args`
(a config dataclass whose fields are flags); ``argparse`` types: :mod:`.argtypes`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from typing import Any, TypeVar

from structgrad_app_common.argtypes import (
    float_pair,
    joblib_backend,
    jobs_int,
    nonnegative_float,
    positive_float,
    positive_int,
    positive_range,
    seed_int,
)
from structgrad_app_common.cli import GIVEN
from structgrad_app_common.parallel import LOCAL_BACKENDS

__all__ = [
    "add_config_flag",
    "add_config_flags",
    "add_joblib_flags",
    "add_run_flags",
    "add_search_flags",
    "config_from_args",
    "float_pair",
    "joblib_backend",
    "nonnegative_float",
    "opt",
    "positive_float",
    "positive_int",
    "positive_range",
    "seed_int",
]

T = TypeVar("T")


def add_resume_flags(
    group: argparse._ActionsContainer,
    *,
    unit: str,
    stop_after: bool = True,
    progress: bool = True,
) -> None:
    """Add ``--resume``, ``--overwrite`` and optionally ``--stop-after``, ``--no-progress``.

    Args:
        group: a parser or argument group.
        unit: what a run counts (``"step"`` or ``"epoch"``), used in the help.
        stop_after: add ``--stop-after N`` (stop, checkpointed, after N units).
        progress: add ``--no-progress`` (no tqdm bar).
    """
    group.add_argument(
        "--resume",
        action="store_true",
        help=f"continue from <out>/last.pt (metrics.jsonl is cut back to its {unit})",
    )
    group.add_argument(
        "--overwrite", action="store_true", help="start afresh even if <out> holds a run"
    )
    if stop_after:
        group.add_argument(
            "--stop-after",
            type=positive_int,
            help=f"stop (checkpointed, as if killed) after this {unit}; continue with --resume",
        )
    if progress:
        group.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")


def add_run_flags(
    group: argparse._ActionsContainer,
    *,
    unit: str | None = None,
    stop_after: bool = True,
    progress: bool = True,
) -> None:
    """Add ``--threads``, ``--device``; with ``unit``, the flags of a command that writes a run.

    Args:
        group: a parser or argument group.
        unit: what a run counts (``"step"`` or ``"epoch"``): the command writes
            run folders, so it also gets ``--config FILE``,
            :func:`add_resume_flags` and ``--tensorboard DIR`` (the
            ``tensorboard`` field of :class:`~structgrad_app_common.RunControl`);
            ``None`` (a sweep): none of them.
        stop_after: with ``unit``, add ``--stop-after N``.
        progress: with ``unit``, add ``--no-progress``.
    """
    group.add_argument("--threads", type=positive_int, default=1, help="torch threads per run (1)")
    group.add_argument(
        "--device",
        default="cpu",
        help="torch device of the model and the data: cpu, cuda, cuda:1... (cpu)",
    )
    if unit is None:
        return
    add_config_flag(group)
    add_resume_flags(group, unit=unit, stop_after=stop_after, progress=progress)
    group.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="also write every numeric metric of metrics.jsonl as a TensorBoard scalar in "
        "DIR (needs: pip install tensorboard); metrics.jsonl stays the record",
    )


def add_config_flag(group: argparse._ActionsContainer) -> None:
    """Add ``--config FILE``: a run's saved config.json read back as the defaults.

    The reading is :func:`~structgrad_app_common.cli.read_back`, done by
    :func:`~structgrad_app_common.run_command` before the arguments are parsed.
    """
    group.add_argument(
        "--config",
        metavar="FILE",
        help="read the settings back from a run's config.json (flags given here win; "
        "--resume, --overwrite, --stop-after and --tensorboard are not read back)",
    )


def add_joblib_flags(parser: argparse._ActionsContainer, *, scheduler: bool = False) -> None:
    """Add ``--n-jobs`` (2) and ``--backend`` (loky); with ``scheduler``, ``--scheduler``.

    Args:
        parser: a parser or argument group.
        scheduler: add ``--scheduler ADDRESS`` (default: the environment
            variable ``DASK_SCHEDULER_ADDRESS``): the runs go to that Dask
            cluster through joblib's ``dask`` backend.
    """
    on_cluster = "; on a Dask cluster every worker thread takes runs" if scheduler else ""
    parser.add_argument(
        "--n-jobs",
        type=jobs_int,
        default=2,
        help=f"parallel runs (2; -1: all cores{on_cluster})",
    )
    parser.add_argument(
        "--backend",
        type=lambda name: joblib_backend(name, scheduler=scheduler),
        default="loky",
        metavar="{" + ",".join(LOCAL_BACKENDS) + "}",
        help="joblib backend on this machine: loky (local processes), threading or "
        "multiprocessing (loky)",
    )
    if not scheduler:
        return
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=os.environ.get("DASK_SCHEDULER_ADDRESS") or None,
        help="address of a Dask scheduler (tcp://HOST:8786): run the trials on its cluster "
        "through joblib's dask backend (needs: pip install 'dask[distributed]'; default: "
        "$DASK_SCHEDULER_ADDRESS; unset: on this machine)",
    )


def add_search_flags(
    parser: argparse._ActionsContainer,
    *,
    trials: int,
    lr_range: tuple[float, float],
    tau_range: tuple[float, float] | None,
) -> None:
    """Add the flags of a random search over (lr, τ) with seeds, and the joblib flags.

    ``--out`` (runs/sweep), ``--trials``, ``--seeds`` (0 1 2), ``--lr-range``,
    ``--tau-range`` (``None``: each method's own τ), ``--search-seed`` (0),
    ``--resume``, ``--overwrite``, ``--n-jobs``, ``--backend`` and ``--scheduler``; all but
    ``--out`` are read back by ``SearchOptions.from_args``
    (:mod:`structgrad_app_common.trials`).

    Args:
        parser: a parser or argument group.
        trials: default draws per method.
        lr_range: default log-uniform bounds of the learning rate.
        tau_range: default log-uniform bounds of τ, or ``None``.
    """

    def bounds(pair: tuple[float, float]) -> str:
        return f"{pair[0]:g},{pair[1]:g}"

    tau_default = "default: each method's τ" if tau_range is None else bounds(tau_range)
    parser.add_argument("--out", default="runs/sweep", help="sweep folder (runs/sweep)")
    parser.add_argument(
        "--trials", type=positive_int, default=trials, help=f"(lr, τ) draws per method ({trials})"
    )
    parser.add_argument(
        "--seeds",
        type=seed_int,
        nargs="+",
        default=[0, 1, 2],
        help="training seeds per draw (0 1 2)",
    )
    parser.add_argument(
        "--lr-range",
        type=float_pair,
        default=lr_range,
        help=f"log-uniform lr bounds LOW,HIGH ({bounds(lr_range)}; LOW=HIGH fixes it)",
    )
    parser.add_argument(
        "--tau-range",
        type=float_pair,
        default=tau_range,
        help=f"log-uniform τ bounds LOW,HIGH ({tau_default}; LOW=HIGH fixes it)",
    )
    parser.add_argument(
        "--search-seed", type=seed_int, default=0, help="seed of the random search (0)"
    )
    resume = "continue the sweep in --out: the runs its sweep.jsonl records are not run again "
    resume += "(the others start afresh); the training settings must be those of the sweep"
    parser.add_argument("--resume", action="store_true", help=resume)
    overwrite = "start afresh even if --out holds a sweep (its runs are trained again)"
    parser.add_argument("--overwrite", action="store_true", help=overwrite)
    add_joblib_flags(parser, scheduler=True)


def opt(
    default: Any, help: str, *, group: str | None = None, sweep: bool = True, **flag: Any
) -> Any:
    """A config dataclass field that is also the flag ``--field-name``.

    Args:
        default: the field's default (and the flag's).
        help: the flag's help.
        group: the title of the ``--help`` group it is listed in.
        sweep: the ``sweep`` subcommand has it too (``False``: set per run).
        **flag: further ``add_argument`` keywords (``type``, ``choices``...); the
            type defaults to the default's (``store_true`` for a ``False`` default).

    Returns:
        A ``dataclasses.field`` (see :func:`add_config_flags`).
    """
    return dataclasses.field(
        default=default, metadata={"help": help, "group": group, "sweep": sweep, **flag}
    )


def add_config_flags(parser: argparse.ArgumentParser, cls: type, *, sweep: bool = False) -> None:
    """Add a flag for every field of the dataclass ``cls`` declared with :func:`opt`.

    Args:
        parser: the subcommand's parser; a field's group is the parser's group of
            that title (made if missing).
        cls: the config dataclass.
        sweep: for the ``sweep`` subcommand: without the fields set per run.
    """
    for f in dataclasses.fields(cls):
        flag = dict(f.metadata)
        if "help" not in flag or (sweep and not flag["sweep"]):
            continue
        title = flag.pop("group")
        del flag["sweep"]
        groups = [g for g in parser._action_groups if g.title == title]
        target = (
            parser if title is None else groups[0] if groups else parser.add_argument_group(title)
        )
        if f.default is False:
            flag.setdefault("action", "store_true")
        elif f.default is not None and not {"type", "choices", "action"} & set(flag):
            flag["type"] = type(f.default)
        target.add_argument("--" + f.name.replace("_", "-"), default=f.default, **flag)


def config_from_args(
    cls: type[T], args: argparse.Namespace, smoke: Mapping[str, Any], **fields: Any
) -> T:
    """A config dataclass from parsed arguments (``--no-progress``: ``progress``), ``--smoke``.

    Args:
        cls: the dataclass; every argument named like one of its fields is used.
        args: parsed arguments (``args.smoke`` turns the presets on).
        smoke: field → value applied under ``--smoke`` where no flag set the
            field (:data:`~structgrad_app_common.cli.GIVEN`) and it has its default.
        **fields: values that override the arguments (``out=...``).

    Returns:
        ``cls(**values)``.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in vars(args).items() if k in defaults}
    if "progress" in defaults and hasattr(args, "no_progress"):
        values["progress"] = not args.no_progress
    values.update(fields)
    if getattr(args, "smoke", False):
        given: frozenset[str] = getattr(args, GIVEN, frozenset())
        unset = [k for k in smoke if k not in given and values.get(k) == defaults[k]]
        values.update({k: smoke[k] for k in unset})
    return cls(**values)
