"""A run's progress between records and across ``--resume``.

:class:`Window` averages the training metrics since the last record;
:func:`resume_progress` reads a ``last.pt``'s counters back and refuses values
no run writes (a crafted or corrupted checkpoint); :func:`same_data` refuses a
resume on other data than the run's.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from structgrad_app_common.cli import CLIError

__all__ = ["Progress", "Window", "data_digest", "resume_progress", "same_data"]


@dataclass
class Window:
    """Weighted sums of the training metrics since the last record."""

    sums: dict[str, float] = field(default_factory=dict)
    weight: float = 0.0

    def add(self, metrics: dict[str, float], weight: float) -> None:
        """Add one batch's metrics."""
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * weight
        self.weight += weight

    def means(self) -> dict[str, float]:
        """The weighted means (empty before any batch)."""
        return {k: v / self.weight for k, v in self.sums.items()} if self.weight else {}

    def reset(self) -> None:
        """Start a new window."""
        self.sums, self.weight = {}, 0.0


class Progress(NamedTuple):
    """Where a checkpointed run stands.

    Attributes:
        step: optimiser steps taken (>= 0).
        best: the best validation score so far (``-inf`` before any).
        elapsed: training seconds so far (>= 0).
        window: the training metrics since the last record.
    """

    step: int
    best: float
    elapsed: float
    window: Window


def resume_progress(state: dict[str, Any], source: str) -> Progress:
    """The progress saved in the checkpoint ``state`` (read from ``source``).

    Raises:
        CLIError: a checkpoint of an older version (missing or mistyped entries),
            or counters no run writes: a negative or fractional step, negative
            or non-finite seconds, a NaN or ``+inf`` best score, a negative or
            non-finite window weight.
    """
    try:
        window = Window({str(k): float(v) for k, v in state["window"].items()})
        window.weight = float(state["window_weight"])
        raw_step = float(state["step"])
        progress = Progress(int(raw_step), float(state["best"]), float(state["elapsed"]), window)
    except (KeyError, AttributeError, TypeError, ValueError, OverflowError):
        raise CLIError(
            f"--resume: {source!r} was written by an older version of this app; "
            "start afresh with --overwrite"
        ) from None
    bad = [
        name
        for name, ok in (
            ("step", raw_step == progress.step >= 0),
            ("elapsed", math.isfinite(progress.elapsed) and progress.elapsed >= 0),
            ("best", progress.best < math.inf),  # False for NaN too
            ("window_weight", math.isfinite(window.weight) and window.weight >= 0),
        )
        if not ok
    ]
    if bad:
        raise CLIError(
            f"--resume: {source!r} is corrupt ({', '.join(bad)} out of range); "
            "start afresh with --overwrite"
        )
    return progress


def data_digest(path: str | Path) -> str:
    """A digest of the content of the file ``path``."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def same_data(config: Any, state: dict[str, Any] | None) -> dict[str, str]:
    """``{"data_digest": ...}`` of the file ``config.data`` for ``last.pt`` (else ``{}``).

    ``--data`` may change on resume (a moved or renamed copy), its content not:
    a run resumed on another data set was recorded as one run on the new file.
    A folder (MNIST, BeerAdvocate) is not digested: it may hold files the run
    does not read (other aspects, unpacked copies, notes).

    Raises:
        CLIError: on resume, the checkpoint's digest differs from the file's.
    """
    path = getattr(config, "data", None)
    if not path or not Path(path).is_file():
        return {}
    digest = data_digest(path)
    if state is not None and state.get("data_digest", digest) != digest:
        raise CLIError(
            f"--resume: --data {str(path)!r} holds other data than the run was trained on "
            "(a moved or renamed copy is fine, changed content is not)"
        )
    return {"data_digest": digest}
