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

The settings and their checks are in :mod:`nri_graph_layout.config`, the
scoring and the end of a run in :mod:`nri_graph_layout.evaluation` (both
re-exported here).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from structgrad_app_common import CLIError
from structgrad_app_common.training import (
    open_log,
    restore_state,
    save_if_best,
    save_state,
    start_run,
    write_config,
)

from nri_graph_layout import data as data_mod
from nri_graph_layout.config import SELECT, TrainConfig, check
from nri_graph_layout.evaluation import evaluate, finish, score
from nri_graph_layout.methods import resolve
from nri_graph_layout.model import GraphLayoutModel
from nri_graph_layout.rws import rws_step

__all__ = ["TrainConfig", "evaluate", "finish", "run", "score"]


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


def run(config: TrainConfig) -> dict[str, Any]:
    """Train, evaluate and write all outputs of one run.

    Returns:
        The content of ``final.json`` (or ``{"stopped_at": step}`` when
        ``stop_after`` ended the run early).

    Raises:
        CLIError: on bad settings, a bad data file, or a resume problem.
    """
    from tqdm.auto import tqdm

    check(config)
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
    state = start_run(config)

    torch.manual_seed(config.seed)
    model = GraphLayoutModel(
        spec,
        n,
        t,
        encoder_hidden=config.encoder_hidden,
        decoder_hidden=config.decoder_hidden,
        var=config.var,
        kl=config.kl,
        decoder_edges=config.decoder_edges,
        kl_shift=config.kl_shift,
    ).to(config.device)
    if config.tau_final is not None and not hasattr(model.latent, "tau"):
        raise CLIError(f"--tau-final needs a method with a temperature; {config.method} has none")
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator(config.device).manual_seed(config.seed)
    step, best, elapsed = 0, -math.inf, 0.0
    # The training-loss window (loss, nll, kl sums) since the last log line:
    # checkpointed, so a resumed run logs the same means as an uninterrupted one.
    totals, count = np.zeros(3), 0
    if state is not None:
        restore_state(state, model, optimizer, gen)
        step, best, elapsed = int(state["step"]), float(state["best_elbo"]), float(state["elapsed"])
        totals[:] = state.get("train_totals", [0.0, 0.0, 0.0])
        count = int(state.get("train_count", 0))
    conf = write_config(out, config)
    log = open_log(out, state)

    def checkpoint() -> None:
        seconds = elapsed + time.perf_counter() - t0
        save_state(
            last,
            model,
            optimizer,
            gen,
            step=step,
            best_elbo=best,
            elapsed=seconds,
            config=conf,
            train_totals=[float(v) for v in totals],
            train_count=count,
        )

    key, higher = SELECT[config.select]

    def validate() -> str | None:
        """Score the validation set; the reason to stop if a metric is not finite."""
        nonlocal best
        res = score(model, data, "valid", config)
        bad = [k for k, v in res.items() if not math.isfinite(v)]
        if bad:
            return f"validation {', '.join(bad)} not finite at step {step}"
        seconds = round(elapsed + time.perf_counter() - t0, 2)
        log.log({"step": step, "split": "valid", "seconds": seconds, **res})
        value = res[key] if higher else -res[key]
        best = save_if_best(best_path, model, value, best, higher=True, step=step, **res)
        checkpoint()
        return None

    t0 = time.perf_counter()
    x_train = data.trajectories["train"]
    stopped: str | None = None
    with log:
        if state is None:  # a resumed run already scored its earlier steps
            stopped = validate()
        bar = tqdm(
            total=config.iterations,
            initial=step,
            desc=config.method,
            unit="step",
            disable=not config.progress,
            leave=False,
        )
        while step < config.iterations and stopped is None:
            if config.stops_at(step):
                checkpoint()
                bar.close()
                return {"stopped_at": step}
            step += 1
            idx = _batch(step, len(x_train), config.batch_size, config.seed)
            if config.tau_final is not None:
                model.latent.tau = config.tau_at(step)
            if config.lr_final is not None:
                for group in optimizer.param_groups:
                    group["lr"] = config.lr_at(step)
            if config.soft_steps:  # relaxed forward samples first, then straight-through
                model.latent.straight_through = step > config.soft_steps
            batch = torch.from_numpy(x_train[idx.numpy()]).to(config.device)
            if config.rws_after is not None and step == config.rws_after + 1:
                # A new objective: Adam's moments of the estimator's gradients (the
                # ELBO's, hundreds of times the tree-CRF term's) would shrink the
                # wake-sleep steps, so the phase starts from fresh moments.
                optimizer.state.clear()
            if config.rws_at(step):
                res = rws_step(
                    model, batch, samples=config.rws_samples, pred_steps=pred_steps, generator=gen
                )
            else:
                res = model(batch, pred_steps=pred_steps, generator=gen)
            loss = res.loss.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if not torch.isfinite(loss):
                nll, kl = float(res.nll.mean()), float(res.kl.mean())
                stopped = f"training loss not finite at step {step} (nll {nll:.4g}, kl {kl:.4g})"
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
                stopped = validate()
        bar.close()
        if stopped is not None:
            # No null metrics: the run stops, says why, and ends on its best checkpoint.
            log.log({"step": step, "split": "stopped", "reason": stopped})
        else:
            checkpoint()
    if not best_path.exists():
        raise CLIError(f"stopped before any checkpoint: {stopped}")
    if stopped is not None:
        print(f"stopped: {stopped}; scoring the best checkpoint", file=sys.stderr)
    return finish(
        config,
        model,
        data,
        best_path,
        stopped=stopped,
        seconds=elapsed + time.perf_counter() - t0,
        step=step,
    )
