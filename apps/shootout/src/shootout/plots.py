"""Heat-maps of the shootout: structures × estimators, coloured by cosine or log-variance."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from structgrad_app_common.plots import one_at_a_time, plt, save_figure

__all__ = ["heatmap"]

_METRICS = {
    "cosine": ("cosine", "cosine", "cosine similarity to the exact gradient", "viridis"),
    "logvar": ("total_var", "log10 variance", "log10 total variance of one estimate", "magma_r"),
}


@one_at_a_time
def heatmap(rows: list[dict[str, Any]], path: str | Path, *, metric: str = "cosine") -> Path:
    """Write the structures × estimators heat-map of ``metric`` to ``path`` (PNG).

    Args:
        rows: result rows of :func:`shootout.run.run`.
        path: the PNG file.
        metric: ``"cosine"`` or ``"logvar"``; cells are annotated with the value,
            pairs that do not apply are blank.

    Returns:
        The path written.
    """
    key, short, label, cmap = _METRICS[metric]
    limits = (0.0, 1.0) if metric == "cosine" else None
    structures = list(dict.fromkeys(r["structure"] for r in rows))
    estimators = list(dict.fromkeys(r["estimator"] for r in rows))
    grid = np.full((len(structures), len(estimators)), np.nan)
    for r in rows:
        v = math.inf if r[key] is None else float(r[key])  # JSONL stores inf as null
        if metric == "logvar":
            v = math.log10(v) if v > 0 else -math.inf
        grid[structures.index(r["structure"]), estimators.index(r["estimator"])] = v
    finite = grid[np.isfinite(grid)]
    lo, hi = limits or ((float(finite.min()), float(finite.max())) if finite.size else (0, 1))
    # At least 4 x 2.5 inches: a single pair's title and colour bar must fit too.
    size = (max(4.0, 1.0 + 0.75 * len(estimators)), max(2.5, 1.2 + 0.55 * len(structures)))
    fig, ax = plt.subplots(figsize=size)
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
    ax.set_xticks(range(len(estimators)), estimators, rotation=45, ha="right")
    ax.set_yticks(range(len(structures)), structures)
    mid = 0.5 * (lo + hi)
    for i in range(len(structures)):
        for j in range(len(estimators)):
            v = grid[i, j]
            if np.isnan(v):
                continue
            dark = (v < mid) == (metric == "cosine")
            text = f"{v:.2f}" if metric == "cosine" else f"{v:.1f}"
            ax.text(
                j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black"
            )
    fig.colorbar(image, ax=ax, label=short, shrink=0.8)
    ax.set_title(f"gradient estimator shootout: {label}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
