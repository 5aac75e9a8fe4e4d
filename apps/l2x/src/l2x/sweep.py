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

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from structgrad_app_common import (
    CLIError,
    LogUniform,
    aggregate,
    atomic_write_text,
    format_mean_se,
    json_safe,
    markdown_table,
    run_parallel,
    sample_trials,
)

from l2x.methods import DEFAULT_TAU, resolve
from l2x.train import TrainConfig, run

SYNTH = ("test_accuracy", "test_precision", "test_median_rank")
BEER = ("test_mse", "test_subset_precision")
METRICS = ("valid_loss", *SYNTH, *BEER, "seconds")


def run_trial(**config: Any) -> dict[str, Any]:
    """Train one configuration in a worker; a user error becomes a record, not a crash."""
    trial = config.pop("trial")
    cfg = TrainConfig(**config)
    record = {
        "task": cfg.task,
        "method": cfg.method,
        "trial": trial,
        "seed": cfg.seed,
        "lr": cfg.lr,
        "tau": cfg.tau,
    }
    try:
        final = run(cfg)
    except CLIError as err:
        return {**record, "error": str(err)}
    return {**record, **{k: final.get(k) for k in (*METRICS, "diverged")}, "out": cfg.out}


def summarize(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Pick each (task, method)'s best trial by mean validation loss and tabulate it.

    Returns:
        ``(rows, markdown)``: one aggregate row per (task, method) and the table.
    """
    ok = [r for r in records if "error" not in r]
    by_trial = aggregate(ok, ["task", "method", "trial"], METRICS)
    rows = []
    for key in dict.fromkeys((r["task"], r["method"]) for r in records):
        cands = [r for r in by_trial if (r["task"], r["method"]) == key]
        if not cands:
            rows.append({"task": key[0], "method": key[1], "n": 0})
            continue
        best = min(cands, key=lambda r: _finite(r["valid_loss_mean"]))
        first = next(r for r in ok if (r["task"], r["method"], r["trial"]) == (*key, best["trial"]))
        rows.append({**best, "lr": first["lr"], "tau": first["tau"]})
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


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.inf


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
    try:
        lr_dist = LogUniform(*lr_range)
        tau_dist = None if tau_range is None else LogUniform(*tau_range)
    except ValueError as err:
        raise CLIError(f"bad search range: {err}") from None
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
                for seed in seeds:
                    out = Path(base.out) / task / method / f"trial{t}" / f"seed{seed}"
                    cfg = dataclasses.replace(
                        base,
                        task=task,
                        method=method,
                        seed=seed,
                        out=str(out),
                        progress=False,
                        **point,
                    )
                    jobs.append({**dataclasses.asdict(cfg), "trial": t})
    try:
        records = run_parallel(run_trial, jobs, n_jobs=n_jobs, backend=backend)
    except (ValueError, KeyError) as err:  # joblib: unknown backend name
        raise CLIError(f"joblib backend {backend!r} failed: {err}") from None
    out = Path(base.out)
    atomic_write_text(
        out / "sweep.jsonl", "".join(json.dumps(json_safe(r)) + "\n" for r in records)
    )
    rows, table = summarize(records)
    atomic_write_text(out / "summary.json", json.dumps(json_safe(rows), indent=2) + "\n")
    atomic_write_text(out / "table.md", table + "\n")
    return records, table
