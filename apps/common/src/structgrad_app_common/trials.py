"""A whole random-search sweep, which an app declares as data: a :class:`Sweep`.

An app names its run config, its trainer, the fields that name a group, the
metrics it aggregates and its table columns. :func:`run_search` draws (lr, τ)
points for every :class:`SearchGroup` (a method, or a (task, method) pair),
trains each point with every seed through joblib (on this machine, or on a
Dask cluster) in ``<out>/<parts...>/trial<t>/seed<s>``, picks each group's
best trial (mean score over the seeds) and writes ``sweep.jsonl``,
``summary.json`` and ``table.md`` in ``<out>``.

``sweep.jsonl`` grows by one record as each run finishes (and is rewritten in
run order at the end), so a sweep stopped midway is continued with
``--resume``: the runs it records are not run again (that bookkeeping is
:mod:`~structgrad_app_common.sweep_resume`).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from structgrad_app_common.checkpoint import first_line
from structgrad_app_common.cli import CLIError
from structgrad_app_common.runcontrol import check_run_flags, check_unique
from structgrad_app_common.sweep import (
    best_trials,
    format_mean_se,
    markdown_table,
    require_dask,
    run_trials,
    sample_trials,
    search_range,
    write_sweep,
)
from structgrad_app_common.sweep_resume import SETTINGS as SETTINGS  # re-exported
from structgrad_app_common.sweep_resume import sweep_log

__all__ = ["Column", "SearchGroup", "SearchOptions", "Sweep", "run_search"]


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
        n_jobs: joblib workers (on a Dask cluster: every worker thread).
        backend: joblib backend name (on this machine).
        scheduler: address of a Dask scheduler: the runs go to its cluster
            through joblib's ``dask`` backend (``None``: this machine).
        resume: continue the sweep of ``<out>/sweep.jsonl`` (see :func:`run_search`).
        overwrite: start afresh even if ``<out>`` holds a sweep.

    Raises:
        CLIError: ``--seeds needs at least one seed`` when ``seeds`` is empty; ``resume``
            with ``overwrite``; ``scheduler`` with a backend but ``loky`` or without Dask.
    """

    trials: int
    seeds: Sequence[int]
    lr_range: tuple[float, float]
    tau_range: tuple[float, float] | None
    search_seed: int = 0
    n_jobs: int = 2
    backend: str = "loky"
    scheduler: str | None = None
    resume: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not self.seeds:
            raise CLIError("--seeds needs at least one seed")
        check_run_flags(resume=self.resume, overwrite=self.overwrite, stop_after=None)
        if self.scheduler is not None:
            if self.backend != "loky":
                raise CLIError(
                    f"--scheduler runs the trials on a Dask cluster: drop --backend {self.backend}"
                )
            require_dask()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SearchOptions:
        """The options of parsed :func:`~structgrad_app_common.add_search_flags` flags."""
        check_unique("seed", args.seeds)
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class SearchGroup:
    """One group of a sweep, searched on its own: a method, or a (task, method) pair.

    Attributes:
        parts: folders between the sweep folder and ``trial<t>`` (``(method,)``...).
        fields: the group's config fields (``method``, ``task``...).
        tau: τ is searched (if the sweep has a τ range); else every run keeps the
            base config's τ.
    """

    parts: tuple[str, ...]
    fields: Mapping[str, Any]
    tau: bool = True


@dataclass(frozen=True)
class Column:
    """One metric column of the sweep table.

    Attributes:
        header: the column's header.
        metric: an aggregated metric (a row's ``<metric>_mean`` and ``<metric>_se``).
        digits: significant digits of ``mean ± se``.
        scale: factor applied to the mean and the SE (``100``: percent).
        decimals: show the mean alone with this many decimals (times), not ``mean ± se``.
        optional: shown only when some record holds the metric (a task's own metric).
    """

    header: str
    metric: str
    digits: int = 3
    scale: float = 1.0
    decimals: int | None = None
    optional: bool = False

    def cell(self, row: Mapping[str, Any]) -> str:
        """The cell of an aggregated row."""
        mean, se = row[f"{self.metric}_mean"], row[f"{self.metric}_se"]
        if self.decimals is not None:
            return f"{mean:.{self.decimals}f}"
        return format_mean_se(self.scale * mean, self.scale * se, self.digits)


@dataclass(frozen=True)
class Sweep:
    """An app's sweep, declared as data: what a run is, what it reports, how it ranks.

    A record names its run by ``(*by, trial, seed, lr, tau)`` and holds the
    final ``metrics`` and ``keep`` fields and ``out`` (or ``error``). The table
    has the ``by`` fields, lr, τ, the seed count (the ``score`` values averaged:
    a NaN or missing one is not) and the ``columns`` of each group's best trial.

    Attributes:
        config: the run config dataclass (fields ``out``, ``seed``, ``lr``, ``tau``).
        run: trains a config and returns its final metrics; module-level, so that
            joblib workers import it.
        metrics: final metrics aggregated per trial (mean ± standard error).
        columns: the table's metric columns.
        score: the metric that ranks the trials (its mean over the seeds).
        higher: the best trial has the highest score (else the lowest).
        by: the fields that name a group.
        keep: further final fields copied into the records.
        default_tau: method → the τ shown where a record's τ is ``None``.
        failure: ``error`` of a group whose trials all failed (``None``: no field).
        paths: config fields that may hold a file or folder: on a Dask cluster
            an existing relative path is made absolute (the workers' working
            folder is not the client's).
    """

    config: Callable[..., Any]
    run: Callable[[Any], Mapping[str, Any]]
    metrics: tuple[str, ...]
    columns: tuple[Column, ...]
    score: str
    higher: bool = False
    by: tuple[str, ...] = ("method",)
    keep: tuple[str, ...] = ("diverged",)
    default_tau: Mapping[str, float] = field(default_factory=dict)
    failure: str | None = "every trial failed"
    paths: tuple[str, ...] = ("data",)

    def head(self, config: Any, trial: int) -> dict[str, Any]:
        """The fields that name a run: ``(*by, trial, seed, lr, tau)``."""
        head = {k: getattr(config, k) for k in self.by}
        return head | {"trial": trial, "seed": config.seed, "lr": config.lr, "tau": config.tau}

    def key(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        """The run a record (or a :meth:`head`) names, as a hashable key."""
        return tuple(record.get(k) for k in (*self.by, "trial", "seed", "lr", "tau"))

    def record(self, config: Any, trial: int) -> dict[str, Any]:
        """Train one run (in a worker); an error is its record, not the sweep's end."""
        record = self.head(config, trial)
        try:
            final = self.run(config)
        except CLIError as err:
            return {**record, "error": str(err)}
        except Exception as err:  # one bad trial of a search must not lose the table
            return {**record, "error": f"{type(err).__name__}: {first_line(err)}"}
        kept = {k: final.get(k) for k in (*self.metrics, *self.keep)}
        return {**record, **kept, "out": config.out}

    def summarize(self, records: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], str]:
        """Each group's best trial over its seeds (``best_trials``) and the markdown table.

        Args:
            records: one record per (group, trial, seed), see :meth:`record`.
        """
        rows = best_trials(
            records, self.by, self.metrics, score=self.score, higher=self.higher,
            failure=self.failure,
        )  # fmt: skip
        shown = [c for c in self.columns if not c.optional or _holds(records, c.metric)]
        lines = []
        for r in rows:
            names = [r[k] for k in self.by]
            if r["n"] == 0:
                lines.append([*names, "", "", 0, "failed", *[""] * (len(shown) - 1)])
                continue
            tau = r["tau"] if r["tau"] is not None else self.default_tau.get(r.get("method", ""))
            tau_cell, cells = ("" if tau is None else f"{tau:.3g}"), [c.cell(r) for c in shown]
            lines.append([*names, f"{r['lr']:.3g}", tau_cell, r[f"{self.score}_n"], *cells])
        headers = [*self.by, "lr", "τ", "seeds", *(c.header for c in shown)]
        return rows, markdown_table(headers, lines)


def _holds(records: Iterable[Mapping[str, Any]], metric: str) -> bool:
    return any(r.get(metric) is not None for r in records)


def _absolute(base: Any, paths: Sequence[str]) -> Any:
    """``base`` with ``out`` and the existing relative paths of ``paths`` made absolute."""
    changes = {"out": str(Path(base.out).resolve())}
    for name in paths:
        value = getattr(base, name, None)
        path = Path(value) if isinstance(value, str) and value else None
        if path is not None and not path.is_absolute() and path.exists():
            changes[name] = str(path.resolve())
    return dataclasses.replace(base, **changes)


def run_search(
    sweep: Sweep, base: Any, search: SearchOptions, groups: Iterable[SearchGroup]
) -> tuple[list[dict[str, Any]], str]:
    """A random-search sweep: every group's draws × seeds, summarised and written.

    Every group draws ``search.trials`` points from ``{"lr": lr_range, "tau":
    tau_range}`` (log-uniform; the same draws for every group, seeded by
    ``search.search_seed``). Each point is trained with every seed in
    ``<base.out>/<parts...>/trial<t>/seed<s>``; then ``sweep.jsonl``,
    ``summary.json`` and ``table.md`` are written in ``base.out``.

    Each record is appended to ``sweep.jsonl`` as its run finishes. With
    ``search.resume``, the runs that ``sweep.jsonl`` already records (same
    group, trial, seed, lr and τ) are not run again; the base config's settings
    must equal those saved in ``sweep_config.json``. With ``search.scheduler``
    the runs go to the Dask cluster, and ``base.out`` and the existing relative
    paths of ``sweep.paths`` are made absolute (the workers must see them, on a
    shared file system).

    Args:
        sweep: the app's sweep.
        base: the config shared by every run (``base.out`` is the sweep folder).
        search: the search and joblib settings.
        groups: the groups, in table order (a generator may check each one as it goes).

    Returns:
        ``(records, markdown table)``.

    Raises:
        CLIError: a bad search range, a failing joblib backend or Dask scheduler,
            a ``--resume`` without a sweep or with other settings, a sweep in the
            folder without either (and whatever ``groups`` raises).
    """
    lr = search_range(search.lr_range)
    tau = None if search.tau_range is None else search_range(search.tau_range)
    if search.scheduler is not None:
        base = _absolute(base, sweep.paths)
    out = Path(base.out)
    jobs = []
    for group in groups:
        space = {"lr": lr, "tau": tau if group.tau and tau is not None else base.tau}
        for t, point in enumerate(sample_trials(space, search.trials, seed=search.search_seed)):
            for seed in search.seeds:
                run_out = out.joinpath(*group.parts, f"trial{t}", f"seed{seed}")
                fields = {**group.fields, **point, "seed": seed, "out": str(run_out)}
                jobs.append({"config": dataclasses.replace(base, **fields), "trial": t})
    keys = [sweep.key(sweep.head(job["config"], job["trial"])) for job in jobs]
    log = sweep_log(out, base, keys, sweep.key, resume=search.resume,
                    overwrite=search.overwrite, metrics=sweep.metrics)  # fmt: skip
    with log as (done, append):
        todo = [job for job, k in zip(jobs, keys, strict=True) if k not in done]
        run_trials(
            sweep.record, todo, n_jobs=search.n_jobs, backend=search.backend,
            scheduler=search.scheduler, on_result=append,
        )  # fmt: skip
    records = [done[k] for k in keys]
    rows, table = sweep.summarize(records)
    write_sweep(out, records, rows, table)
    return records, table
