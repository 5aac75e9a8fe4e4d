"""Assertions shared by the apps' CLI tests (pytest is needed only here)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from structgrad_app_common.jsonl import read_jsonl

__all__ = [
    "PNG_SIGNATURE",
    "ToyRun",
    "append_record",
    "assert_cli_error",
    "assert_every_flag_has_help",
    "assert_files",
    "assert_png",
    "assert_records_match",
    "assert_subprocess_error",
    "assert_sweep_errors",
    "assert_sweep_outputs",
    "last_checkpoint",
]

#: The eight bytes every PNG file starts with.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass(frozen=True)
class ToyRun:
    """The smallest run config, for tests of the shared machinery (sweeps, run folders)."""

    out: str
    method: str = "a"
    seed: int = 0
    lr: float = 0.1
    tau: float = 1.0
    epochs: int = 3
    progress: bool = True
    overwrite: bool = False


def assert_cli_error(
    capsys: Any,
    main: Callable[[Sequence[str]], Any],
    argv: Sequence[str],
    needle: str,
    *,
    prog: str,
) -> None:
    """``main(argv)`` exits with code 2 and one stderr line ``<prog>...: error: ...<needle>...``.

    Args:
        capsys: the pytest fixture.
        main: the app's entry point.
        argv: arguments that must fail.
        needle: text the error line must contain.
        prog: the program name the line starts with.
    """
    import pytest

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(prog) and ": error: " in err and needle in err, err


def assert_every_flag_has_help(parser: argparse.ArgumentParser) -> None:
    """Every argument of every subcommand has a help text, and ``--help`` renders."""
    sub = next(a for a in parser._actions if a.dest == "command")
    assert isinstance(sub, argparse._SubParsersAction), "the commands are subparsers"
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help, f"{name}: {action.option_strings} has no help"
        assert "--help" in p.format_help()


def assert_png(path: str | os.PathLike[str]) -> None:
    """The file at ``path`` starts with the PNG signature."""
    assert Path(path).read_bytes()[:8] == PNG_SIGNATURE, path


def assert_files(folder: str | os.PathLike[str], names: Iterable[str]) -> None:
    """Every ``<folder>/<name>`` exists and is not empty (``.png`` ones are PNG files)."""
    for name in names:
        path = Path(folder) / name
        assert path.stat().st_size > 0, path
        if name.endswith(".png"):
            assert_png(path)


def last_checkpoint(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``<folder>/last.pt`` loaded with ``weights_only=True`` (fails on pickled objects)."""
    import torch

    return torch.load(Path(folder) / "last.pt", weights_only=True)


def append_record(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append ``record`` to a JSONL log, as a run killed after its checkpoint would have."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def assert_records_match(
    records: Sequence[Mapping[str, Any]],
    reference: Sequence[Mapping[str, Any]],
    keys: Iterable[str],
    *,
    rel: float,
) -> None:
    """Two logs have as many records, with every ``keys`` value equal within ``rel``."""
    import pytest

    keys = tuple(keys)
    assert len(records) == len(reference)
    for a, b in zip(records, reference, strict=True):
        for key in keys:
            assert a[key] == pytest.approx(b[key], rel=rel), key


def assert_sweep_outputs(
    out: str | os.PathLike[str], *, rows: int, first: str, runs: int
) -> list[str]:
    """A sweep folder's ``table.md`` and ``sweep.jsonl`` have the expected size.

    Args:
        out: the sweep folder.
        rows: table rows below the header.
        first: the first row starts with this (``"| method |"``) and holds a "±".
        runs: records in ``sweep.jsonl``.

    Returns:
        The lines of ``table.md``.
    """
    table = (Path(out) / "table.md").read_text().splitlines()
    assert len(table) == 2 + rows, table
    assert table[2].startswith(first) and "±" in table[2], table
    assert len(read_jsonl(Path(out) / "sweep.jsonl")) == runs
    return table


def assert_subprocess_error(
    module: str, argv: Sequence[str], *, cwd: str | os.PathLike[str]
) -> None:
    """``python -m <module> <argv>`` exits with code 2 and one stderr line."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr


def assert_sweep_errors(
    capsys: Any,
    main: Callable[[Sequence[str]], Any],
    argv: Sequence[str],
    *,
    prog: str,
    method: str | None = None,
) -> None:
    """The ``sweep`` mistakes every app shares are one-line errors.

    An unknown method, a method listed twice (its runs would count as more
    seeds), an empty learning-rate range, an infinite bound of either range
    (every run failed on it) and ``--trials 0``.

    Args:
        capsys: the pytest fixture.
        main: the app's entry point.
        argv: a valid ``sweep`` command (``--out`` included).
        prog: the program name.
        method: a valid method name, given twice (``None``: not checked).
    """
    twice = [] if method is None else [(["--methods", method, method], "is listed twice")]
    for extra, needle in (
        (["--methods", "nope"], "unknown method"),
        *twice,
        (["--lr-range", "1,0.1"], "bad search range"),
        (["--lr-range", "1e-3,inf"], "both finite"),
        (["--tau-range", "inf,inf"], "both finite"),
        (["--trials", "0"], "must be >= 1"),
    ):
        assert_cli_error(capsys, main, [*argv, *extra], needle, prog=prog)
