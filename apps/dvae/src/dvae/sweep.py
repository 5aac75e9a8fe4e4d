"""Random search over log-uniform lr and τ, several seeds, through joblib.

For every method, ``trials`` (lr, τ) pairs are drawn log-uniformly and each
pair is trained with every seed (one joblib task per run). The best pair of a
method has the lowest mean final validation loss over seeds; the table reports
its final test loss (and unrelaxed training loss) as mean ± standard error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from structgrad_app_common import (
    CLIError,
    SearchGroup,
    SearchOptions,
    best_trials,
    format_mean_se,
    job_result,
    markdown_table,
    run_search,
)

from dvae.config import TrainConfig
from dvae.train import run

__all__ = ["run_sweep", "run_trial", "summarize"]

RECORD = ("method", "trial", "seed", "lr", "tau")
METRICS = ("valid_loss", "test_loss", "train_loss", "train_loss_hard", "seconds")


def run_trial(**config: Any) -> dict[str, Any]:
    """Train one configuration in a worker; errors become a record, not a crash."""
    return job_result(TrainConfig, run, config, RECORD, (*METRICS, "diverged"))


def summarize(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Pick each method's best trial (mean validation loss) and tabulate it.

    Args:
        records: one record per (method, trial, seed) from :func:`run_trial`.

    Returns:
        ``(rows, markdown)``: one summary dict per method and the markdown table.
    """
    rows = best_trials(records, ["method"], METRICS, score="valid_loss")
    lines = []
    for row in rows:
        if row["n"] == 0:
            lines.append([row["method"], "", "", 0, "failed", "", "", ""])
            continue
        cell = {m: format_mean_se(row[f"{m}_mean"], row[f"{m}_se"], 4) for m in METRICS}
        lines.append(
            [
                row["method"],
                f"{row['lr']:.3g}",
                f"{row['tau']:.3g}",
                row["n"],
                cell["test_loss"],
                cell["valid_loss"],
                cell["train_loss_hard"],
                f"{row['seconds_mean']:.0f}",
            ]
        )
    headers = ["method", "lr", "τ", "seeds", "test loss", "valid loss", "train (unrelaxed)", "s"]
    return rows, markdown_table(headers, lines)


def run_sweep(
    base: TrainConfig, methods: list[str], search: SearchOptions
) -> tuple[list[dict[str, Any]], str]:
    """Run the search; write ``sweep.jsonl``, ``summary.json`` and ``table.md`` in ``base.out``.

    Every method searches (lr, τ) (see :func:`~structgrad_app_common.run_search`);
    each run goes to ``<out>/<method>/trial<i>/seed<s>``.

    Args:
        base: settings shared by every run (``out`` is the sweep folder).
        methods: app method names.
        search: the random search and joblib settings.

    Returns:
        ``(records, markdown table)``.

    Raises:
        CLIError: no validation split, a bad range, a failing backend.
    """
    if base.valid_size == 0:
        raise CLIError("the sweep ranks trials by validation loss: pass --valid-size N > 0")
    groups = [SearchGroup((method,), {"method": method}) for method in methods]
    return run_search(run_trial, summarize, base, search, groups)


def epoch_table(folder: str | Path, *, every: int = 1) -> str:
    """Per-epoch mean ± SE over the seed runs ``<folder>/seed*/metrics.jsonl``.

    Args:
        folder: a trial folder of a sweep (or any folder of ``seed*`` runs).
        every: keep every ``every``-th epoch (and the last).

    Returns:
        A markdown table: epoch, training objective, unrelaxed training loss, test loss.

    Raises:
        CLIError: if the folder holds no run logs.
    """
    from structgrad_app_common import mean_se, read_jsonl

    logs = [read_jsonl(p) for p in sorted(Path(folder).glob("seed*/metrics.jsonl"))]
    logs = [log for log in logs if log]
    if not logs:
        raise CLIError(f"{str(folder)!r} holds no seed*/metrics.jsonl run logs")
    last = min(len(log) for log in logs)
    keys = ("train_loss", "train_loss_hard", "test_loss")
    lines = []
    for e in range(last):
        if (e + 1) % every and e + 1 != last:
            continue
        cells = [format_mean_se(*mean_se(log[e][k] for log in logs)[:2], 4) for k in keys]
        lines.append([e + 1, *cells])
    headers = ["epoch", "train (objective)", "train (unrelaxed)", f"test ({len(logs)} seeds)"]
    return markdown_table(headers, lines)
