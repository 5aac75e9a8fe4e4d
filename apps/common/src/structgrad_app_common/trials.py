"""One sweep's runs: the search, joblib jobs per seed, a job run in a worker, the tail.

A sweep folder holds ``<out>/<parts...>/trial<t>/seed<s>`` runs; every job is
the run's config dataclass as a dict plus its ``trial`` index.
:func:`run_search` is a whole random-search sweep: :class:`SearchOptions` (the
``sweep`` flags) applied to every :class:`SearchGroup` (a method, or a
(task, method) pair).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from structgrad_app_common.cli import CLIError
from structgrad_app_common.sweep import (
    run_trials,
    sample_trials,
    search_range,
    trial_result,
    write_sweep,
)

__all__ = ["SearchGroup", "SearchOptions", "job_result", "run_jobs", "run_search", "seed_jobs"]

Summarize = Callable[[list[dict[str, Any]]], tuple[list[dict[str, Any]], str]]


@dataclass(frozen=True)
class SearchOptions:
    """A sweep's random search over (lr, τ) and its joblib settings.

    The values of the :func:`~structgrad_app_common.add_search_flags` flags but
    ``--out`` (see :meth:`from_args`).

    Attributes:
        trials: (lr, τ) draws per group.
        seeds: training seeds of every draw (at least one).
        lr_range: log-uniform bounds of the learning rate.
        tau_range: log-uniform bounds of τ, or ``None`` (no group searches τ).
        search_seed: seed of the random search.
        n_jobs: joblib workers.
        backend: joblib backend name.

    Raises:
        CLIError: ``--seeds needs at least one seed`` when ``seeds`` is empty.
    """

    trials: int
    seeds: Sequence[int]
    lr_range: tuple[float, float]
    tau_range: tuple[float, float] | None
    search_seed: int = 0
    n_jobs: int = 2
    backend: str = "loky"

    def __post_init__(self) -> None:
        if not self.seeds:
            raise CLIError("--seeds needs at least one seed")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SearchOptions:
        """The options of parsed :func:`~structgrad_app_common.add_search_flags` flags."""
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class SearchGroup:
    """One group of a sweep, searched on its own: a method, or a (task, method) pair.

    Attributes:
        parts: folders between the sweep folder and ``trial<t>`` (``(method,)``...).
        fields: the group's config fields (``method``, ``task``, ``progress``...).
        tau: τ is searched (if the sweep has a τ range); else every run keeps the
            base config's τ.
        fixed: ``{"lr": ..., "tau": ...}``: this one point (with every seed)
            instead of the random search.
    """

    parts: tuple[str, ...]
    fields: Mapping[str, Any]
    tau: bool = True
    fixed: Mapping[str, Any] | None = None


def run_search(
    run_trial: Callable[..., dict[str, Any]],
    summarize: Summarize,
    base: Any,
    search: SearchOptions,
    groups: Iterable[SearchGroup],
) -> tuple[list[dict[str, Any]], str]:
    """A random-search sweep: every group's draws × seeds, summarised and written.

    Every group draws ``search.trials`` points from ``{"lr": lr_range, "tau":
    tau_range}`` (log-uniform; the same draws for every group, seeded by
    ``search.search_seed``). Each point is trained with every seed in
    ``<base.out>/<parts...>/trial<t>/seed<s>``; then ``sweep.jsonl``,
    ``summary.json`` and ``table.md`` are written in ``base.out``.

    Args:
        run_trial: a module-level function run as ``run_trial(**job)`` (see
            :func:`job_result`).
        summarize: records → ``(rows, markdown table)``.
        base: the config dataclass shared by every run (``base.out`` is the sweep folder).
        search: the search and joblib settings.
        groups: the groups, in table order (a generator may check each one as it goes).

    Returns:
        ``(records, markdown table)``.

    Raises:
        CLIError: a bad search range or a failing joblib backend (and whatever
            ``groups`` raises).
    """
    lr = search_range(search.lr_range)
    tau = None if search.tau_range is None else search_range(search.tau_range)
    jobs = []
    for group in groups:
        space = {"lr": lr, "tau": tau if group.tau and tau is not None else base.tau}
        if group.fixed is not None:
            points = [{**space, **group.fixed}]
        else:
            points = sample_trials(space, search.trials, seed=search.search_seed)
        for t, point in enumerate(points):
            jobs += seed_jobs(base, t, search.seeds, *group.parts, **group.fields, **point)
    return run_jobs(
        run_trial, jobs, summarize, base.out, n_jobs=search.n_jobs, backend=search.backend
    )


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
    summarize: Summarize,
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
