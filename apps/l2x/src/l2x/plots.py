"""PNG plots (Agg backend): learning curves and selection frequency per feature."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from structgrad_app_common.plots import one_at_a_time, plt, save_figure, save_panels

__all__ = ["plot_curves", "plot_selection"]


@one_at_a_time
def plot_curves(records: list[dict[str, Any]], path: str | os.PathLike[str], *, title: str) -> Path:
    """Training and validation loss, and the explanation metric, against epochs.

    Args:
        records: the per-epoch JSONL records of a run.
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    epochs = [r["epoch"] for r in records]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].plot(epochs, [r.get("train_loss") for r in records], marker="o", label="train")
    axes[0].plot(epochs, [r.get("valid_loss") for r in records], marker="s", label="valid")
    axes[0].set(title="loss (train: sampled, valid: top-k)", xlabel="epoch")
    axes[0].legend()
    if records and "valid_precision" in records[0]:
        axes[1].plot(epochs, [r["valid_precision"] for r in records], marker="o", label="precision")
        axes[1].plot(epochs, [r["valid_accuracy"] for r in records], marker="s", label="accuracy")
        axes[1].set(title="validation", xlabel="epoch", ylim=(0, 1.02))
        axes[1].legend(loc="lower right")
    else:
        axes[1].plot(epochs, [r.get("valid_mse") for r in records], marker="o", color="C2")
        axes[1].set(title="validation MSE", xlabel="epoch")
    return save_panels(fig, axes, path, title=title)


@one_at_a_time
def plot_selection(
    frequency: list[float] | np.ndarray,
    truth: np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str,
) -> Path:
    """Bars: how often each feature is selected on the test set vs how often it is relevant.

    Args:
        frequency: ``[n]`` fraction of test instances selecting each feature.
        truth: ``[n]`` fraction of test instances for which the feature is relevant.
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    n = len(truth)
    pos = np.arange(n)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.bar(pos - 0.2, truth, width=0.4, color="0.7", label="relevant (ground truth)")
    ax.bar(pos + 0.2, frequency, width=0.4, color="C0", label="selected (top-k)")
    ax.set_xticks(pos, [f"x{i + 1}" for i in range(n)])
    ax.set(ylim=(0, 1.05), ylabel="fraction of test instances", title=title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
