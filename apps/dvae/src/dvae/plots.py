"""PNG outputs (matplotlib, Agg backend) and the ``final.json`` of a run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from structgrad_app_common import read_jsonl
from structgrad_app_common.plots import one_at_a_time, plt, save_figure
from structgrad_app_common.training import write_final

if TYPE_CHECKING:
    from dvae.config import TrainConfig
    from dvae.data import Dataset
    from dvae.model import DiscreteVAE

__all__ = ["finish", "image_grid", "plot_curves"]


def _save(fig: Any, path: Path) -> Path:
    return save_figure(fig, path, dpi=100, tight=True)


@one_at_a_time
def plot_curves(records: list[dict[str, Any]], path: Path, *, title: str) -> Path:
    """Per-epoch training (relaxed and unrelaxed) and test losses.

    Args:
        records: the JSONL records of a run (one per epoch).
        path: the PNG to write.
        title: the figure title.

    Returns:
        ``path``.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [r["epoch"] for r in records]
    for key, label in (
        ("train_loss", "train (training objective)"),
        ("train_loss_hard", "train, unrelaxed"),
        ("test_loss", "test, unrelaxed"),
    ):
        raw = [r.get(key) for r in records]
        ys = [math.nan if y is None else y for y in raw]
        ax.plot(epochs, ys, marker="o", ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per image (BCE + KL)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


@one_at_a_time
def image_grid(images: np.ndarray, side: int, path: Path, *, cols: int, title: str) -> Path:
    """Grey-level images ``[N, side²]`` in [0, 1] as a grid.

    Args:
        images: the images.
        side: image side.
        path: the PNG to write.
        cols: images per row.
        title: the figure title.

    Returns:
        ``path``.
    """
    rows = math.ceil(len(images) / cols)
    # Grey borders between the images (0 = white, 1 = black in gray_r).
    canvas = np.full((rows * (side + 1) + 1, cols * (side + 1) + 1), 0.3)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        y, x = 1 + r * (side + 1), 1 + c * (side + 1)
        canvas[y : y + side, x : x + side] = img.reshape(side, side)
    fig, ax = plt.subplots(figsize=(cols * 0.6, rows * 0.6 + 0.5))
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    return _save(fig, path)


def finish(
    c: TrainConfig, model: DiscreteVAE, data: Dataset, *, stopped: str | None
) -> dict[str, Any]:
    """Write the PNGs and ``final.json``; ``stopped``: why the run stopped early (else None)."""
    out = Path(c.out)
    records = read_jsonl(out / "metrics.jsonl")
    lastrec = records[-1]
    title = f"{c.method} on {'digits' if c.data is None else 'MNIST'}"
    gen = torch.Generator().manual_seed(c.seed + 3)
    x = torch.from_numpy(data.test[:16])
    with torch.no_grad():
        z = model.sample_hard(model.logits(x), generator=gen)
        recon = torch.sigmoid(model.decode(z))
    pngs = {
        "curves": plot_curves(records, out / "curves.png", title=title),
        "reconstructions": image_grid(
            np.concatenate([x.numpy(), recon.numpy()]),
            data.side,
            out / "reconstructions.png",
            cols=16,
            title=f"{title}: test images (top) and reconstructions (bottom)",
        ),
        "samples": image_grid(
            model.prior_sample(64, generator=gen).numpy(),
            data.side,
            out / "samples.png",
            cols=8,
            title=f"{title}: decoded uniform prior samples",
        ),
    }
    final = {
        "method": c.method,
        "data": data.describe(c.max_train),
        "seed": c.seed,
        "lr": c.lr,
        "tau": c.tau,
        "epochs": lastrec["epoch"],
        "diverged": stopped is not None,
        "stopped": stopped,
        "seconds": lastrec["seconds"],
        **{k: lastrec[k] for k in lastrec if k.startswith(("train_", "valid_", "test_"))},
        "beta": lastrec["beta"],
        "plots": {k: str(v) for k, v in pngs.items()},
        "metrics": str(out / "metrics.jsonl"),
    }
    return write_final(out, final)
