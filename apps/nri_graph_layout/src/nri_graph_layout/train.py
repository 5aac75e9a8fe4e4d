"""Training and evaluation of one method (the reference's ``train.py``, §3.7).

Adam on encoder + decoder (+ the latent layer's own parameters, e.g. a RELAX
critic); every ``eval_every`` steps (and at step 0 and the last step) the whole
validation set is scored with hard samples ``MAP(θ + G)`` and teacher forcing:
ELBO = −(NLL + KL), NLL, KL and edge accuracy / precision / recall (best of
the two channels). The best validation ELBO is checkpointed (``best.pt``); the
full state (model, optimiser, RNG states, step) goes to ``last.pt`` at every
evaluation, so ``--resume`` continues where the run stopped and the JSONL log
is cut back to that step (no duplicated records). At the end the best
checkpoint is scored on the test set and ``final.json`` and the plots are written.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from structgrad_app_common import CLIError, load_checkpoint, read_jsonl
from structgrad_app_common.training import (
    RunControl,
    open_log,
    open_run,
    restore_state,
    save_if_best,
    save_state,
    write_config,
    write_final,
)

from nri_graph_layout import data as data_mod
from nri_graph_layout.methods import resolve
from nri_graph_layout.model import GraphLayoutModel
from structgrad.models.nri import edge_metrics, matrix_to_edges

# Fields that must not change between a run and its resumption.
_RESUME_KEYS = (
    "method",
    "tau",
    "lr",
    "batch_size",
    "seed",
    "straight_through",
    "symmetric",
    "aimle_difference",
    "num_samples",
    "max_range",
    "kl",
    "encoder_hidden",
    "decoder_hidden",
    "var",
    "prediction_steps",
)


@dataclass
class TrainConfig(RunControl):
    """Everything one training run needs (JSON-serialisable; see ``train --help``)."""

    data: str
    out: str
    method: str = "tree-sst"
    tau: float = 5.0
    lr: float = 3e-4
    batch_size: int = 128
    iterations: int = 50_000
    eval_every: int = 500
    eval_batch_size: int = 100
    log_every: int = 50
    seed: int = 42
    straight_through: bool = False
    symmetric: bool = False
    aimle_difference: str | None = None
    num_samples: int | None = None
    max_range: float | None = 15.0
    kl: str = "gumbel"
    encoder_hidden: int = 256
    decoder_hidden: int = 256
    var: float = 5e-5
    prediction_steps: int | None = None


def _check(config: TrainConfig) -> None:
    """One-line errors for impossible settings (before any work)."""
    for name in ("batch_size", "iterations", "eval_every", "eval_batch_size", "log_every"):
        if getattr(config, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be >= 1")
    if not config.lr > 0:
        raise CLIError(f"--lr must be > 0, got {config.lr}")
    if config.kl not in ("gumbel", "categorical"):
        raise CLIError(f"--kl must be gumbel or categorical, got {config.kl!r}")
    if config.kl == "categorical" and config.method != "indep":
        raise CLIError(
            "--kl categorical applies to 'indep' only (trees and top-k need the Gumbel KL)"
        )
    config.check_run_flags()


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
        ``elbo``, ``nll``, ``kl`` (means per graph), ``mse`` and edge
        ``accuracy``, ``precision``, ``recall``.
    """
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    nll_sum = kl_sum = 0.0
    samples = []
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[start : start + batch_size])
        nll, kl, edges = model.evaluate(xb, generator=gen)
        nll_sum += float(nll.sum())
        kl_sum += float(kl.sum())
        samples.append(edges)
    target = matrix_to_edges(torch.from_numpy(adj).float())
    metrics = edge_metrics(torch.cat(samples), target)
    model.train()
    nll, kl = nll_sum / len(x), kl_sum / len(x)
    return {
        "elbo": -(nll + kl),
        "nll": nll,
        "kl": kl,
        # nll = Σ (pred − x)² / (2 var) / n, so the mean squared error per coordinate is:
        "mse": nll * 2 * model.var / ((x.shape[2] - 1) * x.shape[3]),
        "accuracy": metrics.accuracy,
        "precision": metrics.precision,
        "recall": metrics.recall,
    }


def _batch(step: int, n_train: int, batch_size: int, seed: int) -> torch.Tensor:
    """Indices of the batch of ``step`` (1-based): a fresh permutation per epoch.

    A function of (seed, step) only, so a resumed run sees the same batches.
    """
    per_epoch = max(1, n_train // batch_size)
    epoch, i = divmod(step - 1, per_epoch)
    perm = torch.randperm(
        n_train, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    )
    return perm[i * batch_size : (i + 1) * batch_size]


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


def run(config: TrainConfig) -> dict[str, Any]:
    """Train, evaluate and write all outputs of one run.

    Returns:
        The content of ``final.json`` (or ``{"stopped_at": step}`` when
        ``stop_after`` ended the run early).

    Raises:
        CLIError: on bad settings, a bad data file, or a resume problem.
    """
    from tqdm.auto import tqdm

    _check(config)
    torch.set_num_threads(config.threads)
    data = data_mod.load(config.data)
    n, t = data.num_vertices, data.num_timesteps
    pred_steps = config.prediction_steps or t - 1
    if not 1 <= pred_steps <= t - 1:
        raise CLIError(f"--prediction-steps must be in [1, {t - 1}] for T={t}, got {pred_steps}")
    spec = resolve(
        config.method,
        n_nodes=n,
        tau=config.tau,
        straight_through=config.straight_through,
        symmetric=config.symmetric,
        aimle_difference=config.aimle_difference,
        num_samples=config.num_samples,
        max_range=config.max_range,
    )
    out = Path(config.out)
    last, best_path = out / "last.pt", out / "best.pt"
    state = open_run(out, config, _RESUME_KEYS, resume=config.resume, overwrite=config.overwrite)

    torch.manual_seed(config.seed)
    model = GraphLayoutModel(
        spec,
        n,
        t,
        encoder_hidden=config.encoder_hidden,
        decoder_hidden=config.decoder_hidden,
        var=config.var,
        kl=config.kl,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    step, best, elapsed = 0, -math.inf, 0.0
    if state is not None:
        restore_state(state, model, optimizer, gen)
        step, best, elapsed = int(state["step"]), float(state["best_elbo"]), float(state["elapsed"])
    conf = write_config(out, config)
    log = open_log(out, state)

    def checkpoint() -> None:
        seconds = elapsed + time.perf_counter() - t0
        save_state(
            last, model, optimizer, gen, step=step, best_elbo=best, elapsed=seconds, config=conf
        )

    def validate() -> None:
        nonlocal best
        res = score(model, data, "valid", config)
        log.log({"step": step, "split": "valid", **res})
        best = save_if_best(
            best_path, model, res["elbo"], best, higher=True, step=step, elbo=res["elbo"]
        )
        checkpoint()

    t0 = time.perf_counter()
    x_train = data.trajectories["train"]
    diverged = False
    with log:
        if state is None:  # a resumed run already scored its earlier steps
            validate()
        totals = np.zeros(3)
        count = 0
        bar = tqdm(
            total=config.iterations,
            initial=step,
            desc=config.method,
            unit="step",
            disable=not config.progress,
            leave=False,
        )
        while step < config.iterations:
            if config.stops_at(step):
                checkpoint()
                bar.close()
                return {"stopped_at": step}
            step += 1
            idx = _batch(step, len(x_train), config.batch_size, config.seed)
            res = model(
                torch.from_numpy(x_train[idx.numpy()]), pred_steps=pred_steps, generator=gen
            )
            loss = res.loss.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if not torch.isfinite(loss):
                diverged = True
                log.log({"step": step, "split": "train", "loss": math.nan, "diverged": True})
                break
            optimizer.step()
            totals += [float(loss.detach()), float(res.nll.mean()), float(res.kl.mean())]
            count += 1
            bar.update(1)
            if step % config.log_every == 0:
                m = totals / count
                log.log({"step": step, "split": "train", "loss": m[0], "nll": m[1], "kl": m[2]})
                bar.set_postfix(loss=f"{m[0]:.4g}")
                totals[:], count = 0.0, 0
            if step % config.eval_every == 0 or step == config.iterations:
                validate()
        bar.close()
        checkpoint()
    return finish(
        config,
        model,
        data,
        best_path,
        diverged=diverged,
        seconds=elapsed + time.perf_counter() - t0,
        step=step,
    )


def finish(
    config: TrainConfig,
    model: GraphLayoutModel,
    data: data_mod.Dataset,
    best_path: Path,
    *,
    diverged: bool,
    seconds: float,
    step: int,
) -> dict[str, Any]:
    """Score the best checkpoint on the test set; write ``final.json`` and the plots."""
    from nri_graph_layout import plots

    out = Path(config.out)
    best = load_checkpoint(best_path)
    model.load_state_dict(best["model"])
    test = score(model, data, "test", config)
    records = read_jsonl(out / "metrics.jsonl")
    valid = [r for r in records if r.get("split") == "valid"]
    best_valid = max(valid, key=lambda r: r["elbo"] if r["elbo"] is not None else -math.inf)
    curves = plots.plot_curves(records, out / "curves.png", title=config.method)
    x0 = data.trajectories["test"][:1]
    pred = model.map_edges(torch.from_numpy(x0))
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
        "diverged": diverged,
        "seconds": round(seconds, 1),
        "valid_elbo": best_valid["elbo"],
        "valid_precision": best_valid["precision"],
        "valid_recall": best_valid["recall"],
        **{f"test_{k}": v for k, v in test.items()},
        "plots": {"curves": str(curves), "graph": str(graph)},
        "metrics": str(out / "metrics.jsonl"),
    }
    return write_final(out, final)
