"""The ``sweep`` subcommand's shared pieces: flags, name checks and the printed tail."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from structgrad_app_common.cli import EXIT_FAILURE, CLIError, print_error
from structgrad_app_common.flags import add_search_flags
from structgrad_app_common.runcontrol import check_device, check_unique
from structgrad_app_common.trials import SearchGroup, SearchOptions, Sweep, run_search

__all__ = [
    "add_sweep_flags",
    "check_names",
    "print_failures",
    "report_sweep",
    "sweep_base",
    "sweep_command",
    "sweep_exit_code",
]

T = TypeVar("T")


def check_names(
    kind: str, names: Iterable[str], allowed: Sequence[str], *, phrase: str = "choose among"
) -> None:
    """A one-line error for the first of ``names`` that is not in ``allowed``.

    Args:
        kind: what is named (``"method"``, ``"task"``), used in the message.
        names: the names given on the command line.
        allowed: the valid names, listed in the message.
        phrase: the words before the list.

    Raises:
        CLIError: ``unknown <kind> '<name>'; <phrase>: <allowed>``, or a name
            given twice (its runs would count as independent ones).
    """
    names = list(names)
    for name in names:
        if name not in allowed:
            raise CLIError(f"unknown {kind} {name!r}; {phrase}: {', '.join(allowed)}")
    check_unique(kind, names)


def print_failures(
    records: Iterable[Mapping[str, Any]],
    describe: Callable[[Mapping[str, Any]], str] | None = None,
) -> None:
    """Print ``failed: <what>: <error>`` for every sweep record holding an ``error``.

    Args:
        records: sweep records.
        describe: names a record (default ``[<task>] <method> trial <t> seed <s>``).
    """
    for r in records:
        if "error" in r:
            what = describe(r) if describe else _describe_trial(r)
            print(f"failed: {what}: {r['error']}")


def sweep_exit_code(records: Iterable[Mapping[str, Any]], prog: str) -> int:
    """0, or :data:`EXIT_FAILURE` (with a one-line error) when every run failed.

    A sweep tolerates failing runs (they are listed and left out of the table),
    but one whose every run failed did nothing: a script must see it.
    """
    records = list(records)
    if records and all("error" in r for r in records):
        print_error(prog, f"every run of the sweep failed ({len(records)}; see above)")
        return EXIT_FAILURE
    return 0


def _describe_trial(r: Mapping[str, Any]) -> str:
    task = f"{r['task']} " if "task" in r else ""
    return f"{task}{r['method']} trial {r['trial']} seed {r['seed']}"


def add_sweep_flags(
    parser: argparse._ActionsContainer,
    *,
    methods: Sequence[str],
    trials: int,
    lr_range: tuple[float, float],
    tau_range: tuple[float, float] | None,
    methods_help: str = "methods to compare",
) -> None:
    """Add ``--methods`` (default ``methods``) and the :func:`add_search_flags` flags.

    Args:
        parser: the ``sweep`` parser (or a group of it).
        methods: the default methods, also listed in the help.
        trials: default draws per method.
        lr_range: default log-uniform bounds of the learning rate.
        tau_range: default log-uniform bounds of τ, or ``None``.
        methods_help: the help before the list of defaults.
    """
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(methods),
        help=f"{methods_help} ({' '.join(methods)})",
    )
    add_search_flags(parser, trials=trials, lr_range=lr_range, tau_range=tau_range)


def sweep_base(config: T) -> T:
    """The settings every sweep run starts from: ``config`` without a bar, overwriting.

    A run of the sweep never resumes (``resume=False``): a sweep's ``--resume``
    skips the runs it recorded and starts the others afresh.
    """
    changes: dict[str, Any] = {"progress": False, "overwrite": True}
    if any(f.name == "resume" for f in dataclasses.fields(config)):  # type: ignore[arg-type]
        changes["resume"] = False
    return dataclasses.replace(config, **changes)  # type: ignore[type-var]


def report_sweep(
    records: Iterable[Mapping[str, Any]],
    table: str,
    out: str | Path,
    describe: Callable[[Mapping[str, Any]], str] | None = None,
    prog: str = "sweep",
) -> int:
    """Print the failed runs, the table and the path of ``table.md``; return the exit code.

    Args:
        records: the sweep records (see :func:`print_failures`).
        table: the markdown table.
        out: the sweep folder.
        describe: names a failed record (see :func:`print_failures`).
        prog: the program's name, for the error when every run failed.

    Returns:
        0, or 1 when every run failed (:func:`sweep_exit_code`).
    """
    records = list(records)
    print_failures(records, describe)
    print(table)
    print(f"\ntable: {Path(out) / 'table.md'}")
    return sweep_exit_code(records, prog)


def sweep_command(
    sweep: Sweep,
    base: Any,
    args: argparse.Namespace,
    groups: Iterable[SearchGroup],
    prog: str = "sweep",
) -> int:
    """The ``sweep`` subcommand: run the search from ``base``, print and save the table.

    Args:
        sweep: the app's sweep.
        base: the config of the parsed flags (``base.out`` is the sweep folder).
        args: the parsed :func:`add_sweep_flags` flags.
        groups: the groups to search (see :func:`~structgrad_app_common.run_search`).
        prog: the program's name, for the error when every run failed.

    Returns:
        0, or 1 when every run failed.

    Raises:
        CLIError: settings every run would refuse (``--device cuda`` without
            CUDA, a ``--data`` path that does not exist), before any run starts;
            and what :func:`run_search` raises.
    """
    if getattr(base, "device", None) is not None:  # a RunControl config
        check_device(base.device)
    data = getattr(base, "data", None)  # (a missing file failed every run, one by one)
    if data and not Path(data).exists():
        raise CLIError(f"--data {str(data)!r} does not exist")
    search = SearchOptions.from_args(args)
    records, table = run_search(sweep, sweep_base(base), search, groups)
    return report_sweep(records, table, base.out, prog=prog)
