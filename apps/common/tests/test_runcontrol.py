"""Run control as data (bounds, resume-checked fields, device) and ``--config FILE``."""

import dataclasses
import json
import math
from typing import ClassVar

import pytest
import torch
from structgrad_app_common import (
    ArgumentParser,
    CLIError,
    RunControl,
    add_config_flags,
    add_run_flags,
    check_bounds,
    config_from_args,
    opt,
    read_back,
    run_command,
)
from structgrad_app_common.runcontrol import check_device
from structgrad_app_common.testing import assert_cli_error
from structgrad_app_common.training import start_run, write_config


@dataclasses.dataclass
class Cfg(RunControl):
    BOUNDS: ClassVar = {"lr": "> 0", "epochs": ">= 1", "extra": ">= 0"}
    FREE: ClassVar = ("epochs",)

    out: str
    lr: float = 0.1
    epochs: int = 2
    extra: float | None = None
    sizes: tuple[int, ...] = (2, 3)


def test_check_bounds_messages_none_and_nan():
    check_bounds(Cfg("o"), Cfg.BOUNDS)
    for field, value, message in (
        ("lr", 0.0, "--lr must be > 0, got 0.0"),
        ("lr", math.nan, "--lr must be > 0, got nan"),
        ("epochs", 0, "--epochs must be >= 1, got 0"),
        ("extra", -1.0, "--extra must be >= 0, got -1.0"),
        ("lr", math.inf, "--lr must be finite, got inf"),
        ("extra", -math.inf, "--extra must be finite, got -inf"),
    ):
        with pytest.raises(CLIError, match=f"^{message}$"):
            check_bounds(Cfg("o", **{field: value}), Cfg.BOUNDS)
    with pytest.raises(CLIError, match="--threads must be >= 1"):
        Cfg("o", threads=0).check_settings()


def test_resume_keys_leave_out_free_and_run_control():
    assert Cfg("o").resume_keys() == ("lr", "extra", "sizes")


def test_check_device():
    check_device("cpu")
    with pytest.raises(CLIError, match="--device 'nope'"):
        check_device("nope")
    if not torch.cuda.is_available():
        with pytest.raises(CLIError, match="CUDA is not available"):
            check_device("cuda")
    with pytest.raises(CLIError, match="run on cpu or cuda, not meta"):
        check_device("meta")  # was a traceback from the training loop
    with pytest.raises(CLIError, match="--lr must be a number, got 'two'"):
        check_bounds(Cfg("o", lr="two"), Cfg.BOUNDS)  # a hand-edited config.json


def test_start_run_checks_sets_threads_and_resumes(tmp_path):
    cfg = Cfg(str(tmp_path), threads=2)
    assert start_run(cfg) is None and torch.get_num_threads() == 2
    torch.set_num_threads(1)
    torch.save({"config": write_config(tmp_path, cfg)}, tmp_path / "last.pt")
    assert start_run(Cfg(str(tmp_path), epochs=5, resume=True)) is not None  # epochs is free
    with pytest.raises(CLIError, match="settings differ from the checkpoint: lr"):
        start_run(Cfg(str(tmp_path), lr=0.5, resume=True))
    with pytest.raises(CLIError, match="--lr must be > 0"):
        start_run(Cfg(str(tmp_path), lr=-1.0))
    (tmp_path / "file").write_text("")
    with pytest.raises(CLIError, match=r"--out '.*file' is a file, not a folder"):
        start_run(Cfg(str(tmp_path / "file")))


def _main(argv):
    def train(args):
        cfg = config_from_args(Cfg, args, {}, out=args.out)  # --no-progress: progress
        print(json.dumps(dataclasses.asdict(cfg)))
        return 0

    def build():
        parser = ArgumentParser(prog="app")
        sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
        p = sub.add_parser("train", help="train")
        p.add_argument("--out", required=True, help="run folder")
        p.add_argument("--lr", type=float, default=0.1, help="learning rate")
        p.add_argument("--epochs", type=int, default=2, help="epochs")
        add_run_flags(p, unit="epoch")
        p.set_defaults(func=train)
        p = sub.add_parser("sweep", help="sweep")
        add_run_flags(p)
        p.set_defaults(func=lambda args: 0)
        return parser

    return run_command(build, argv, prog="app", single_thread_env=False)


def test_add_run_flags_and_config_read_back(tmp_path, capsys):
    argv = ["train", "--out", "a", "--lr", "0.5", "--device", "cpu", "--threads", "3"]
    assert _main([*argv, "--no-progress"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["lr"], first["device"], first["threads"], first["progress"]) == (
        0.5,
        "cpu",
        3,
        False,
    )
    first["progress"] = True  # not read back
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({**first, "epochs": 7, "resume": True, "stop_after": 1}))
    # --out is read back too (no longer required); given flags win; run flags are not read.
    assert _main(["train", "--config", str(saved), "--epochs", "9"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again == {**first, "epochs": 9}
    # A sweep reads no run's config: argparse's own error, not the file's.
    assert_cli_error(capsys, _main, ["sweep", "--config", "none"], "unrecognized", prog="app")
    (tmp_path / "bad.json").write_text("[1]")
    for path, needle in ((tmp_path / "none.json", "not a readable"), (tmp_path / "bad.json",
                         "no settings")):  # fmt: skip
        assert_cli_error(capsys, _main, ["train", "--config", str(path)], needle, prog="app")


@dataclasses.dataclass
class Flagged:
    out: str
    lr: float = opt(0.1, "learning rate (0.1)", group="opt", sweep=False)
    k: int | None = opt(None, "size", type=int)
    fast: bool = opt(False, "go fast", group="opt")
    kind: str = opt("a", "kind", choices=("a", "b"))
    plain: int = 3


def test_opt_fields_become_flags():
    parser = ArgumentParser(prog="app")
    add_config_flags(parser, Flagged)
    args = parser.parse_args(["--lr", "0.5", "--k", "2", "--fast"])
    assert (args.lr, args.k, args.fast, args.kind) == (0.5, 2, True, "a")
    assert not hasattr(args, "plain") and not hasattr(args, "out")
    assert Flagged("o") == Flagged("o", 0.1, None, False, "a", 3)  # plain defaults
    groups = {g.title: [a.dest for a in g._group_actions] for g in parser._action_groups}
    assert groups["opt"] == ["lr", "fast"] and "kind" in groups["options"]
    sweep = ArgumentParser(prog="app")
    add_config_flags(sweep, Flagged, sweep=True)
    assert not hasattr(sweep.parse_args([]), "lr")


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ({"lr": "abc"}, "setting 'lr': invalid float value: 'abc'"),
        ({"lr": True}, "setting 'lr' has an unexpected value True"),
        ({"k": [2, 3]}, "setting 'k': invalid int value: '2,3'"),
        ({"k": 2.5}, "setting 'k': invalid int value"),
        ({"kind": "c"}, "setting 'kind': invalid choice"),
        ({"kind": None}, "setting 'kind' cannot be null"),
        ({"fast": "yes"}, "setting 'fast' must be true or false"),
        ({"out": {"a": 1}}, "setting 'out' must be a single value"),
        ({"out": ""}, "setting 'out': needs a path, got an empty value"),
    ],
)
def test_config_read_back_parses_each_setting_as_its_flag(tmp_path, setting, needle):
    # A hand-edited config.json gets the flag's own checks, not a wrong Python type.
    parser = ArgumentParser(prog="app")
    parser.add_argument("--out")
    parser.add_argument("--config")
    add_config_flags(parser, Flagged)
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps(setting))
    with pytest.raises(CLIError, match=rf"--config '{saved}': {needle}"):
        read_back(parser, ["--config", str(saved)])


@pytest.mark.parametrize("form", ["--conf", "--con=", "--config="])
def test_config_read_back_under_a_prefix_argparse_takes(tmp_path, form):
    # argparse took `--conf FILE` as --config, which read_back missed: the file
    # was silently ignored (a malformed one too).
    parser = ArgumentParser(prog="app")
    parser.add_argument("--config")
    parser.add_argument("--count", type=int, default=0)  # --co is ambiguous
    add_config_flags(parser, Flagged)
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({"lr": 3}))
    argv = [form + str(saved)] if form.endswith("=") else [form, str(saved)]
    read_back(parser, argv)
    assert parser.parse_args(argv).lr == 3.0
    saved.write_text("{not json")
    with pytest.raises(CLIError, match=r"not a readable config\.json"):
        read_back(parser, argv)
    read_back(parser, ["--co", str(saved)])  # not --config: argparse refuses it itself


def test_config_read_back_takes_the_last_config_as_argparse_does(tmp_path):
    parser = ArgumentParser(prog="app")
    parser.add_argument("--config")
    add_config_flags(parser, Flagged)
    first, last = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"lr": 3}))
    last.write_text(json.dumps({"lr": 7}))
    argv = [f"--config={first}", "--config", str(last)]
    read_back(parser, argv)
    args = parser.parse_args(argv)
    assert (args.config, args.lr) == (str(last), 7.0)


def test_config_read_back_converts_json_values(tmp_path):
    parser = ArgumentParser(prog="app")
    parser.add_argument("--config")
    add_config_flags(parser, Flagged)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({"lr": 1, "k": None, "fast": True, "seeds": [3, 4], "x": 1}))
    read_back(parser, ["--config", str(saved)])
    args = parser.parse_args([])
    assert (args.lr, args.k, args.fast, args.seeds) == (1.0, None, True, [3, 4])
    assert isinstance(args.lr, float)
    parser.add_argument("--clip", type=float, default=15.0)  # null is inf (json_safe)
    saved.write_text(json.dumps({"clip": None}))
    read_back(parser, ["--config", str(saved)])
    assert parser.parse_args([]).clip == math.inf
    saved.write_text(json.dumps({"seeds": 3}))
    with pytest.raises(CLIError, match="setting 'seeds' must be a list"):
        read_back(parser, ["--config", str(saved)])


@pytest.mark.parametrize("flag", ["--out", "--data", "--config", "--tensorboard", "--scheduler"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_path_is_a_one_line_error(capsys, flag, value):
    # Path("") is the current folder: --out "" wrote a run into it.
    parser = ArgumentParser(prog="app")
    parser.add_argument(flag, help="a path")
    with pytest.raises(SystemExit) as err:
        parser.parse_args([flag, value])
    assert err.value.code == 2
    needle = f"app: error: argument {flag}: needs a path, got an empty value"
    assert needle in capsys.readouterr().err
    assert parser.parse_args([flag, "x"]) is not None
    if flag == "--config":  # read before parsing, by read_back
        with pytest.raises(CLIError, match=r"^--config needs a path, got an empty value$"):
            read_back(parser, ["--config", value])
