"""Append-only JSONL metrics with resume-safe truncation, optionally mirrored to TensorBoard.

The JSONL file is the record of a run. :class:`TensorBoardMirror` (``--tensorboard
DIR``) writes each numeric field of each record as a TensorBoard scalar beside
it, for watching a run live; it needs the ``tensorboard`` package and torch's
``SummaryWriter``, imported only when a mirror is made.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from structgrad_app_common.checkpoint import atomic_write_text
from structgrad_app_common.cli import CLIError

__all__ = [
    "JsonlLogger",
    "TensorBoardMirror",
    "is_number",
    "json_safe",
    "read_jsonl",
    "require_tensorboard",
]

TENSORBOARD_INSTALL = "pip install tensorboard"


def json_safe(value: Any) -> Any:
    """Make a value JSON-safe: NaN and ±inf become ``None``, numpy scalars plain."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def read_jsonl(path: str | os.PathLike[str], *, key: str | None = None) -> list[dict[str, Any]]:
    """Read every record of a JSONL file (an unfinished last line is skipped).

    A line that is not a JSON object elsewhere (an edited or damaged file) is
    skipped with a one-line warning on stderr; the records after it are kept.
    With ``key`` (the step field), so is a record whose ``key`` is missing or
    not a number.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = [(i, line) for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)]
    lines = [(i, line) for i, line in lines if line.strip()]
    records = []
    for i, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i != lines[-1][0]:  # (a last line cut by a crash is expected)
                _skipped(path, i, "is not JSON")
            continue
        if not isinstance(record, dict):
            _skipped(path, i, "is not a JSON object")
        elif key is not None and not is_number(record.get(key)):
            _skipped(path, i, f"has no numeric {key!r}")
        else:
            records.append(record)
    return records


def _skipped(path: Path, line: int, why: str) -> None:
    print(f"warning: {path}: line {line} {why} and is skipped", file=sys.stderr)


def require_tensorboard() -> None:
    """A one-line error unless TensorBoard event files can be written.

    Raises:
        CLIError: ``--tensorboard needs the tensorboard package: pip install tensorboard``.
    """
    try:
        import tensorboard  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise CLIError(
            f"--tensorboard needs the tensorboard package: {TENSORBOARD_INSTALL}"
        ) from None


def is_number(value: Any) -> bool:
    """Whether a record's ``value`` is a number (a bool, a string or ``None`` is not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


class TensorBoardMirror:
    """Each numeric field of each record as a TensorBoard scalar at the record's step.

    A record's tag is the field's name, prefixed by the record's ``split``
    (``valid/nll``) when it has one. The step field itself, booleans, ``None``
    (a NaN or inf in the JSONL) and non-numeric fields are not written; records
    without an integer step are skipped.

    Args:
        log_dir: the folder of the event files (created if missing).
        step_key: the record field holding the step.
        purge_step: on resume, the first step written again: TensorBoard
            drops the events of the earlier files from that step on (as the
            JSONL is cut back), so the resumed steps are not shown twice.

    Raises:
        CLIError: the ``tensorboard`` package is not installed.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        *,
        step_key: str = "step",
        purge_step: int | None = None,
    ) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.step_key = step_key
        self._writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def write(self, record: dict[str, Any]) -> None:
        """Write a (JSON-safe) record's numeric fields and flush."""
        step = record.get(self.step_key)
        if not isinstance(step, int) or isinstance(step, bool):
            return
        split = record.get("split")
        prefix = f"{split}/" if isinstance(split, str) else ""
        for key, value in record.items():
            if key != self.step_key and is_number(value):
                self._writer.add_scalar(prefix + key, value, global_step=step)
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()


class JsonlLogger:
    """One JSON object per line, flushed after every record.

    Args:
        path: the log file.
        resume_step: when resuming from a checkpoint saved at this step, records
            with ``step > resume_step`` (written after that checkpoint by the
            run that died) are dropped first, so the resumed run does not
            duplicate them. ``None`` starts a fresh log (the file is emptied).
        step_key: the record field holding the step.
        tensorboard: also write every record to a :class:`TensorBoardMirror`
            in this folder (``None``: no mirror).

    Raises:
        CLIError: ``tensorboard`` without the ``tensorboard`` package.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        resume_step: int | None = None,
        step_key: str = "step",
        tensorboard: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.step_key = step_key
        self.mirror = None
        if tensorboard is not None:
            purge = None if resume_step is None else resume_step + 1
            self.mirror = TensorBoardMirror(tensorboard, step_key=step_key, purge_step=purge)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            kept: list[dict[str, Any]] = []
        else:
            kept = [r for r in read_jsonl(self.path, key=step_key) if r[step_key] <= resume_step]
            if not kept and resume_step > 0:  # a run resumed with its log lost
                print(
                    f"warning: {self.path} holds no record up to the checkpoint's {step_key} "
                    f"{resume_step} (missing or cut): the log starts after it",
                    file=sys.stderr,
                )
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._handle = self.path.open("a", encoding="utf-8")

    def log(self, record: dict[str, Any]) -> None:
        """Append one record (NaN and inf are written as ``null``), and mirror it."""
        safe = json_safe(record)
        self._handle.write(json.dumps(safe) + "\n")
        self._handle.flush()
        if self.mirror is not None:
            self.mirror.write(safe)

    def close(self) -> None:
        """Close the file (and the mirror)."""
        self._handle.close()
        if self.mirror is not None:
            self.mirror.close()

    def __enter__(self) -> JsonlLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
