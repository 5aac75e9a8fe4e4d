"""PNG plots: the MC estimate of the expected loss against steps, one curve per estimator."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from structgrad_app_common.jsonl import is_number
from structgrad_app_common.plots import one_at_a_time, plt, save_panels

__all__ = ["plot_runs"]


@one_at_a_time
def plot_runs(
    runs: Mapping[str, list[dict[str, Any]]],
    path: str | os.PathLike[str],
    *,
    title: str,
    optimum: float | None = None,
) -> Path:
    """Mean loss (left) and gradient std (right, log scale) against steps.

    Args:
        runs: estimator name → its JSONL evaluation records (``step``,
            ``mean_loss``, ``grad_std``).
        path: output PNG.
        title: figure title.
        optimum: drawn as a dashed line when given.

    Returns:
        ``path``.
    """
    fig, (ax, ax_std) = plt.subplots(1, 2, figsize=(11, 4))
    for name, records in runs.items():
        recs = [r for r in records if is_number(r.get("step")) and is_number(r.get("mean_loss"))]
        steps = [r["step"] for r in recs]
        ax.plot(steps, [r["mean_loss"] for r in recs], label=name, lw=1.6)
        std = [(r["step"], r["grad_std"]) for r in recs if is_number(r.get("grad_std"))]
        std = [(s, v) for s, v in std if v > 0]
        if std:
            ax_std.plot(*zip(*std, strict=True), label=name, lw=1.2)
    if optimum is not None:
        ax.axhline(optimum, color="0.4", ls="--", lw=1, label="optimum")
    ax.set(title="MC estimate of the expected loss", xlabel="step", ylabel="loss")
    ax_std.set(title="gradient std (per parameter, mean)", xlabel="step", yscale="log")
    ax.legend(fontsize=8)
    return save_panels(fig, (ax, ax_std), path, title=title)
