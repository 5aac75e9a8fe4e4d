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
    "AppChecks",
    "append_record",
    "assert_cli_error",
    "assert_every_flag_has_help",
    "assert_files",
    "assert_png",
    "assert_records_match",
    "assert_subprocess_error",
    "assert_sweep_errors",
    "assert_sweep_outputs",
    "cli_error_checker",
    "last_checkpoint",
]

#: The eight bytes every PNG file starts with.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def cli_error_checker(
    main: Callable[[Sequence[str]], Any], *, prog: str
) -> Callable[[Any, Sequence[str], str], None]:
    """An app's ``_fail(capsys, argv, needle)``: :func:`assert_cli_error` for ``main``."""
    return AppChecks(main, prog).fail


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
    capsys: Any, main: Callable[[Sequence[str]], Any], argv: Sequence[str], *, prog: str
) -> None:
    """The ``sweep`` mistakes every app shares are one-line errors.

    An unknown method, an empty learning-rate range and ``--trials 0``.

    Args:
        capsys: the pytest fixture.
        main: the app's entry point.
        argv: a valid ``sweep`` command (``--out`` included).
        prog: the program name.
    """
    for extra, needle in (
        (["--methods", "nope"], "unknown method"),
        (["--lr-range", "1,0.1"], "bad search range"),
        (["--trials", "0"], "must be >= 1"),
    ):
        assert_cli_error(capsys, main, [*argv, *extra], needle, prog=prog)


@dataclasses.dataclass(frozen=True)
class AppChecks:
    """The CLI checks of one app, with its entry point and program name bound once.

    Attributes:
        main: the app's entry point.
        prog: the program name its error lines start with.
        build_parser: the app's parser (for :meth:`help_test`).
    """

    main: Callable[[Sequence[str]], Any]
    prog: str
    build_parser: Callable[[], argparse.ArgumentParser] | None = None

    def fail(self, capsys: Any, argv: Sequence[str], needle: str) -> None:
        """:func:`assert_cli_error` of ``argv``."""
        assert_cli_error(capsys, self.main, argv, needle, prog=self.prog)

    def help_test(self) -> Callable[[], None]:
        """A pytest test: :func:`assert_every_flag_has_help` of the app's parser."""

        def test_every_flag_has_help() -> None:
            assert self.build_parser is not None, "AppChecks needs build_parser"
            assert_every_flag_has_help(self.build_parser())

        return test_every_flag_has_help

    def sweep_errors(self, capsys: Any, out: str | os.PathLike[str]) -> None:
        """:func:`assert_sweep_errors` of ``sweep --smoke --out <out>``."""
        assert_sweep_errors(
            capsys, self.main, ["sweep", "--smoke", "--out", str(out)], prog=self.prog
        )

    def interrupted(
        self,
        capsys: Any,
        argv: Sequence[str],
        out: Path,
        ref: Path,
        *,
        unit: str,
        stop_after: int,
        killed: Mapping[str, Any],
        changed: Sequence[str] = (),
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Stop a run, let it be "killed" after its checkpoint, resume it; run a reference.

        Checks on the way: the stopped run prints ``{"stopped_at": stop_after}``,
        its ``last.pt`` holds ``unit == stop_after`` and it has no ``final.json``;
        afterwards rerunning into ``out`` is refused ("already holds a run"), and
        so is resuming with the ``changed`` flags ("settings differ").

        Args:
            capsys: the pytest fixture.
            argv: a training command without ``--out``.
            out: the interrupted run's folder.
            ref: the uninterrupted run's folder.
            unit: the checkpoint's counter (``"step"`` or ``"epoch"``).
            stop_after: ``--stop-after`` value.
            killed: a record appended to the log after the checkpoint (to be dropped).
            changed: flags that change a resume-checked setting (none: not checked).

        Returns:
            The resumed run's and the reference run's ``metrics.jsonl`` records.
        """
        capsys.readouterr()
        assert self.main([*argv, "--out", str(out), "--stop-after", str(stop_after)]) == 0
        assert json.loads(capsys.readouterr().out) == {"stopped_at": stop_after}
        assert last_checkpoint(out).get(unit) == stop_after
        assert not (out / "final.json").exists()
        append_record(out / "metrics.jsonl", killed)
        assert self.main([*argv, "--out", str(out), "--resume"]) == 0
        assert self.main([*argv, "--out", str(ref)]) == 0
        capsys.readouterr()
        self.fail(capsys, [*argv, "--out", str(out)], "already holds a run")
        if changed:
            self.fail(capsys, [*argv, "--out", str(out), "--resume", *changed], "settings differ")
        return read_jsonl(out / "metrics.jsonl"), read_jsonl(ref / "metrics.jsonl")

    def config_and_device(
        self,
        capsys: Any,
        argv: Sequence[str],
        folder: Path,
        *,
        command: Sequence[str] | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        """``--config FILE`` reruns a run with its settings; ``--device`` picks the device.

        ``<argv> --out <folder>/a`` is run, then ``<command> --config
        <folder>/a/config.json --out <folder>/b <extra>``: both config.json files
        hold the same settings but ``out`` and ``progress``. Then ``--device nope``
        is a one-line error, and so is ``--device cuda`` without CUDA; with CUDA,
        the run on ``cuda`` works.

        Args:
            capsys: the pytest fixture.
            argv: a short training command without ``--out`` (its subcommand first).
            folder: an empty folder.
            command: the rerun's subcommand (default ``argv[:1]``; ``[]``: none).
            extra: further flags of the rerun (settings that config.json does not hold).
        """
        import torch

        main, a, b = self.main, folder / "a", folder / "b"
        assert main([*argv, "--out", str(a)]) == 0
        command = argv[:1] if command is None else command
        assert main([*command, "--config", str(a / "config.json"), "--out", str(b), *extra]) == 0
        first, again = (json.loads((p / "config.json").read_text()) for p in (a, b))
        assert {**first, "out": None, "progress": None} == {**again, "out": None, "progress": None}
        assert first["device"] == "cpu"
        capsys.readouterr()
        self.fail(capsys, [*argv, "--device", "nope", "--out", str(b)], "--device")
        cuda = [*argv, "--device", "cuda", "--out", str(folder / "cuda")]
        if torch.cuda.is_available():
            assert main(cuda) == 0
        else:
            self.fail(capsys, cuda, "CUDA is not available")
