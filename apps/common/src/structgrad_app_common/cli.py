"""One-line CLI errors with a non-zero exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

EXIT_USAGE = 2


class CLIError(Exception):
    """A user error: printed as one line ``<prog>: error: <message>``, exit code 2."""


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are a single stderr line.

    The standard parser prints the whole usage block before the message; here
    the message alone is printed (``--help`` still shows the usage).
    """

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` on stderr and exit with code 2."""
        message = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def run_main(
    main: Callable[[Sequence[str] | None], int | None],
    argv: Sequence[str] | None = None,
    *,
    prog: str,
) -> int:
    """Run ``main(argv)`` and turn a :class:`CLIError` into a one-line exit.

    Args:
        main: the command; returns an exit code or ``None`` (success).
        argv: arguments (default ``sys.argv[1:]``).
        prog: program name used in the error line.

    Returns:
        The exit code of ``main``.

    Raises:
        SystemExit: with code 2 after printing the error line, on ``CLIError``.
    """
    try:
        return int(main(argv) or 0)
    except CLIError as err:
        message = " ".join(str(err).split())
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
