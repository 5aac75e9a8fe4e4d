"""One sweep's runs: joblib jobs per seed, a job run in a worker, and the run-and-write tail.

A sweep folder holds ``<out>/<parts...>/trial<t>/seed<s>`` runs; every job is
the run's config dataclass as a dict plus its ``trial`` index.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from structgrad_app_common.sweep import run_trials, trial_result, write_sweep

__all__ = ["job_result", "run_jobs", "seed_jobs"]


def seed_jobs(
    base: Any, trial: int, seeds: Sequence[int], *parts: str, **fields: Any
) -> list[dict[str, Any]]:
    """The jobs of one trial: ``base`` with ``fields``, once per seed.

    Args:
        base: the sweep's config dataclass (``base.out`` is the sweep folder).
        trial: the trial index.
        seeds: training seeds.
        *parts: folders between ``base.out`` and ``trial<t>`` (method, task...).
        **fields: config fields of the trial (method, lr, τ...).

    Returns:
        One dict per seed: the config's fields (``seed`` and ``out`` set) and ``trial``.
    """
    jobs = []
    for seed in seeds:
        out = Path(base.out).joinpath(*parts, f"trial{trial}", f"seed{seed}")
        cfg = dataclasses.replace(base, seed=seed, out=str(out), **fields)
        jobs.append({**dataclasses.asdict(cfg), "trial": trial})
    return jobs


def job_result(
    cls: Callable[..., Any],
    run: Callable[[Any], Mapping[str, Any]],
    job: Mapping[str, Any],
    names: Sequence[str],
    keep: Sequence[str],
) -> dict[str, Any]:
    """Run one job of :func:`seed_jobs` in a worker through :func:`trial_result`.

    Args:
        cls: the config dataclass.
        run: trains a config and returns its final metrics.
        job: the config's fields plus ``trial``.
        names: the fields naming the record, in order (``"trial"`` from the job,
            the others from the config).
        keep: final metrics copied into the record.

    Returns:
        The record (with the kept metrics and ``out``, or with ``error``).
    """
    job = dict(job)
    trial = job.pop("trial")
    cfg = cls(**job)
    record = {name: trial if name == "trial" else getattr(cfg, name) for name in names}
    return trial_result(run, cfg, record, keep)


def run_jobs(
    run_trial: Callable[..., dict[str, Any]],
    jobs: Sequence[Mapping[str, Any]],
    summarize: Callable[[list[dict[str, Any]]], tuple[list[dict[str, Any]], str]],
    out: str | Path,
    *,
    n_jobs: int,
    backend: str,
) -> tuple[list[dict[str, Any]], str]:
    """Run every job, summarise, write the sweep outputs in ``out``.

    Args:
        run_trial: a module-level function run as ``run_trial(**job)``.
        jobs: the jobs.
        summarize: records → ``(rows, markdown table)``.
        out: the sweep folder (``sweep.jsonl``, ``summary.json``, ``table.md``).
        n_jobs: joblib workers.
        backend: joblib backend name.

    Returns:
        ``(records, markdown table)``.
    """
    records = run_trials(run_trial, jobs, n_jobs=n_jobs, backend=backend)
    rows, table = summarize(records)
    write_sweep(out, records, rows, table)
    return records, table
