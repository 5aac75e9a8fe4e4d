"""Random search over log-uniform lr and τ, several seeds, through joblib.

For every method, ``trials`` (lr, τ) pairs are drawn log-uniformly (τ only for
methods that have one) and each pair is trained with every seed. The best
pair of a method is the one with the highest mean validation ELBO over seeds;
the table reports its test metrics as mean ± standard error over the seeds.
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

from nri_graph_layout.config import TrainConfig
from nri_graph_layout.methods import resolve
from nri_graph_layout.train import run

METRICS = ("valid_elbo", "test_elbo", "test_precision", "test_recall", "seconds")


def run_trial(**config: Any) -> dict[str, Any]:
    """Train one configuration in a worker; errors become a record, not a crash."""
    keep = (
        "valid_elbo",
        "test_elbo",
        "test_precision",
        "test_recall",
        "test_accuracy",
        "seconds",
        "diverged",
        "plots",
    )
    return job_result(TrainConfig, run, config, ("method", "trial", "seed", "lr", "tau"), keep)


def summarize(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Pick each method's best trial (mean validation ELBO) and tabulate its test metrics.

    Args:
        records: one record per (method, trial, seed) from :func:`run_trial`.

    Returns:
        ``(rows, markdown)``: one summary dict per method (aggregate fields plus
        ``lr``, ``tau``) and the markdown table.
    """
    rows = best_trials(records, ["method"], METRICS, score="valid_elbo", higher=True)
    headers = [
        "method",
        "lr",
        "τ",
        "seeds",
        "test ELBO",
        "edge precision",
        "edge recall",
        "valid ELBO",
        "s / run",
    ]
    lines = []
    for r in rows:
        if r["n"] == 0:
            lines.append([r["method"], "", "", 0, "failed", "", "", "", ""])
            continue
        cell = {m: format_mean_se(r[f"{m}_mean"], r[f"{m}_se"]) for m in METRICS}
        lines.append(
            [
                r["method"],
                f"{r['lr']:.3g}",
                f"{r['tau']:.3g}",
                r["n"],
                cell["test_elbo"],
                cell["test_precision"],
                cell["test_recall"],
                cell["valid_elbo"],
                f"{r['seconds_mean']:.0f}",
            ]
        )
    return rows, markdown_table(headers, lines)


def run_sweep(
    base: TrainConfig,
    methods: list[str],
    search: SearchOptions,
    *,
    fixed: dict[str, dict[str, float]] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Run the search and write ``sweep.jsonl``, ``summary.json`` and ``table.md`` in ``base.out``.

    Each method searches lr and, if it has one, τ (else it keeps ``base.tau``);
    see :func:`~structgrad_app_common.run_search`. Each run goes to
    ``<out>/<method>/trial<i>/seed<s>``.

    Args:
        base: settings shared by every run (``out`` is the sweep folder).
        methods: app method names.
        search: the random search and joblib settings.
        fixed: method → fixed ``{"lr": ..., "tau": ...}``: that method runs
            this one point (with every seed) instead of a random search.

    Returns:
        ``(records, markdown table)``.
    """

    def groups() -> Iterator[SearchGroup]:
        for method in methods:
            spec = resolve(
                method,
                n_nodes=2,
                tau=base.tau,
                straight_through=base.straight_through,
                symmetric=base.symmetric,
                aimle_difference=base.aimle_difference,
                num_samples=base.num_samples,
            )
            fields = {"method": method, "progress": False}
            point = (fixed or {}).get(method)
            yield SearchGroup((method,), fields, tau=spec.has_tau, fixed=point)

    return run_search(run_trial, summarize, base, search, groups())
