"""Run-folder plumbing of a training run: flag checks, ``--resume``, RNG state.

A run folder holds ``config.json``, ``metrics.jsonl``, ``last.pt`` (the full
state, written at every evaluation) and ``final.json``. :func:`open_run`
refuses to overwrite a finished run unless asked, and on ``--resume`` loads
``last.pt`` after checking that the settings that shape the run are unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from structgrad_app_common.batches import (
    derived_generator,
    epoch_batch,
    global_seed,
    shuffled,
    steps_per_epoch,
    torch_seed,
)
from structgrad_app_common.checkpoint import (
    atomic_write_text,
    first_line,
    load_checkpoint,
    save_checkpoint,
)
from structgrad_app_common.cli import CLIError
from structgrad_app_common.jsonl import JsonlLogger, json_safe
from structgrad_app_common.runcontrol import RUN_CONTROL, RunControl

__all__ = [
    "derived_generator",
    "epoch_batch",
    "global_seed",
    "load_entry",
    "open_log",
    "open_run",
    "restore_state",
    "save_if_best",
    "save_state",
    "shuffled",
    "start_run",
    "steps_per_epoch",
    "torch_seed",
    "training_state",
    "write_config",
    "write_final",
]


def _norm(value: Any) -> Any:
    # A tuple saved through JSON comes back as a list.
    return list(value) if isinstance(value, tuple | list) else value


def open_run(
    out: str | os.PathLike[str],
    config: Any,
    resume_keys: Sequence[str],
    *,
    resume: bool,
    overwrite: bool,
) -> dict[str, Any] | None:
    """Check the run folder and load its ``last.pt`` on resume.

    Args:
        out: the run folder.
        config: the run's settings (attributes named by ``resume_keys``).
        resume_keys: settings that must equal those saved in the checkpoint's
            ``"config"`` entry.
        resume: continue from ``<out>/last.pt``.
        overwrite: start afresh even if the folder holds a run.

    Returns:
        The checkpoint on resume, else ``None``.

    Raises:
        CLIError: ``out`` is a file, no checkpoint to resume from, changed
            settings, or an existing run without ``--resume`` / ``--overwrite``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {str(out)!r} is a file, not a folder")
    last = out / "last.pt"
    if resume:
        if not last.is_file():
            raise CLIError(f"--resume: no checkpoint {str(last)!r} to resume from")
        state = load_checkpoint(last)
        saved = state.get("config")
        if not isinstance(saved, dict):
            raise CLIError(f"--resume: {str(last)!r} is not a checkpoint of this app (no config)")
        # A key that a checkpoint lacks was written by a version without that
        # setting, which behaved as its default does.
        defaults = _defaults(config)
        changed = [
            k
            for k in resume_keys
            if _norm(saved.get(k, defaults.get(k))) != _norm(getattr(config, k))
        ]
        if changed:
            raise CLIError(f"--resume: settings differ from the checkpoint: {', '.join(changed)}")
        return state
    if last.exists() and not overwrite:
        raise CLIError(f"{str(out)!r} already holds a run; pass --resume or --overwrite")
    return None


def start_run(config: RunControl) -> dict[str, Any] | None:
    """Check the settings, set torch's threads and open the run folder (see :func:`open_run`).

    Returns:
        The checkpoint on ``--resume``, else ``None``.

    Raises:
        CLIError: bad settings, no checkpoint to resume from, changed settings,
            or an existing run without ``--resume`` / ``--overwrite``.
    """
    import torch

    config.check_settings()
    torch.set_num_threads(config.threads)
    out = config.out  # type: ignore[attr-defined]
    keys = config.resume_keys()
    return open_run(out, config, keys, resume=config.resume, overwrite=config.overwrite)


def _defaults(config: Any) -> dict[str, Any]:
    """The default of every field of the dataclass ``config`` that has one."""
    if not dataclasses.is_dataclass(config):
        return {}
    return {
        f.name: f.default
        for f in dataclasses.fields(config)
        if f.default is not dataclasses.MISSING
    }


def write_config(out: str | os.PathLike[str], config: Any) -> dict[str, Any]:
    """Write the dataclass ``config`` as ``<out>/config.json``; return it as a JSON-safe dict.

    The file starts with ``"app"``, the top-level package of the config's class
    (``nri_graph_layout``, ``dvae``...: what ``--config`` checks it against);
    the fields of a :class:`RunControl` base come last, after the app's own.
    The returned dict holds the fields only.
    """
    values = dataclasses.asdict(config)
    last = RUN_CONTROL if isinstance(config, RunControl) else ()
    ordered = {k: v for k, v in values.items() if k not in last} | {k: values[k] for k in last}
    conf = {"app": type(config).__module__.partition(".")[0], **json_safe(ordered)}
    atomic_write_text(Path(out) / "config.json", json.dumps(conf, indent=2) + "\n")
    return conf


def write_final(out: str | os.PathLike[str], final: dict[str, Any]) -> dict[str, Any]:
    """Write ``<out>/final.json`` (NaN and inf as ``null``); return ``final``."""
    atomic_write_text(Path(out) / "final.json", json.dumps(json_safe(final), indent=2) + "\n")
    return final


def open_log(
    out: str | os.PathLike[str],
    state: dict[str, Any] | None,
    *,
    step_key: str = "step",
    tensorboard: str | os.PathLike[str] | None = None,
) -> JsonlLogger:
    """``<out>/metrics.jsonl``, cut back to the checkpoint's ``step_key`` on resume.

    Args:
        out: the run folder.
        state: the checkpoint a resumed run starts from, else ``None``.
        step_key: the record field holding the step (or epoch).
        tensorboard: mirror the records as TensorBoard scalars in this folder;
            ``None``: the ``tensorboard`` setting of ``<out>/config.json``
            (:func:`write_config` of a :class:`RunControl` with ``--tensorboard``),
            if any.
    """
    resume_step = None if state is None else int(state[step_key])
    if tensorboard is None:
        tensorboard = _saved_setting(out, "tensorboard")
    return JsonlLogger(
        Path(out) / "metrics.jsonl",
        resume_step=resume_step,
        step_key=step_key,
        tensorboard=tensorboard,
    )


def _saved_setting(out: str | os.PathLike[str], key: str) -> Any:
    """The ``key`` setting of ``<out>/config.json`` (``None``: no file, no such setting)."""
    try:
        saved = json.loads((Path(out) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved.get(key) if isinstance(saved, dict) else None


def training_state(model: Any, optimizer: Any, generator: Any, **extra: Any) -> dict[str, Any]:
    """The resumable state: model, optimiser, sampling generator, global torch RNG, ``extra``."""
    import torch

    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        **extra,
    }


def load_entry(target: Any, state: dict[str, Any], key: str, source: str) -> None:
    """``target.load_state_dict(state[key])``; a missing or mismatched entry is a :class:`CLIError`.

    Args:
        target: a module or optimiser.
        state: a loaded checkpoint.
        key: the entry to load.
        source: the checkpoint's path, for the message.
    """
    if key not in state:
        raise CLIError(f"checkpoint {source!r} has no {key!r} entry: not a run of this app")
    try:
        target.load_state_dict(state[key])
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        raise CLIError(
            f"checkpoint {source!r} does not fit this {key} ({first_line(err)})"
        ) from None


def restore_state(
    state: dict[str, Any], model: Any, optimizer: Any, generator: Any, *, source: str = "last.pt"
) -> None:
    """Load what :func:`training_state` saved back into the objects (and the global RNG)."""
    import torch

    load_entry(model, state, "model", source)
    load_entry(optimizer, state, "optimizer", source)
    try:
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
    except (KeyError, RuntimeError, TypeError) as err:
        raise CLIError(f"checkpoint {source!r} has no usable random state ({err})") from None


def save_state(
    path: str | os.PathLike[str], model: Any, optimizer: Any, generator: Any, **extra: Any
) -> None:
    """Write :func:`training_state` of the objects and ``extra`` to ``path`` (``last.pt``)."""
    save_checkpoint(path, training_state(model, optimizer, generator, **extra))


def save_if_best(
    path: str | os.PathLike[str],
    model: Any,
    value: float,
    best: float,
    *,
    higher: bool = False,
    **extra: Any,
) -> float:
    """Save ``model`` to ``path`` (``best.pt``) when ``value`` beats ``best``.

    Args:
        path: the checkpoint of the best model.
        model: its ``state_dict()`` is saved as ``"model"``.
        value: the new validation score.
        best: the best score so far.
        higher: a higher score is better (else a lower one).
        **extra: saved beside the model (step, score...).

    Returns:
        The best score, ``value`` if it was saved.
    """
    if not (value > best if higher else value < best):
        return best
    save_checkpoint(path, {"model": model.state_dict(), **extra})
    return value
