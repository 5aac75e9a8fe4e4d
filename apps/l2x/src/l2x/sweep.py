"""Random search and multi-seed comparisons through ``structgrad_app_common.sweep``.

For every (task, method), ``trials`` settings are drawn (learning rate
log-uniform in ``lr_range``; τ log-uniform in ``tau_range`` for methods that
have one, else the method's default) and each is trained with every seed, one
joblib task per run. The best setting of a (task, method) is the one with the
lowest mean validation loss; the table reports its test metrics as mean ±
standard error over the seeds. A one-point range (``LOW == HIGH``) fixes the
value, which turns the sweep into a plain multi-seed comparison.
"""

from __future__ import annotations

from typing import Any

from structgrad_app_common import (
    CLIError,
    best_trials,
    format_mean_se,
    job_result,
    markdown_table,
    run_jobs,
    sample_trials,
    search_range,
    seed_jobs,
)

from l2x.methods import DEFAULT_TAU, resolve
from l2x.train import TrainConfig, run

SYNTH = ("test_accuracy", "test_precision", "test_median_rank")
BEER = ("test_mse", "test_subset_precision")
METRICS = ("valid_loss", *SYNTH, *BEER, "seconds")


def run_trial(**config: Any) -> dict[str, Any]:
    """Train one configuration in a worker; a user error becomes a record, not a crash."""
    names = ("task", "method", "trial", "seed", "lr", "tau")
    return job_result(TrainConfig, run, config, names, (*METRICS, "diverged"))


def summarize(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Pick each (task, method)'s best trial by mean validation loss and tabulate it.

    Returns:
        ``(rows, markdown)``: one aggregate row per (task, method) and the table.
    """
    rows = best_trials(records, ["task", "method"], METRICS, score="valid_loss", failure=None)
    beer = any(r["task"] == "beer" for r in records)
    synth = any(r["task"] != "beer" for r in records)
    headers = ["task", "method", "lr", "τ", "seeds"]
    headers += ["accuracy", "precision", "median rank"] if synth else []
    headers += ["MSE ×100", "subset precision ×100"] if beer else []
    headers += ["s / run"]
    lines = []
    for r in rows:
        if r["n"] == 0:
            lines.append([r["task"], r["method"], "", "", 0, *["failed"] * (len(headers) - 5)])
            continue
        tau = r["tau"] if r["tau"] is not None else DEFAULT_TAU.get(r["method"])
        line = [
            r["task"],
            r["method"],
            f"{r['lr']:.3g}",
            "" if tau is None else f"{tau:.3g}",
            r["n"],
        ]
        if synth:
            line += [format_mean_se(r[f"{m}_mean"], r[f"{m}_se"]) for m in SYNTH]
        if beer:
            line += [format_mean_se(100 * r[f"{m}_mean"], 100 * r[f"{m}_se"]) for m in BEER]
        lines.append([*line, f"{r['seconds_mean']:.0f}"])
    return rows, markdown_table(headers, lines)


def run_sweep(
    base: TrainConfig,
    tasks: list[str],
    methods: list[str],
    *,
    trials: int,
    seeds: list[int],
    lr_range: tuple[float, float],
    tau_range: tuple[float, float] | None,
    search_seed: int = 0,
    n_jobs: int = 2,
    backend: str = "loky",
) -> tuple[list[dict[str, Any]], str]:
    """Run the search; write ``sweep.jsonl``, ``summary.json`` and ``table.md`` in ``base.out``.

    Each run goes to ``<out>/<task>/<method>/trial<i>/seed<s>``.

    Returns:
        ``(records, markdown table)``.
    """
    if not seeds:
        raise CLIError("--seeds needs at least one seed")
    lr_dist = search_range(lr_range)
    tau_dist = None if tau_range is None else search_range(tau_range)
    jobs = []
    for task in tasks:
        for method in methods:
            resolve(
                method,
                k=2,
                n=10,
                aimle_difference=base.aimle_difference,
                num_samples=base.num_samples,
            )
            has_tau = method in DEFAULT_TAU and tau_dist is not None
            space = {"lr": lr_dist, "tau": tau_dist if has_tau else None}
            for t, point in enumerate(sample_trials(space, trials, seed=search_seed)):
                fields = {"task": task, "method": method, "progress": False, **point}
                jobs += seed_jobs(base, t, seeds, task, method, **fields)
    return run_jobs(run_trial, jobs, summarize, base.out, n_jobs=n_jobs, backend=backend)
