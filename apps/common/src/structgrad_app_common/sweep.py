"""Random search and the summaries of a sweep, aggregated as mean ± standard error.

Draws (lr, τ) points with scikit-learn's ``ParameterSampler`` (:func:`sample_trials`,
:func:`search_range`), aggregates the runs' metrics (:func:`aggregate`,
:func:`best_trials`), formats them (:func:`format_mean_se`, :func:`markdown_table`)
and writes the sweep's outputs (:func:`write_sweep`). The joblib runner lives in
:mod:`~structgrad_app_common.parallel` (its names are importable from here too).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from structgrad_app_common.checkpoint import atomic_write_text
from structgrad_app_common.cli import CLIError
from structgrad_app_common.jsonl import json_safe
from structgrad_app_common.parallel import (
    CONNECT_TIMEOUT,
    DASK_INSTALL,
    LOCAL_BACKENDS,
    WORKER_TIMEOUT,
    dask_client,
    require_dask,
    run_parallel,
    run_trials,
)

__all__ = [  # the runner's names are re-exported from structgrad_app_common.parallel
    "CONNECT_TIMEOUT",
    "DASK_INSTALL",
    "LOCAL_BACKENDS",
    "WORKER_TIMEOUT",
    "aggregate",
    "best_trials",
    "dask_client",
    "format_mean_se",
    "jsonl_text",
    "markdown_table",
    "mean_se",
    "require_dask",
    "run_parallel",
    "run_trials",
    "sample_trials",
    "search_range",
    "write_sweep",
]


def sample_trials(
    space: Mapping[str, Any], n_trials: int, *, seed: int = 0
) -> list[dict[str, Any]]:
    """Draw ``n_trials`` configurations with scikit-learn's ``ParameterSampler``.

    Args:
        space: name → a scipy distribution (``scipy.stats.loguniform(...)``:
            sampled), a list (a uniform choice) or any other value (kept fixed).
        n_trials: number of configurations.
        seed: seed of the search itself (independent of the training seeds).

    Returns:
        ``n_trials`` dicts with one value per name, in ``space`` order.
    """
    from sklearn.model_selection import ParameterSampler

    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    drawn = {k: v for k, v in space.items() if hasattr(v, "rvs") or isinstance(v, list)}
    draws = ParameterSampler(drawn, n_trials, random_state=seed) if drawn else [{}] * n_trials
    return [{k: _plain(d[k]) if k in d else v for k, v in space.items()} for d in draws]


def _plain(value: Any) -> Any:
    """A numpy scalar as a Python number (configs stay plain JSON); anything else as is."""
    return value.item() if isinstance(value, np.generic) else value


def mean_se(values: Iterable[float | None]) -> tuple[float, float, int]:
    """Mean, standard error of the mean and count, ignoring ``None`` and NaN.

    The standard error is ``std(ddof=1) / sqrt(n)``; it is NaN when fewer than
    two values remain (and the mean is NaN when none remain).
    """
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(arr.mean())
    se = float(arr.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return mean, se, n


def aggregate(
    records: Iterable[Mapping[str, Any]], by: Sequence[str], metrics: Sequence[str]
) -> list[dict[str, Any]]:
    """Group records and summarise each metric by mean ± standard error.

    Args:
        records: flat dicts (one per trial and seed).
        by: fields that define a group (groups keep first-seen order).
        metrics: numeric fields to summarise.

    Returns:
        One dict per group with the ``by`` fields, ``n`` (records in the group),
        and ``<metric>_mean``, ``<metric>_se`` and ``<metric>_n`` (the values
        averaged: not ``None`` or NaN) for every metric.
    """
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for rec in records:
        groups.setdefault(tuple(rec.get(k) for k in by), []).append(rec)
    rows = []
    for key, recs in groups.items():
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        row["n"] = len(recs)
        for metric in metrics:
            mean, se, n = mean_se(r.get(metric) for r in recs)
            row |= {f"{metric}_mean": mean, f"{metric}_se": se, f"{metric}_n": n}
        rows.append(row)
    return rows


def format_mean_se(mean: float, se: float, digits: int = 3) -> str:
    """``"mean ± se"`` with ``digits`` significant digits (``"n/a"`` for NaN)."""
    if not math.isfinite(mean):
        return "n/a"

    def fmt(x: float, sig: int) -> str:
        # Large numbers in fixed point (no "e+03"): ELBOs are in the thousands.
        return f"{x:.0f}" if abs(x) >= 10**sig else f"{x:.{sig}g}"

    if not math.isfinite(se):
        return fmt(mean, digits)
    return f"{fmt(mean, digits)} ± {fmt(se, 2)}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table (cells are ``str()``-ed, ``|`` escaped)."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = [
        "| " + " | ".join(cell(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def search_range(bounds: tuple[float, float]) -> Any:
    """``scipy.stats.loguniform(low, high)``, or ``low`` itself when ``low == high``.

    Raises:
        CLIError: ``bad search range: ...`` unless ``0 < low <= high < inf``
            (an infinite bound passed, and every run then failed on it).
    """
    from scipy.stats import loguniform

    low, high = bounds
    if not 0 < low <= high < math.inf:  # NaN fails every comparison
        raise CLIError(f"bad search range: need 0 < LOW <= HIGH, both finite, got [{low}, {high}]")
    return low if low == high else loguniform(low, high)


def best_trials(
    records: Sequence[Mapping[str, Any]],
    by: Sequence[str],
    metrics: Sequence[str],
    *,
    score: str,
    higher: bool = False,
    failure: str | None = "every trial failed",
) -> list[dict[str, Any]]:
    """The best trial of every group, aggregated over its seeds.

    Args:
        records: one record per (group, ``trial``, seed), with ``lr`` and ``tau``;
            failed runs hold an ``error`` and are not aggregated.
        by: fields that define a group (first-seen order).
        metrics: numeric fields to aggregate (see :func:`aggregate`).
        score: the metric that ranks the trials (its mean; NaN ranks last).
        higher: the best trial has the highest ``score`` (else the lowest).
        failure: ``error`` of a group whose trials all failed (``None``: no field).

    Returns:
        One row per group: the aggregate of the best trial plus its ``lr`` and
        ``tau``, or ``{<by fields>, "n": 0}`` when every trial failed.
    """
    ok = [r for r in records if "error" not in r]
    by_trial = aggregate(ok, [*by, "trial"], metrics)
    worst = -math.inf if higher else math.inf

    def rank(row: Mapping[str, Any]) -> float:
        value = row[f"{score}_mean"]
        return value if math.isfinite(value) else worst

    def group(row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[k] for k in by)

    rows: list[dict[str, Any]] = []
    for key in dict.fromkeys(map(group, records)):
        cands = [r for r in by_trial if group(r) == key]
        if not cands:
            failed: dict[str, Any] = {**dict(zip(by, key, strict=True)), "n": 0}
            rows.append(failed if failure is None else {**failed, "error": failure})
            continue
        best = (max if higher else min)(cands, key=rank)
        first = next(r for r in ok if group(r) == key and r["trial"] == best["trial"])
        rows.append({**best, "lr": first["lr"], "tau": first["tau"]})
    return rows


def write_sweep(
    out: str | os.PathLike[str],
    records: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    table: str,
) -> None:
    """Write ``sweep.jsonl`` (every run), ``summary.json`` (best rows) and ``table.md``."""
    out = Path(out)
    atomic_write_text(out / "sweep.jsonl", jsonl_text(records))
    atomic_write_text(out / "summary.json", json.dumps(json_safe(rows), indent=2) + "\n")
    atomic_write_text(out / "table.md", table + "\n")


def jsonl_text(records: Iterable[Mapping[str, Any]]) -> str:
    """``records`` as JSONL text: one JSON object (``json_safe``) per line."""
    return "".join(json.dumps(json_safe(r)) + "\n" for r in records)
