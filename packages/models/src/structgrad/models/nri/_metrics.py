"""Edge recovery metrics of the SST NRI experiment (best of the two channels)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._layout import tensor_arg

__all__ = ["EdgeMetrics", "edge_metrics"]


class EdgeMetrics(NamedTuple):
    """Edge accuracy, precision and recall (means over samples and graphs).

    Attributes:
        accuracy: ``(TP + TN) / n(n−1)``.
        precision: ``TP / (TP + FP)``.
        recall: ``TP / (TP + FN)``.
        channel: the channel the numbers are for (1: "edge", 0: "no edge").
    """

    accuracy: float
    precision: float
    recall: float
    channel: int


def edge_metrics(
    samples: Tensor, target: Tensor, *, channels: bool = False, channel: int | None = None
) -> EdgeMetrics:
    """Accuracy, precision and recall of hard edge samples, best channel by precision.

    The reference (``sampling_edge_metrics``) builds two channels ``[1 − s, s]``
    from single-channel samples (trees, top-k), scores each channel as the
    "edge" indicator against the ground truth over all ``n(n−1)`` directed
    entries, averages the per-graph ratios over samples and graphs, and reports
    the channel with the highest precision ("we don't know whether the edge
    type represents on or off"). A graph with no predicted positives in a
    channel has no precision; it is left out of that channel's mean (the
    reference's mean would be NaN).

    Args:
        samples: ``[..., E]`` hard 0/1 edge indicators, or with ``channels=True``
            ``[..., E, 2]`` one-hot edge types; leading dims are samples and
            graphs, e.g. ``[S, B, E]``.
        target: ``[..., E]`` 0/1 true edges, broadcastable to the samples'
            leading dims (e.g. ``[B, E]``).
        channels: the samples have a trailing edge-type dim.
        channel: report this channel (1: "edge") instead of the best one.

    Returns:
        :class:`EdgeMetrics` of the chosen channel.
    """
    tensor_arg(samples, "samples", 2 if channels else 1)
    if not samples.is_floating_point():  # bool or integer 0/1 samples
        samples = samples.to(torch.get_default_dtype())
    if not channels:
        samples = torch.stack([1.0 - samples, samples], dim=-1)
    if samples.shape[-1] != 2:
        raise ValueError(f"expected 2 edge-type channels, got {samples.shape[-1]}")
    tensor_arg(target, "target", 1)
    pred = samples.detach() > 0.5  # [..., E, 2]
    try:
        truth = (target.detach() > 0.5).unsqueeze(-1).expand(pred.shape)  # [..., E, 2]
    except RuntimeError:
        raise ValueError(
            f"target {tuple(target.shape)} does not broadcast to the samples' edges "
            f"{tuple(pred.shape[:-1])}"
        ) from None
    tp = (pred & truth).sum(-2).double()  # [..., 2]
    tn = (~pred & ~truth).sum(-2).double()
    fp = (pred & ~truth).sum(-2).double()
    fn = (~pred & truth).sum(-2).double()
    acc = ((tp + tn) / pred.shape[-2]).reshape(-1, 2).mean(0)  # [2]
    precision = (tp / (tp + fp)).reshape(-1, 2).nanmean(0)
    recall = (tp / (tp + fn)).reshape(-1, 2).nanmean(0)
    # NaN precision (no positives anywhere) never wins.
    best = int(torch.nan_to_num(precision, nan=-1.0).argmax()) if channel is None else channel
    if best not in (0, 1):
        raise ValueError(f"channel must be 0 or 1, got {channel!r}")
    return EdgeMetrics(float(acc[best]), float(precision[best]), float(recall[best]), channel=best)
