"""Scoring a model on a split, and the end of a run: the test score, ``final.json``, plots.

A split is scored with hard samples ``MAP(θ + G)`` and teacher forcing: ELBO =
−(NLL + KL), NLL, KL and edge accuracy / precision / recall (best of the two
channels). The noise of the samples is fixed by the run's seed, so the
evaluations of one run are comparable.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from structgrad_app_common import load_checkpoint, read_jsonl
from structgrad_app_common.training import load_entry, write_final

from nri_graph_layout import data as data_mod
from nri_graph_layout.config import TrainConfig
from nri_graph_layout.model import GraphLayoutModel
from structgrad.models.nri import edge_metrics, matrix_to_edges

__all__ = ["evaluate", "finish", "score"]


@torch.no_grad()
def evaluate(
    model: GraphLayoutModel, x: np.ndarray, adj: np.ndarray, batch_size: int, *, seed: int
) -> dict[str, float]:
    """Teacher-forced ELBO terms and edge metrics with hard samples, over a whole split.

    Args:
        model: the model (put in eval mode here).
        x: float32 ``[S, n, T, 2]`` trajectories.
        adj: uint8 ``[S, n, n]`` true adjacency.
        batch_size: evaluation batch size.
        seed: seed of the hard samples (fixed, so evaluations are comparable).

    Returns:
        ``elbo``, ``nll``, ``kl`` (means per graph), ``mse``, edge
        ``accuracy``, ``precision``, ``recall`` (hard samples, best channel) and
        ``map_precision``, ``map_recall`` (the noise-free MAP graph, "edge" channel).
    """
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device).manual_seed(seed)
    nll_sum = kl_sum = 0.0
    samples, modes = [], []
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[start : start + batch_size]).to(device)
        nll, kl, edges, mode_edges = model.evaluate(xb, generator=gen)
        nll_sum += float(nll.sum())
        kl_sum += float(kl.sum())
        samples.append(edges.cpu())
        modes.append(mode_edges.cpu())
    target = matrix_to_edges(torch.from_numpy(adj).float())
    metrics = edge_metrics(torch.cat(samples), target)
    # The noise-free most likely graph, scored on the "edge" channel only.
    mode = edge_metrics(torch.cat(modes), target, channel=1)
    model.train()
    mean_nll, mean_kl = nll_sum / len(x), kl_sum / len(x)
    return {
        "elbo": -(mean_nll + mean_kl),
        "nll": mean_nll,
        "kl": mean_kl,
        # nll = Σ (pred − x)² / (2 var) / n, so the mean squared error per coordinate is:
        "mse": mean_nll * 2 * model.var / ((x.shape[2] - 1) * x.shape[3]),
        "accuracy": metrics.accuracy,
        "precision": metrics.precision,
        "recall": metrics.recall,
        # No edge predicted in any graph (independent edges can do that): none found.
        "map_precision": 0.0 if math.isnan(mode.precision) else mode.precision,
        "map_recall": mode.recall,
    }


def score(
    model: GraphLayoutModel, data: data_mod.Dataset, split: str, config: TrainConfig
) -> dict[str, float]:
    """:func:`evaluate` on ``split`` ("valid": noise seed ``seed + 1``, "test": ``seed + 2``)."""
    offset = {"valid": 1, "test": 2}[split]
    return evaluate(
        model,
        data.trajectories[split],
        data.edges[split],
        config.eval_batch_size,
        seed=config.seed + offset,
    )


def finish(
    config: TrainConfig,
    model: GraphLayoutModel,
    data: data_mod.Dataset,
    best_path: Path,
    *,
    stopped: str | None,
    seconds: float,
    step: int,
) -> dict[str, Any]:
    """Score the best checkpoint on the test set; write ``final.json`` and the plots."""
    from nri_graph_layout import plots

    out = Path(config.out)
    best = load_checkpoint(best_path)
    load_entry(model, best, "model", str(best_path))
    test = score(model, data, "test", config)
    records = read_jsonl(out / "metrics.jsonl")
    best_valid = next(
        r for r in records if r.get("split") == "valid" and r["step"] == int(best["step"])
    )
    curves = plots.plot_curves(records, out / "curves.png", title=config.method)
    x0 = data.trajectories["test"][:1]
    pred = model.map_edges(torch.from_numpy(x0).to(next(model.parameters()).device)).cpu()
    graph = plots.plot_graph(
        x0[0],
        data.edges["test"][0],
        pred[0].numpy(),
        out / "graph.png",
        title=f"{config.method}: test graph 0",
    )
    final = {
        "method": config.method,
        "seed": config.seed,
        "lr": config.lr,
        "tau": config.tau,
        "steps": step,
        "best_step": int(best["step"]),
        "diverged": stopped is not None,
        "stopped": stopped,
        "seconds": round(seconds, 1),
        "valid_elbo": best_valid["elbo"],
        "valid_precision": best_valid["precision"],
        "valid_recall": best_valid["recall"],
        "valid_nll": best_valid["nll"],
        "valid_map_precision": best_valid["map_precision"],
        "select": config.select,
        **{f"test_{k}": v for k, v in test.items()},
        "plots": {"curves": str(curves), "graph": str(graph)},
        "metrics": str(out / "metrics.jsonl"),
    }
    return write_final(out, final)
