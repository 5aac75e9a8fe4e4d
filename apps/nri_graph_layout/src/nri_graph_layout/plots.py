"""PNG plots: learning curves and one test graph with true vs inferred edges."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from structgrad_app_common.plots import one_at_a_time, plt, save_figure, save_panels


@one_at_a_time
def plot_curves(records: list[dict[str, Any]], path: str | os.PathLike[str], *, title: str) -> Path:
    """Training loss, validation ELBO and validation edge precision / recall against steps.

    Args:
        records: the JSONL records of a run.
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    train = [r for r in records if r.get("split") == "train" and r.get("loss") is not None]
    valid = [r for r in records if r.get("split") == "valid"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    if train:
        axes[0].plot([r["step"] for r in train], [r["loss"] for r in train], color="C0")
    axes[0].set(title="training loss (−ELBO, relaxed)", xlabel="step")
    steps = [r["step"] for r in valid]
    axes[1].plot(steps, [r["elbo"] for r in valid], marker="o", color="C1")
    axes[1].set(title="validation ELBO (hard samples)", xlabel="step")
    axes[2].plot(steps, [r["precision"] for r in valid], marker="o", label="precision")
    axes[2].plot(steps, [r["recall"] for r in valid], marker="s", label="recall")
    axes[2].set(title="validation edges", xlabel="step", ylim=(0, 1.02))
    axes[2].legend(loc="best")
    return save_panels(fig, axes, path, title=title)


@one_at_a_time
def plot_graph(
    trajectory: np.ndarray,
    true_adj: np.ndarray,
    pred_edges: np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str,
) -> Path:
    """One graph: trajectories, true edges and inferred edges on the last frame.

    Edges found by the model are green, edges it missed dashed grey, edges it
    added that are not in the true graph red.

    Args:
        trajectory: ``[n, T, 2]`` positions.
        true_adj: ``[n, n]`` 0/1 true adjacency.
        pred_edges: ``[n(n−1)]`` 0/1 inferred directed edges in NRI order.
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    n = trajectory.shape[0]
    pred = np.zeros((n, n), dtype=bool)
    pred[~np.eye(n, dtype=bool)] = pred_edges > 0.5
    pred = pred | pred.T  # an undirected edge is inferred if either direction is
    truth = true_adj > 0
    pos = trajectory[:, -1]
    fig, ax = plt.subplots(figsize=(5.2, 5.2))
    for i in range(n):
        ax.plot(trajectory[i, :, 0], trajectory[i, :, 1], color="0.8", lw=1, zorder=0)
    styles: dict[str, dict[str, Any]] = {
        "found": {"color": "tab:green", "lw": 2.5, "ls": "-"},
        "missed": {"color": "0.45", "lw": 1.5, "ls": "--"},
        "extra": {"color": "tab:red", "lw": 1.2, "ls": "-"},
    }
    seen = set()
    for i in range(n):
        for j in range(i + 1, n):
            kind = "found" if truth[i, j] and pred[i, j] else "missed" if truth[i, j] else None
            if kind is None and pred[i, j]:
                kind = "extra"
            if kind is None:
                continue
            label = kind if kind not in seen else None
            seen.add(kind)
            ax.plot(*pos[[i, j]].T, zorder=1, label=label, **styles[kind])
    ax.scatter(pos[:, 0], pos[:, 1], s=80, color="k", zorder=2)
    correct = int((truth & pred)[np.triu_indices(n, 1)].sum())
    ax.set_title(
        f"{title}\n{correct}/{int(truth.sum()) // 2} true edges found, "
        f"{int(pred.sum()) // 2} inferred"
    )
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


@one_at_a_time
def plot_precision_vs_time(
    runs: dict[str, list[dict[str, Any]]], path: str | os.PathLike[str]
) -> Path:
    """Validation edge precision (hard samples and MAP) against training seconds, per run.

    Args:
        runs: label → the JSONL records of a run (validation records need ``seconds``).
        path: output PNG.

    Returns:
        ``path``.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, (label, records) in enumerate(runs.items()):
        valid = [r for r in records if r.get("split") == "valid" and "seconds" in r]
        minutes = [r["seconds"] / 60 for r in valid]
        axes[0].plot(minutes, [r["precision"] for r in valid], marker=".", color=f"C{i}",
                     label=label)  # fmt: skip
        axes[1].plot(minutes, [r.get("map_precision", math.nan) for r in valid], marker=".",
                     color=f"C{i}", label=label)  # fmt: skip
    axes[0].set(title="validation precision (hard samples)", xlabel="minutes", ylim=(0, 1.02))
    axes[1].set(title="validation MAP precision", xlabel="minutes", ylim=(0, 1.02))
    for ax in axes:
        ax.axhline(0.9, color="0.6", ls=":", lw=1)
    axes[0].legend(loc="lower right", fontsize=7)
    return save_panels(fig, axes, path, title="edge precision against training time")
