"""The run-control base of every app's run config, and its one-line checks.

:class:`RunControl` holds how a run is carried out (``--resume``,
``--overwrite``, ``--stop-after``, ``--threads``, ``--device``, the progress
bar, ``--tensorboard``); an app's config subclasses it and declares, as data, the bounds of its
numeric fields (``BOUNDS``) and the fields a resumed run may change (``FREE``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from structgrad_app_common.cli import CLIError
from structgrad_app_common.jsonl import require_tensorboard

__all__ = [
    "RUN_CONTROL",
    "RunControl",
    "check_bounds",
    "check_device",
    "check_num_samples",
    "check_run_flags",
    "check_unique",
]


def check_run_flags(*, resume: bool, overwrite: bool, stop_after: int | None) -> None:
    """One-line errors for ``--resume`` with ``--overwrite`` and ``--stop-after < 1``.

    Raises:
        CLIError: on either mistake.
    """
    if resume and overwrite:
        raise CLIError("--resume and --overwrite exclude each other")
    if stop_after is not None and stop_after < 1:
        raise CLIError(f"--stop-after must be >= 1, got {stop_after}")


def check_bounds(config: object, bounds: Mapping[str, str]) -> None:
    """One-line errors for fields outside their bounds (a ``None`` field passes).

    Args:
        config: the settings.
        bounds: field → ``"> X"`` or ``">= X"``; the flag is ``--field-name``.

    Raises:
        CLIError: ``--<flag> must be <bound>, got <value>`` for the first field out
            of bounds (NaN and ±inf are out of every bound).
    """
    for name, bound in bounds.items():
        value = getattr(config, name)
        op, limit = bound.split()
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool) or not isinstance(value, int | float):  # a hand-edited file
            raise CLIError(f"{flag} must be a number, got {value!r}")
        if math.isinf(value):
            raise CLIError(f"{flag} must be finite, got {value}")
        if not (value > float(limit) if op == ">" else value >= float(limit)):
            raise CLIError(f"{flag} must be {bound}, got {value}")


def check_device(device: str) -> None:
    """A one-line error for a device torch does not know or this machine lacks.

    Raises:
        CLIError: ``--device ...`` for an unknown device, or CUDA without a GPU.
    """
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError as err:
        raise CLIError(f"--device {device!r}: {err}") from None
    if kind not in ("cpu", "cuda"):  # meta, mps...: the apps run on the CPU or CUDA
        raise CLIError(f"--device {device}: the apps run on cpu or cuda, not {kind}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {device}: CUDA is not available on this machine")


@dataclass(kw_only=True)
class RunControl:
    """The settings of how a run is carried out, shared by every app's run config.

    A base of the apps' config dataclasses: its fields are keyword-only, so the
    app's own fields (with or without defaults) come first in ``__init__``, and
    :func:`~structgrad_app_common.training.write_config` lists them last.

    Attributes:
        resume: continue from ``<out>/last.pt``.
        overwrite: start afresh even if ``<out>`` holds a run.
        stop_after: stop (checkpointed, as if killed) after this step / epoch.
        threads: torch threads of the run.
        device: torch device of the model and the data (``cpu``, ``cuda``, ``cuda:1``).
        progress: show a tqdm progress bar.
        tensorboard: also write the metrics as TensorBoard scalars in this
            folder (``None``: only ``metrics.jsonl``); read by
            :func:`~structgrad_app_common.training.open_log` from ``config.json``.
        BOUNDS: field → bound (``"> 0"``, ``">= 1"``) checked by :meth:`check_settings`.
        FREE: fields a resumed run may change (besides ``out`` and these run
            controls); every other field must equal the checkpoint's.
    """

    BOUNDS: ClassVar[Mapping[str, str]] = {}
    FREE: ClassVar[tuple[str, ...]] = ()

    resume: bool = False
    overwrite: bool = False
    stop_after: int | None = None
    threads: int = 1
    device: str = "cpu"
    progress: bool = True
    tensorboard: str | None = None

    def check_settings(self) -> None:
        """One-line errors: ``BOUNDS``, the run flags, the device, ``--tensorboard``."""
        check_bounds(self, {**self.BOUNDS, "threads": ">= 1"})
        check_run_flags(resume=self.resume, overwrite=self.overwrite, stop_after=self.stop_after)
        check_device(self.device)
        if self.tensorboard is not None:
            if not str(self.tensorboard).strip():
                raise CLIError("--tensorboard needs a folder")
            require_tensorboard()

    def resume_keys(self) -> tuple[str, ...]:
        """The fields that must not change between a run and its resumption."""
        free = {"out", *self.FREE, *RUN_CONTROL}
        return tuple(f.name for f in dataclasses.fields(self) if f.name not in free)

    def stops_at(self, step: int) -> bool:
        """Whether ``--stop-after`` ends the run once ``step`` (or epoch) is done."""
        return self.stop_after is not None and step >= self.stop_after


#: The run-control fields (free on resume, listed last in ``config.json``).
RUN_CONTROL = tuple(f.name for f in dataclasses.fields(RunControl))


def check_num_samples(estimator: str, num_samples: int | None, method: str | None = None) -> None:
    """A one-line error for ``--num-samples`` below what ``estimator`` needs.

    A leave-one-out baseline (the ``+`` presets of
    ``structgrad.estimators.score.PRESETS``, e.g. ``e-reinforce+``) compares each
    of the K draws of a row with the mean of the others, so it needs K >= 2.

    Args:
        estimator: the estimator's name (``e-reinforce+``; without an app's
            structure prefix such as ``tree-``).
        num_samples: ``--num-samples`` (``None``: the preset's own K).
        method: the method as the user named it (``tree-e-reinforce+``; default
            ``estimator``), for the message.

    Raises:
        CLIError: naming ``--num-samples``.
    """
    from structgrad.estimators.score import PRESETS

    if num_samples is None or PRESETS.get(estimator, {}).get("baseline") != "loo":
        return
    if num_samples < 2:
        raise CLIError(
            f"--num-samples must be >= 2 for {method or estimator!r} (its leave-one-out baseline "
            f"compares each draw with the others), got {num_samples}"
        )


def check_unique(kind: str, values: Iterable[Any]) -> None:
    """A one-line error for a value listed twice (e.g. ``--seeds 0 0``).

    Raises:
        CLIError: ``<kind> <value> is listed twice``.
    """
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise CLIError(f"{kind} {value!r} is listed twice")
        seen.add(value)
