"""One-line CLI errors with a non-zero exit code, the subcommand runner and ``--config``."""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import os
import pickle
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "GIVEN",
    "NOT_READ_BACK",
    "ArgumentParser",
    "CLIError",
    "add_command",
    "print_error",
    "read_back",
    "run_command",
    "run_main",
]

EXIT_USAGE = 2
EXIT_FAILURE = 1
#: Set to a non-empty value to get the traceback of a failed command.
TRACEBACK_ENV = "STRUCTGRAD_TRACEBACK"
# What a command raises for bad input that reached the libraries (a ValueError
# naming the problem), unreadable or unwritable files, and corrupt archives.
_INPUT_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError)
#: Settings of a saved config.json that ``--config`` does not read back.
NOT_READ_BACK = ("resume", "overwrite", "stop_after", "tensorboard")


class CLIError(Exception):
    """A user error: printed as one line ``<prog>: error: <message>``, exit code 2."""


#: Settings naming a file, a folder or an address: an empty value is refused, since
#: ``Path("")`` is the current folder (``--out ""`` wrote a run into it).
PATH_SETTINGS = frozenset({"out", "data", "config", "run", "folders", "tensorboard", "scheduler"})
#: The attribute of parsed arguments that names (by ``dest``) the flags given
#: on the command line: ``--smoke`` presets leave those alone.
GIVEN = "given_flags"


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are a single stderr line.

    The standard parser prints the whole usage block before the message; here
    the message alone is printed (``--help`` still shows the usage). The
    settings of :data:`PATH_SETTINGS` refuse an empty or blank value.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse as argparse does; ``GIVEN`` on the result names the flags given."""
        self._given: set[str] = set()
        parsed, rest = super().parse_known_args(args, namespace)
        # A subcommand's parser set its own on its namespace, copied into this one
        # (a namespace parsed into before keeps its flags, as argparse keeps its values).
        setattr(parsed, GIVEN, frozenset(self._given | set(getattr(parsed, GIVEN, ()))))
        return parsed, rest

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        # Called for the flags given (defaults are not parsed) and absent positionals.
        if action.option_strings:
            given: set[str] = getattr(self, "_given", set())
            given.add(action.dest)
        if action.dest in PATH_SETTINGS and any(not str(a).strip() for a in arg_strings):
            raise argparse.ArgumentError(action, "needs a path, got an empty value")
        return super()._get_values(action, arg_strings)

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
    """Run ``main(argv)`` and turn user errors into a one-line exit.

    A :class:`CLIError` exits with code 2. A ``ValueError`` (the libraries'
    message for bad input, e.g. a flag value they reject or data that made the
    model diverge), an ``OSError`` (a path that cannot be read or written) or a
    corrupt file exits with code 1 after one line; set ``STRUCTGRAD_TRACEBACK=1``
    to get the traceback instead.

    Args:
        main: the command; returns an exit code or ``None`` (success).
        argv: arguments (default ``sys.argv[1:]``).
        prog: program name used in the error line.

    Returns:
        The exit code of ``main``.

    Raises:
        SystemExit: with code 2 on ``CLIError``, 1 on the errors above.
    """
    try:
        return int(main(argv) or 0)
    except CLIError as err:
        print_error(prog, str(err))
        raise SystemExit(EXIT_USAGE) from None
    except _INPUT_ERRORS as err:
        if os.environ.get(TRACEBACK_ENV):
            raise
        print_error(prog, f"{type(err).__name__}: {err} (set {TRACEBACK_ENV}=1 for the traceback)")
        raise SystemExit(EXIT_FAILURE) from None


def print_error(prog: str, message: str) -> None:
    """Print ``<prog>: error: <message>`` to stderr on one line (whitespace folded)."""
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)


def run_command(
    build_parser: Callable[[], argparse.ArgumentParser],
    argv: Sequence[str] | None,
    *,
    prog: str,
    single_thread_env: bool = True,
    prepare: Callable[[argparse.Namespace], None] | None = None,
) -> int:
    """Parse ``argv``, run ``args.func(args)``; a :class:`CLIError` is one line, exit 2.

    Args:
        build_parser: makes the parser; each subcommand sets ``func``.
        argv: arguments (default ``sys.argv[1:]``).
        prog: program name used in the error line.
        single_thread_env: set ``OMP_NUM_THREADS=1`` unless already set.
        prepare: called on the parsed arguments before the command.

    Returns:
        The exit code of the command.
    """

    def _main(argv: Sequence[str] | None) -> int:
        parser = build_parser()
        read_back(parser, sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        if prepare is not None:
            prepare(args)
        if single_thread_env:
            os.environ.setdefault("OMP_NUM_THREADS", "1")
        return int(args.func(args))

    return run_main(_main, argv, prog=prog)


def read_back(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Make the settings of ``[<command>] --config FILE`` the (sub)command's defaults.

    Flags given on the command line win over the file; the file's settings
    that the (sub)command has no flag for, and :data:`NOT_READ_BACK`, are
    ignored; a flag the file gives is no longer required. Without
    ``--config`` nothing changes.

    Args:
        parser: the app's parser (subcommands, if any, in ``command``, first in ``argv``).
        argv: the arguments.

    Raises:
        CLIError: a file that is not a JSON object.
    """
    argv = list(argv)
    command = next((a for a in parser._actions if a.dest == "command"), None)
    subs = command.choices if isinstance(command, argparse._SubParsersAction) else None
    target = parser if subs is None else subs.get(argv[0]) if argv else None
    if target is None or "config" not in {a.dest for a in target._actions}:
        return  # a command without --config: its parser says so
    paths = _config_paths(target, argv)
    if not paths:
        return
    if not paths[-1].strip():
        raise CLIError("--config needs a path, got an empty value")
    path = Path(paths[-1])
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CLIError(f"--config {str(path)!r}: not a readable config.json ({err})") from None
    if not isinstance(saved, dict):
        raise CLIError(f"--config {str(path)!r}: not a run's config.json (no settings)")
    app = parser.prog.split()[0]  # write_config's tag (files of older versions have none)
    if saved.get("app", app) != app:
        raise CLIError(f"--config {str(path)!r}: a config.json of {saved['app']!r}, not of {app}")
    actions = {a.dest: a for a in target._actions}
    values = {
        k: _parsed(target, actions[k], v, path)
        for k, v in saved.items()
        if k in actions and k not in NOT_READ_BACK
    }
    for name in values:
        actions[name].required = False  # the file gives it
    target.set_defaults(**values)


def _config_paths(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """The values ``argv`` gives ``--config``, also under a prefix argparse takes (``--conf``)."""
    flags = [f for a in parser._actions for f in a.option_strings]

    def names_config(flag: str) -> bool:
        if flag == "--config":
            return True
        # argparse takes a prefix that one flag alone starts with (allow_abbrev).
        prefix = parser.allow_abbrev and len(flag) > 2 and flag not in flags
        return prefix and [f for f in flags if f.startswith(flag)] == ["--config"]

    paths = []  # in argv's order: argparse keeps the last one
    for a, b in itertools.pairwise([*argv, ""]):
        flag, eq, value = a.partition("=")
        if names_config(flag):
            paths.append(value if eq else b)
    return paths


def _parsed(
    parser: argparse.ArgumentParser, action: argparse.Action, value: Any, path: Path
) -> Any:
    """A saved setting parsed as its flag would parse it on the command line.

    A file edited by hand (or from another version) gets the flag's own checks
    (type, bounds, choices) instead of reaching the run as a wrong Python type.

    Raises:
        CLIError: a value the flag would refuse, naming the setting and the file.
    """
    where = f"--config {str(path)!r}: setting {action.dest!r}"
    if action.nargs == 0:  # store_true / store_false: JSON true or false
        if not isinstance(value, bool):
            raise CLIError(f"{where} must be true or false, got {value!r}")
        return value
    if value is None:
        if action.default is None:
            return None
        # json_safe writes inf as null: a flag that takes inf reads null back as inf.
        try:
            return parser._get_values(action, ["inf"])
        except argparse.ArgumentError:
            raise CLIError(f"{where} cannot be null (it has no 'unset' value)") from None
    many = action.nargs not in (None, "?")
    if isinstance(value, dict) or (many and not isinstance(value, list)):
        raise CLIError(f"{where} must be {'a list' if many else 'a single value'}, got {value!r}")
    if many:
        texts = [_text(v, where) for v in value]
    elif isinstance(value, list):  # one flag that takes a list as "A,B" (sizes, ranges)
        texts = [",".join(_text(v, where) for v in value)]
    else:
        texts = [_text(value, where)]
    try:
        return parser._get_values(action, texts)
    except argparse.ArgumentError as err:
        raise CLIError(f"{where}: {err.message}") from None


def _text(value: Any, where: str) -> str:
    """The command-line text of one saved JSON scalar."""
    if isinstance(value, bool | list | dict):
        raise CLIError(f"{where} has an unexpected value {value!r}")
    return str(value)


def add_command(sub: Any, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """The subcommand parser that runs ``func``, declared by ``func`` itself.

    Its name is the function's without ``cmd_`` (``cmd_eval`` → ``eval``), its
    ``help`` the docstring's first paragraph (in argparse's style: no capital
    or final period) and its ``description`` the rest.

    Args:
        sub: the parser's subparsers (``add_subparsers()``).
        func: ``func(args) -> exit code``, with a docstring.
    """
    doc = inspect.getdoc(func)
    if not doc:
        raise ValueError(f"{func.__name__} needs a docstring (the subcommand's help)")
    summary, _, rest = doc.partition("\n\n")
    summary = " ".join(summary.split()).rstrip(".")
    if summary[1:2].islower():  # argparse's style: "generate a data set", not "Generate"
        summary = summary[0].lower() + summary[1:]
    description = " ".join(rest.split())
    p: argparse.ArgumentParser = sub.add_parser(
        func.__name__.removeprefix("cmd_").replace("_", "-"),
        help=summary.replace("%", "%%"),  # argparse %-formats help strings
        description=description or None,
    )
    p.set_defaults(func=func)
    return p
