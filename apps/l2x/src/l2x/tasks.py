"""Tasks: the data splits, the model, the per-sample loss and the evaluation of each.

``synthetic`` tasks (``xor``, ``orange_skin``, ``nonlinear_additive``,
``switch``) are generated from ``data_seed`` (train, validation and test from
three derived seeds); ``beer`` reads a BeerAdvocate folder and splits the
held-out reviews 50/50 into validation and test with the training seed, as the
reference does for each of its reruns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from l2x import beer, metrics, synthetic
from l2x.methods import Selector
from l2x.model import BeerModel, L2XModel, SyntheticModel

__all__ = ["TASKS", "Task", "build_task"]

TASKS = (*synthetic.TASKS, "beer")


@dataclass
class Task:
    """Data and behaviour of one task.

    Attributes:
        name: task name.
        n_items: features (synthetic) or token positions (beer) to select from.
        default_k: the explanation size of the reference.
        splits: ``split → (inputs, targets)`` tensors for train, valid, test.
        extra: task-specific arrays (relevance masks, annotations).
    """

    name: str
    n_items: int
    default_k: int
    splits: dict[str, tuple[Tensor, Tensor]]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_synthetic(self) -> bool:
        """Whether the ground truth is known per instance (synthetic tasks)."""
        return self.name != "beer"

    def build_model(self, selector: Selector, *, k: int) -> L2XModel:
        """The task's networks around ``selector``."""
        if self.is_synthetic:
            act = "relu" if self.name in ("xor", "orange_skin") else "selu"
            return SyntheticModel(selector, self.n_items, activation=act)
        return BeerModel(selector, torch.from_numpy(self.extra["embeddings"]), k=k)

    def loss(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-sample loss ``[*S, B]``: soft-label cross-entropy or squared error."""
        if self.is_synthetic:
            logq = F.log_softmax(pred, dim=-1)  # [*S, B, 2]
            return -(target * logq[..., 1] + (1 - target) * logq[..., 0])
        return (pred - target) ** 2

    @torch.no_grad()
    def evaluate(self, model: L2XModel, split: str, batch_size: int) -> dict[str, Any]:
        """Evaluation-mode metrics of a split (top-k of the logits, no noise).

        Returns:
            ``loss`` (cross-entropy or MSE, the model-selection criterion) and,
            for synthetic tasks, ``accuracy``, ``precision``, ``median_rank``
            (and on test ``frequency``, a list per feature); for beer, ``mse``
            and (on test) ``subset_precision``. All floats but ``frequency``.
        """
        was_training = model.training
        model.eval()
        x, y = self.splits[split]
        device = next(model.parameters()).device
        preds, logits, sels = [], [], []
        for start in range(0, len(x), batch_size):
            p, z, lg = model(x[start : start + batch_size].to(device))
            preds.append(p.cpu())
            logits.append(lg.cpu())
            sels.append(z.cpu())
        pred = torch.cat(preds)
        out: dict[str, Any] = {"loss": float(self.loss(pred, y).mean())}
        if self.is_synthetic:
            relevant = self.extra[f"{split}_relevant"]
            sel = torch.cat(sels).numpy()
            out["accuracy"] = float(((pred[:, 1] > pred[:, 0]) == (y > 0.5)).float().mean())
            out["precision"] = metrics.precision(sel, relevant)
            out["median_rank"] = metrics.median_rank(torch.cat(logits).numpy(), relevant)
            if split == "test":
                out["frequency"] = metrics.selection_frequency(sel).tolist()
        else:
            out["mse"] = out["loss"]
            if split == "test":
                xa = torch.from_numpy(self.extra["x_annotated"])
                sel = torch.cat(
                    [
                        model(xa[s : s + batch_size].to(device))[1].cpu()
                        for s in range(0, len(xa), batch_size)
                    ]
                ).numpy()
                assert isinstance(model, BeerModel)  # build_model's model of the beer task
                out["subset_precision"] = metrics.subset_precision(
                    sel, self.extra["annotated_tokens"], self.extra["annotated_spans"], model.k
                )
        model.train(was_training)
        return out


def build_task(
    name: str,
    *,
    data: str | None = None,
    aspect: int = 1,
    max_len: int = 350,
    sizes: tuple[int, int, int] = (50_000, 5_000, 10_000),
    data_seed: int = 0,
    seed: int = 0,
) -> Task:
    """Generate or load a task.

    Args:
        name: one of :data:`TASKS`.
        data: BeerAdvocate folder (beer only).
        aspect: beer aspect.
        max_len: beer sequence length.
        sizes: synthetic train / validation / test sizes.
        data_seed: synthetic data seed.
        seed: training seed (beer: the validation / test split of the held-out set).

    Returns:
        The task.
    """
    if name != "beer":
        splits, extra = {}, {}
        for i, split in enumerate(("train", "valid", "test")):
            d = synthetic.generate(name, sizes[i], seed=data_seed * 3 + i)
            splits[split] = (torch.from_numpy(d.x), torch.from_numpy(d.p))
            extra[f"{split}_relevant"] = d.relevant
        return Task(name, synthetic.NUM_FEATURES, synthetic.DEFAULT_K[name], splits, extra)
    assert data is not None
    b = beer.load(data, aspect=aspect, max_len=max_len)
    perm = np.random.default_rng(seed).permutation(len(b.x_heldout))
    half = len(perm) // 2
    valid, test = perm[:half], perm[half:]
    if len(valid) == 0:
        valid = test  # a one-review held-out file: validate on the test review

    def pair(x: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
        return torch.from_numpy(x), torch.from_numpy(y)

    splits = {
        "train": pair(b.x_train, b.y_train),
        "valid": pair(b.x_heldout[valid], b.y_heldout[valid]),
        "test": pair(b.x_heldout[test], b.y_heldout[test]),
    }
    extra = {
        "embeddings": b.embeddings,
        "x_annotated": b.x_annotated,
        "annotated_tokens": b.annotated_tokens,
        "annotated_spans": b.annotated_spans,
    }
    return Task("beer", max_len, 10, splits, extra)
