"""Append-only JSONL metrics with resume-safe truncation."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from structgrad_app_common.checkpoint import atomic_write_text


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


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read every record of a JSONL file (an unfinished last line is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut by a crash ends the log
    return records


class JsonlLogger:
    """One JSON object per line, flushed after every record.

    Args:
        path: the log file.
        resume_step: when resuming from a checkpoint saved at this step, records
            with ``step > resume_step`` (written after that checkpoint by the
            run that died) are dropped first, so the resumed run does not
            duplicate them. ``None`` starts a fresh log (the file is emptied).
        step_key: the record field holding the step.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        resume_step: int | None = None,
        step_key: str = "step",
    ) -> None:
        self.path = Path(path)
        self.step_key = step_key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            kept: list[dict[str, Any]] = []
        else:
            kept = [r for r in read_jsonl(self.path) if r.get(step_key, -1) <= resume_step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._handle = self.path.open("a", encoding="utf-8")

    def log(self, record: dict[str, Any]) -> None:
        """Append one record (NaN and inf are written as ``null``)."""
        self._handle.write(json.dumps(json_safe(record)) + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def __enter__(self) -> JsonlLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
