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

from collections.abc import Iterator
from typing import Any

from structgrad_app_common import (
    SearchGroup,
    SearchOptions,
    best_trials,
    format_mean_se,
    job_result,
    markdown_table,
    run_search,
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
    base: TrainConfig, tasks: list[str], methods: list[str], search: SearchOptions
) -> tuple[list[dict[str, Any]], str]:
    """Run the search; write ``sweep.jsonl``, ``summary.json`` and ``table.md`` in ``base.out``.

    Every (task, method) searches lr and, for methods with a τ when the search
    has a τ range, τ; the others keep ``base.tau`` (``None``: the method's
    default). See :func:`~structgrad_app_common.run_search`. Each run goes to
    ``<out>/<task>/<method>/trial<i>/seed<s>``.

    Returns:
        ``(records, markdown table)``.
    """

    def groups() -> Iterator[SearchGroup]:
        for task in tasks:
            for method in methods:
                resolve(
                    method,
                    k=2,
                    n=10,
                    aimle_difference=base.aimle_difference,
                    num_samples=base.num_samples,
                )
                fields = {"task": task, "method": method, "progress": False}
                yield SearchGroup((task, method), fields, tau=method in DEFAULT_TAU)

    return run_search(run_trial, summarize, base, search, groups())
