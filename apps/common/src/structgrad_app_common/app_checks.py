"""The CLI checks of one app, bound to its entry point (:class:`AppChecks`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from structgrad_app_common.jsonl import read_jsonl
from structgrad_app_common.testing import (
    append_record,
    assert_cli_error,
    assert_every_flag_has_help,
    assert_sweep_errors,
    last_checkpoint,
)

__all__ = ["AppChecks"]


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

    def smoke_train(self, out: str | os.PathLike[str], *argv: str) -> dict[str, Any]:
        """Run ``train --smoke --out <out> --no-progress *argv``; its ``final.json``."""
        code = self.main(["train", "--smoke", "--out", str(out), "--no-progress", *argv])
        assert code == 0, f"train exited with {code}"
        final: dict[str, Any] = json.loads((Path(out) / "final.json").read_text())
        return final

    def help_test(self) -> Callable[[], None]:
        """A pytest test: :func:`assert_every_flag_has_help` of the app's parser."""

        def test_every_flag_has_help() -> None:
            assert self.build_parser is not None, "AppChecks needs build_parser"
            assert_every_flag_has_help(self.build_parser())

        return test_every_flag_has_help

    def sweep_errors(self, capsys: Any, out: str | os.PathLike[str]) -> None:
        """:func:`assert_sweep_errors` of ``sweep --smoke --out <out>`` (its first method twice)."""
        argv = ["sweep", "--smoke", "--out", str(out)]
        method = None
        if self.build_parser is not None:
            method = self.build_parser().parse_args(argv).methods[0]
        assert_sweep_errors(capsys, self.main, argv, prog=self.prog, method=method)

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
        hold the same settings but ``out`` and ``progress``, and the app's tag; a
        config.json tagged with another app is refused. Then ``--device nope``
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
        assert first["device"] == "cpu" and first["app"] == self.prog.split()[0]
        capsys.readouterr()
        foreign = folder / "foreign.json"  # another app's run: refused, not half read
        foreign.write_text(json.dumps({**first, "app": "another_app"}))
        rerun = [*command, "--config", str(foreign), "--out", str(folder / "c")]
        self.fail(capsys, rerun, "a config.json of 'another_app', not of")
        self.fail(capsys, [*argv, "--device", "nope", "--out", str(b)], "--device")
        cuda = [*argv, "--device", "cuda", "--out", str(folder / "cuda")]
        if torch.cuda.is_available():
            assert main(cuda) == 0
        else:
            self.fail(capsys, cuda, "CUDA is not available")

    def stops_with_reason(self, argv: Sequence[str], out: Path, reason: str) -> dict[str, Any]:
        """``<argv> --out <out>`` stops early and says why, in ``final.json`` and its last record.

        Returns:
            The content of ``final.json``.
        """
        assert self.main([*argv, "--out", str(out)]) == 0
        final = json.loads((out / "final.json").read_text())
        assert final["diverged"] and final["stopped"].startswith(reason), final["stopped"]
        assert read_jsonl(out / "metrics.jsonl")[-1]["reason"] == final["stopped"]
        return dict(final)
