"""Random search over log-uniform lr and τ, several seeds, through joblib.

For every method, ``trials`` (lr, τ) pairs are drawn log-uniformly (τ only for
methods that have one) and each pair is trained with every seed. The best
pair of a method is the one with the highest mean validation ELBO over seeds;
the table reports its test metrics as mean ± standard error over the seeds.
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

from nri_graph_layout.methods import resolve
from nri_graph_layout.train import TrainConfig, run

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
    *,
    trials: int,
    seeds: list[int],
    lr_range: tuple[float, float],
    tau_range: tuple[float, float],
    search_seed: int = 0,
    n_jobs: int = 2,
    backend: str = "loky",
    fixed: dict[str, dict[str, float]] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Run the search and write ``sweep.jsonl``, ``summary.json`` and ``table.md`` in ``base.out``.

    Args:
        base: settings shared by every run (``out`` is the sweep folder; each
            run goes to ``<out>/<method>/trial<i>/seed<s>``).
        methods: app method names.
        trials: (lr, τ) draws per method.
        seeds: training seeds of every draw.
        lr_range: log-uniform bounds of the learning rate.
        tau_range: log-uniform bounds of τ (methods without τ keep ``base.tau``).
        search_seed: seed of the random search.
        n_jobs: joblib workers.
        backend: joblib backend name.
        fixed: method → fixed ``{"lr": ..., "tau": ...}``: that method runs
            this one point (with every seed) instead of a random search.

    Returns:
        ``(records, markdown table)``.
    """
    if not seeds:
        raise CLIError("--seeds needs at least one seed")
    lr_dist, tau_dist = search_range(lr_range), search_range(tau_range)
    tasks = []
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
        space = {"lr": lr_dist, "tau": tau_dist if spec.has_tau else base.tau}
        if fixed and method in fixed:
            points = [{**space, **fixed[method]}]
        else:
            points = sample_trials(space, trials, seed=search_seed)
        for t, point in enumerate(points):
            tasks += seed_jobs(base, t, seeds, method, method=method, progress=False, **point)
    return run_jobs(run_trial, tasks, summarize, base.out, n_jobs=n_jobs, backend=backend)
