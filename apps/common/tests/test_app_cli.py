"""The declared app skeleton: ``train`` and ``sweep`` built by ``AppCLI``."""

import dataclasses
import json
import re

from structgrad_app_common import CLIError, Column, Sweep, opt, positive_int, run_command
from structgrad_app_common.app_checks import AppChecks
from structgrad_app_common.app_cli import (
    AppCLI,
    SweepCommand,
    TrainCommand,
    known_methods,
    method_groups,
)
from structgrad_app_common.testing import assert_sweep_outputs

RUN = "run control"


@dataclasses.dataclass(frozen=True)
class Toy:
    out: str
    method: str = opt("a", "method (a)", group="method", sweep=False)
    seed: int = opt(0, "seed (0)", group=RUN, sweep=False)
    lr: float = opt(0.1, "learning rate (0.1)", group="method", sweep=False)
    tau: float = opt(1.0, "τ (1.0)", group="method", sweep=False)
    steps: int = opt(10, "steps (10)", group="method", type=positive_int)
    threads: int = 1
    device: str = "cpu"
    progress: bool = True
    resume: bool = False
    overwrite: bool = False


def _run(config):
    if config.method == "boom":
        raise CLIError("boom")
    return {"out": config.out, "loss": config.lr * config.steps, "steps": config.steps}


def _check(args):
    if args.method == "nope":
        raise CLIError("no such method")


def _add_extra(sub):
    p = sub.add_parser("extra", help="an app's own command")
    p.set_defaults(func=lambda args: 0)


APP = AppCLI(
    "toy",
    description="a toy app",
    train=TrainCommand(
        Toy,
        _run,
        smoke={"steps": 2},
        smoke_help="two steps",
        out="runs/{method}-seed{seed}",
        out_help="output folder (default: runs/<method>-seed<seed>)",
        help="train one",
        description="Train one method.",
        run_group=RUN,
        groups=("method", RUN),
        unit="step",
        check=_check,
    ),
    sweep=SweepCommand(
        Sweep(Toy, _run, ("loss",), (Column("loss", "loss"),), score="loss"),
        help="search",
        description="Random search.",
        methods=["a", "b"],
        trials=2,
        lr_range=(0.01, 0.1),
        tau_range=None,
        groups=method_groups(tau=lambda method, base: method == "a"),
        check=known_methods(lambda: ["a", "b", "boom"]),
    ),
)


def build_parser():
    return APP.build_parser(_add_extra, "train", "sweep")


def main(argv):
    return run_command(build_parser, argv, prog="toy", single_thread_env=False)


CHECKS = AppChecks(main, "toy", build_parser)
test_every_flag_has_help = CHECKS.help_test()


def test_commands_groups_and_flags_in_order():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert list(sub.choices) == ["extra", "train", "sweep"]
    train = sub.choices["train"]
    titles = [g.title for g in train._action_groups][2:]
    assert titles == ["method", RUN]
    run_flags = [a.option_strings[0] for a in train._action_groups[3]._group_actions]
    assert run_flags[:4] == ["--out", "--threads", "--device", "--config"]
    assert run_flags[-2:] == ["--smoke", "--seed"]  # the config's flags come after
    sweep_flags = {a.dest for a in sub.choices["sweep"]._actions}
    assert {"methods", "trials", "smoke", "steps"} <= sweep_flags
    assert not {"seed", "lr", "config", "stop_after"} & sweep_flags


def test_train_prints_final_with_default_out_and_smoke(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--smoke", "--seed", "3"]) == 0
    assert json.loads(capsys.readouterr().out) == {"out": "runs/a-seed3", "loss": 0.2, "steps": 2}
    assert main(["train", "--smoke", "--steps", "5", "--out", "o"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 5  # a flag set explicitly wins
    CHECKS.fail(capsys, ["train", "--method", "nope"], "no such method")


def test_sweep_runs_the_groups_and_checks_first(tmp_path, capsys):
    out = tmp_path / "s"
    argv = ["sweep", "--smoke", "--out", str(out), "--seeds", "0", "1", "--backend", "threading"]
    assert main(argv) == 0
    assert_sweep_outputs(out, rows=2, first="| a |", runs=8)
    CHECKS.sweep_errors(capsys, tmp_path / "e")


def test_add_command_is_declared_by_its_function(capsys):
    import argparse

    import pytest
    from structgrad_app_common import add_command

    def cmd_make_data(args):
        """Generate the data set.

        Writes one .npz file
        into --out.
        """
        print(f"made {args.n}")
        return 0

    def cmd_nodoc(args):
        return 0

    def cmd_half(args):
        """Keep 50% of the runs.

        The other 50% are dropped.
        """
        return 0

    parser = argparse.ArgumentParser(prog="app")
    sub = parser.add_subparsers(dest="command", required=True)
    add_command(sub, cmd_make_data).add_argument("--n", type=int, default=3)
    args = parser.parse_args(["make-data"])
    assert args.func(args) == 0 and capsys.readouterr().out == "made 3\n"
    assert "make-data  generate the data set\n" in parser.format_help()
    assert sub.choices["make-data"].description == "Writes one .npz file into --out."
    add_command(sub, cmd_half)
    assert re.search(r"half +keep 50% of the runs\n", parser.format_help())
    assert "The other 50% are dropped." in sub.choices["half"].format_help()
    with pytest.raises(ValueError, match="cmd_nodoc needs a docstring"):
        add_command(sub, cmd_nodoc)
