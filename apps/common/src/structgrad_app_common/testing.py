"""Assertions shared by the apps' CLI tests (pytest is needed only here)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["assert_cli_error", "assert_every_flag_has_help"]


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
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help, f"{name}: {action.option_strings} has no help"
        assert "--help" in p.format_help()
