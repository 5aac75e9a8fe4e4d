"""One app skeleton: the ``train`` and ``sweep`` subcommands built from declarations.

An app declares its training command (:class:`TrainCommand`: config
dataclass, run function, ``--smoke`` presets, default ``--out``, help texts,
argument-group titles) and its sweep (:class:`SweepCommand`: the
:class:`~structgrad_app_common.trials.Sweep`, the search defaults, how the
groups are formed); :class:`AppCLI` adds the subparsers, the run flags,
``--smoke``, ``--config`` and the commands that print ``final.json`` or run
the sweep, and is the app's entry point (:meth:`AppCLI.main`). The app's own
subcommands are plain functions that add a subparser.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from structgrad_app_common.cli import ArgumentParser, run_command
from structgrad_app_common.flags import (
    add_config_flags,
    add_resume_flags,
    add_run_flags,
    config_from_args,
)
from structgrad_app_common.sweep_cli import add_sweep_flags, check_names, sweep_command
from structgrad_app_common.trials import SearchGroup, Sweep

__all__ = ["AppCLI", "SweepCommand", "TrainCommand", "known_methods", "method_groups"]

#: What a subcommand is added to (``parser.add_subparsers()``).
Subparsers = Any
#: A subcommand the app adds itself: ``add(subparsers)``.
AddCommand = Callable[[Subparsers], None]
#: Groups of a sweep from its parsed flags and base config.
Groups = Callable[[argparse.Namespace, Any], Iterable[SearchGroup]]


@dataclasses.dataclass(frozen=True)
class TrainCommand:
    """The training command of an app, as data.

    Attributes:
        config: the config dataclass (its :func:`~structgrad_app_common.opt`
            fields are the flags).
        run: trains ``config`` and returns the final results (printed as JSON).
        smoke: ``--smoke`` presets, field → value.
        smoke_help: the help of ``--smoke``.
        out: the default ``--out``, formatted with the parsed flags
            (``"runs/{method}-seed{seed}"``).
        out_help: the help of ``--out`` (first in the run group); ``None``:
            ``flags`` adds ``--out`` itself.
        help: the subcommand's one-line help.
        description: the subcommand's ``--help`` description.
        run_group: the title of the group holding the run flags and ``--smoke``.
        groups: argument-group titles in ``--help`` order (``run_group`` among
            them, else it comes first).
        unit: what a run counts (``"epoch"``, ``"step"``), in the run flags' help.
        name: the subcommand's name.
        flags: adds the command's own flags before the groups (``toys run --structure``).
        run_flags: adds flags first in the run group, of ``train`` and ``sweep`` alike.
        fields: config fields that no flag gives, from the flags and the run
            folder (``data``); they may override ``out``.
        check: checks the flags before anything runs (raises ``CLIError``).
        config_first: the config flags come before the run flags (else after).
        batch_resume: a sweep-like command (:meth:`AppCLI.add_flags` with
            ``sweep=True``) also gets ``--resume`` and ``--overwrite``.
    """

    config: type
    run: Callable[[Any], Any]
    smoke: Mapping[str, Any]
    smoke_help: str
    out: str
    out_help: str | None
    help: str
    description: str
    run_group: str
    groups: Sequence[str] = ()
    unit: str = "epoch"
    name: str = "train"
    flags: Callable[[argparse.ArgumentParser], object] | None = None
    run_flags: Callable[[argparse._ArgumentGroup], object] | None = None
    fields: Callable[[argparse.Namespace, str], Mapping[str, Any]] | None = None
    check: Callable[[argparse.Namespace], None] | None = None
    config_first: bool = False
    batch_resume: bool = False


@dataclasses.dataclass(frozen=True)
class SweepCommand:
    """The ``sweep`` subcommand of an app, as data.

    Attributes:
        sweep: the app's sweep.
        help: the subcommand's one-line help.
        description: the subcommand's ``--help`` description.
        methods: the default ``--methods``.
        trials: the default ``--trials``.
        lr_range: the default ``--lr-range``.
        tau_range: the default ``--tau-range`` (``None``: each method's τ).
        groups: the groups searched, from the flags and the base config; it
            may raise ``CLIError`` for a base the sweep cannot run.
        methods_help: the help of ``--methods`` before its defaults.
        flags: adds the command's own flags before the sweep flags (``--tasks``).
        check: checks the flags before the base config is made (unknown names).
        fields: config fields of the base that no sweep flag gives (the first task).
    """

    sweep: Sweep
    help: str
    description: str
    methods: Sequence[str]
    trials: int
    lr_range: tuple[float, float]
    tau_range: tuple[float, float] | None
    groups: Groups
    methods_help: str = "methods to compare"
    flags: Callable[[argparse.ArgumentParser], object] | None = None
    check: Callable[[argparse.Namespace], None] | None = None
    fields: Callable[[argparse.Namespace], Mapping[str, Any]] | None = None


def method_groups(tau: Callable[[str, Any], bool] | None = None) -> Groups:
    """One search group per ``--methods`` entry, its record field ``method``.

    Args:
        tau: whether a method (given the base config) searches τ; ``None``: all do.

    Returns:
        The :attr:`SweepCommand.groups` function.
    """

    def groups(args: argparse.Namespace, base: Any) -> list[SearchGroup]:
        return [
            SearchGroup((m,), {"method": m}, tau=True if tau is None else tau(m, base))
            for m in args.methods
        ]

    return groups


def known_methods(names: Callable[[], Sequence[str]]) -> Callable[[argparse.Namespace], None]:
    """The :attr:`SweepCommand.check` of ``--methods``: each one of ``names()``.

    Args:
        names: the app's method names (called when the sweep runs).

    Returns:
        The check; it raises ``CLIError`` (``unknown method ...``).
    """

    def check(args: argparse.Namespace) -> None:
        check_names("method", args.methods, names())

    return check


@dataclasses.dataclass(frozen=True)
class AppCLI:
    """An app's command line: its ``train`` and ``sweep`` declared, its own commands added.

    Attributes:
        prog: the program name.
        description: the top-level ``--help`` description.
        train: the training command.
        sweep: the ``sweep`` command, if any.
        commands: the subcommands of :meth:`build_parser` without arguments
            (and so of :meth:`main`), in ``--help`` order: see :meth:`build_parser`.
        single_thread_env: :meth:`main` sets ``OMP_NUM_THREADS=1`` unless already set.
        prepare: :meth:`main` calls it on the parsed arguments before the command.
    """

    prog: str
    description: str
    train: TrainCommand
    sweep: SweepCommand | None = None
    commands: Sequence[str | AddCommand] = ("train", "sweep")
    single_thread_env: bool = True
    prepare: Callable[[argparse.Namespace], None] | None = None

    def build_parser(self, *commands: str | AddCommand) -> argparse.ArgumentParser:
        """The parser with ``commands`` (default :attr:`commands`) in ``--help`` order.

        Args:
            *commands: the declared commands by name (``"train"``, ``"sweep"``)
                and the app's own (a function adding a subparser).

        Returns:
            The parser; each subcommand sets ``func``.
        """
        parser = ArgumentParser(prog=self.prog, description=self.description)
        sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
        declared = {self.train.name: self._add_train, "sweep": self._add_sweep}
        for command in commands or self.commands:
            (declared[command] if isinstance(command, str) else command)(sub)
        return parser

    def main(self, argv: Sequence[str] | None = None) -> int:
        """The app's entry point: user errors exit with code 2 and one stderr line.

        Args:
            argv: arguments (default ``sys.argv[1:]``).

        Returns:
            The exit code of the command (see :func:`~structgrad_app_common.run_command`).
        """
        return run_command(
            self.build_parser, argv, prog=self.prog,
            single_thread_env=self.single_thread_env, prepare=self.prepare,
        )  # fmt: skip

    def add_flags(self, p: argparse.ArgumentParser, *, sweep: bool) -> None:
        """The argument groups, run flags, ``--smoke`` and config flags of a command.

        Args:
            p: the subcommand's parser.
            sweep: a command running many runs: no ``--out``, no per-run
                flags, none of the config fields set per run.
        """
        t = self.train
        titles = t.groups if t.run_group in t.groups else (t.run_group, *t.groups)
        for title in titles:
            p.add_argument_group(title)
        if t.config_first:
            add_config_flags(p, t.config, sweep=sweep)
        r = next(g for g in p._action_groups if g.title == t.run_group)
        if t.run_flags is not None:
            t.run_flags(r)
        if not sweep and t.out_help is not None:
            r.add_argument("--out", help=t.out_help)
        add_run_flags(r, unit=None if sweep else t.unit)
        if sweep and t.batch_resume:
            add_resume_flags(r, unit=t.unit, stop_after=False, progress=False)
        r.add_argument("--smoke", action="store_true", help=t.smoke_help)
        if not t.config_first:
            add_config_flags(p, t.config, sweep=sweep)

    def config(self, args: argparse.Namespace, out: str, **fields: Any) -> Any:
        """The config of parsed flags (``--smoke`` presets applied) writing to ``out``.

        Args:
            args: the parsed flags.
            out: the run (or sweep) folder.
            **fields: further config fields (they win over the flags).

        Returns:
            The config dataclass.
        """
        t = self.train
        own = t.fields(args, out) if t.fields is not None else {}
        return config_from_args(t.config, args, t.smoke, **{"out": out, **own, **fields})

    def _add_train(self, sub: Subparsers) -> None:
        t = self.train
        p = sub.add_parser(t.name, help=t.help, description=t.description)
        if t.flags is not None:
            t.flags(p)
        self.add_flags(p, sweep=False)
        p.set_defaults(func=self._run_train)

    def _run_train(self, args: argparse.Namespace) -> int:
        """Train one run; print its final results as JSON."""
        if self.train.check is not None:
            self.train.check(args)
        out = args.out or self.train.out.format(**vars(args))
        print(json.dumps(self.train.run(self.config(args, out)), indent=2))
        return 0

    def _add_sweep(self, sub: Subparsers) -> None:
        s = self.sweep
        if s is None:
            raise ValueError(f"{self.prog}: no sweep declared")
        p = sub.add_parser("sweep", help=s.help, description=s.description)
        if s.flags is not None:
            s.flags(p)
        add_sweep_flags(
            p,
            methods=s.methods,
            trials=s.trials,
            lr_range=s.lr_range,
            tau_range=s.tau_range,
            methods_help=s.methods_help,
        )
        self.add_flags(p, sweep=True)
        p.set_defaults(func=self._run_sweep)

    def _run_sweep(self, args: argparse.Namespace) -> int:
        """Random search; print and save the markdown table."""
        s = self.sweep
        assert s is not None  # only set as the sweep command's func
        if s.check is not None:
            s.check(args)
        base = self.config(args, args.out, **(s.fields(args) if s.fields is not None else {}))
        return sweep_command(s.sweep, base, args, s.groups(args, base), prog=self.prog)
