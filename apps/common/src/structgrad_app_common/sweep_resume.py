"""The bookkeeping that lets a stopped sweep continue: its settings and its run log.

:func:`~structgrad_app_common.run_search` saves the training settings of the
base config in ``<out>/sweep_config.json`` and appends one record to
``<out>/sweep.jsonl`` as each run finishes (:func:`sweep_log`). With
``--resume`` the runs that log records are kept and not run again, once the
settings are checked to be those of the sweep (:func:`done_runs`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from structgrad_app_common.checkpoint import atomic_write_text
from structgrad_app_common.cli import CLIError
from structgrad_app_common.jsonl import json_safe, read_jsonl
from structgrad_app_common.runcontrol import RUN_CONTROL
from structgrad_app_common.sweep import jsonl_text

__all__ = ["LOG", "SETTINGS", "check_settings", "done_runs", "sweep_log", "sweep_settings"]

#: The training settings of a sweep, checked on ``--resume``.
SETTINGS = "sweep_config.json"
#: One record per finished run, appended as it finishes.
LOG = "sweep.jsonl"

#: The run a record names (``Sweep.key``: group fields, trial, seed, lr, τ).
Key = tuple[Any, ...]


def sweep_settings(base: Any) -> dict[str, Any]:
    """The base config's settings that shape a run (JSON values), see :data:`SETTINGS`.

    Every field but ``out`` and the run control (threads, device, progress...):
    the fields a single run may change on resume (its ``FREE`` ones, such as
    the epochs or the data file) would mix different runs in one table here.
    """
    skip = {"out", *RUN_CONTROL}
    keys = [f.name for f in dataclasses.fields(base) if f.name not in skip]
    return json.loads(json.dumps(json_safe({k: getattr(base, k) for k in keys})))


def check_settings(path: Path, base: Any) -> None:
    """Refuse to continue a sweep or run unless the settings saved in ``path`` are ``base``'s.

    Compares :func:`sweep_settings`; a setting the file lacks was left out by
    an earlier version and is not checked.

    Raises:
        CLIError: ``path`` unreadable or not a JSON object, or settings that
            differ (named).
    """
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CLIError(f"--resume: cannot check the settings in {str(path)!r} ({err})") from None
    if not isinstance(saved, dict):
        raise CLIError(f"--resume: {str(path)!r} holds no settings")
    now = sweep_settings(base)
    changed = [k for k in now if k in saved and saved[k] != now[k]]
    if changed:
        what = ", ".join(changed)
        raise CLIError(f"--resume: settings differ from those in {str(path)!r}: {what}")


def done_runs(
    out: Path,
    base: Any,
    key: Callable[[Mapping[str, Any]], Key],
    metrics: Sequence[str] = (),
) -> dict[Key, dict[str, Any]]:
    """The runs ``<out>/sweep.jsonl`` records, by ``key``, after checking the settings.

    A failed run (a record with an ``error``) is not among them: ``--resume``
    runs it again (the failure may have been the machine's, or a bug fixed since).
    Nor is a record with a ``metrics`` value neither a number nor ``null`` (a
    hand-edited file): it is skipped with a one-line warning and run again.

    Raises:
        CLIError: no ``sweep.jsonl`` to resume, or settings that differ from
            those saved in ``sweep_config.json``.
    """
    log = out / LOG
    if not log.is_file():
        raise CLIError(f"--resume: no sweep {str(log)!r} to resume")
    check_settings(out / SETTINGS, base)
    done = {}
    for r in read_jsonl(log):
        bad = [m for m in metrics if not isinstance(r.get(m), int | float | None)]
        if bad:
            why = f"a record's {bad[0]!r} is not a number: its run is run again"
            print(f"warning: {log}: {why}", file=sys.stderr)
        elif "error" not in r:
            done[key(r)] = r
    return done


@contextlib.contextmanager
def sweep_log(
    out: Path,
    base: Any,
    keys: Sequence[Key],
    key: Callable[[Mapping[str, Any]], Key],
    *,
    resume: bool,
    overwrite: bool = False,
    metrics: Sequence[str] = (),
) -> Iterator[tuple[dict[Key, dict[str, Any]], Callable[[int, dict[str, Any]], None]]]:
    """Start (or, with ``resume``, continue) the run log of a sweep in ``out``.

    Saves the settings in ``sweep_config.json`` and rewrites ``sweep.jsonl``
    with the runs it already records among ``keys`` (none unless ``resume``).

    Args:
        out: the sweep folder.
        base: the config shared by every run (its settings are saved or checked).
        keys: the runs of the sweep.
        key: the run a record names.
        resume: keep the runs ``sweep.jsonl`` records (see :func:`done_runs`).
        overwrite: start afresh in a folder that holds a sweep (else refused).
        metrics: the record fields that must be numbers (or ``null``) to be kept.

    Yields:
        ``(done, append)``: the finished runs by key, and the ``on_result`` of
        :func:`~structgrad_app_common.run_trials`, which appends a record to
        ``sweep.jsonl`` (flushed) and to ``done``.

    Raises:
        CLIError: ``out`` holds a sweep and neither ``resume`` nor ``overwrite``
            is set (its runs would be retrained and its log rewritten), or
            what :func:`done_runs` raises.
    """
    if not (resume or overwrite) and (out / LOG).exists():
        raise CLIError(
            f"{str(out)!r} already holds a sweep ({LOG}); pass --resume to continue it "
            "or --overwrite to start afresh"
        )
    done = done_runs(out, base, key, metrics) if resume else {}
    done = {k: done[k] for k in keys if k in done}
    atomic_write_text(out / SETTINGS, json.dumps(sweep_settings(base), indent=2) + "\n")
    log = out / LOG
    atomic_write_text(log, jsonl_text(done.values()))
    with log.open("a", encoding="utf-8") as handle:

        def append(_: int, record: dict[str, Any]) -> None:
            handle.write(jsonl_text([record]))
            handle.flush()
            done[key(record)] = record

        yield done, append
