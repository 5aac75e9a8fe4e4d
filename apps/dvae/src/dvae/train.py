"""Training and per-epoch evaluation of one discrete VAE.

Adam on encoder + decoder. For every batch the training objective is computed
on the method's sample (relaxed for ``gumbel-softmax`` / ``sst`` /
``gumbel-topk``) and, after the update, the *unrelaxed* loss of the same batch
with discrete samples (:meth:`dvae.model.DiscreteVAE.sample_hard`: argmax /
top-k of ``θ + G``, or the perturb-and-MAP sample of I-MLE / AIMLE / STE), as
the SGA tutorial prints both. After every epoch the validation and test sets
are scored with such discrete samples (fixed-seed noise), one JSONL record per epoch is
written and the full state (model incl. AIMLE's β, optimiser, RNG states,
epoch, step) goes atomically to ``last.pt``, so ``--resume`` continues where a
run stopped and the log is cut back to that epoch. At the end ``final.json``
and the PNGs (curves, reconstructions, prior samples) are written.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from structgrad_app_common.training import (
    open_log,
    restore_state,
    save_state,
    shuffled,
    start_run,
    write_config,
)

from dvae import data as data_mod
from dvae.config import TrainConfig, check, tau_at
from dvae.model import DiscreteVAE


@torch.no_grad()
def evaluate(model: DiscreteVAE, x: np.ndarray, batch_size: int, *, seed: int) -> dict[str, float]:
    """Mean loss, BCE and KL per image with discrete samples (``model.sample_hard``).

    Args:
        model: the VAE.
        x: float32 images ``[N, D]``.
        batch_size: evaluation batch size.
        seed: seed of the sampling noise (fixed, so epochs are comparable).

    Returns:
        ``loss``, ``bce``, ``kl`` (NaN for an empty split).
    """
    if len(x) == 0:
        return {"loss": math.nan, "bce": math.nan, "kl": math.nan}
    device = next(model.parameters()).device
    gen = torch.Generator(device).manual_seed(seed)
    sums = np.zeros(3)
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[start : start + batch_size]).to(device)
        logits = model.logits(xb)
        terms = model.loss(xb, model.sample_hard(logits, generator=gen), logits)
        sums += [float(t.sum()) for t in terms]
    loss, bce, kl = sums / len(x)
    return {"loss": loss, "bce": bce, "kl": kl}


def build_model(c: TrainConfig, dim: int) -> DiscreteVAE:
    """The VAE of a resolved config."""
    assert c.latent_m is not None and c.latent_n is not None and c.k is not None
    return DiscreteVAE(
        dim,
        c.method,
        latent_m=c.latent_m,
        latent_n=c.latent_n,
        k=c.k,
        hidden=tuple(c.hidden),
        tau=c.tau,
        samples=c.samples,
        lam=c.lam,
        beta_step=c.beta_step,
        target_nnz=c.target_nnz,
        aimle_difference=c.aimle_difference,
    )


def run(config: TrainConfig) -> dict[str, Any]:
    """Train, evaluate every epoch and write all outputs of one run.

    Returns:
        The content of ``final.json``, or ``{"stopped_at": epoch}`` when
        ``stop_after`` ended the run early.

    Raises:
        CLIError: on bad settings, a bad data file, or a resume problem.
    """
    from tqdm.auto import tqdm

    c = config.resolved()
    check(c)
    data = data_mod.load(c.data, c.valid_size)
    x_train = data.train[: c.max_train]
    out = Path(c.out)
    last = out / "last.pt"
    state = start_run(c)

    torch.manual_seed(c.seed)
    model = build_model(c, data.dim).to(c.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=c.lr)
    gen = torch.Generator(c.device).manual_seed(c.seed)
    epoch, step, elapsed = 0, 0, 0.0
    if state is not None:
        restore_state(state, model, optimizer, gen)
        epoch, step, elapsed = int(state["epoch"]), int(state["step"]), float(state["elapsed"])
    conf = write_config(out, c)
    log = open_log(out, state, step_key="epoch")
    if state is None:
        print(f"data: {data.describe(c.max_train)}", file=sys.stderr)
    t0 = time.perf_counter()
    n_batches = math.ceil(len(x_train) / c.batch_size)
    bar = tqdm(
        total=c.epochs * n_batches,
        initial=epoch * n_batches,
        desc=c.method,
        unit="batch",
        disable=not c.progress,
        leave=False,
    )
    diverged = False
    with log:
        while epoch < c.epochs and not diverged:
            if c.stops_at(epoch):
                bar.close()
                return {"stopped_at": epoch}
            epoch += 1
            sums, seen = np.zeros(2), 0
            for idx in shuffled(len(x_train), seed=c.seed, epoch=epoch).split(c.batch_size):
                step += 1
                model.set_tau(tau_at(c, step))
                xb = torch.from_numpy(x_train[idx.numpy()]).to(c.device)
                loss = model(xb, generator=gen).loss.mean()
                if not torch.isfinite(loss):
                    diverged = True
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():  # the tutorial's "unrelaxed" objective, after the step
                    logits = model.logits(xb)
                    hard = model.loss(xb, model.sample_hard(logits, generator=gen), logits)
                sums += [float(loss.detach()) * len(xb), float(hard.loss.sum())]
                seen += len(xb)
                bar.update(1)
            train, train_hard = sums / max(seen, 1)
            valid = evaluate(model, data.valid, 500, seed=c.seed + 1)
            test = evaluate(model, data.test, 500, seed=c.seed + 2)
            rec = {
                "epoch": epoch,
                "step": step,
                "train_loss": math.nan if diverged else train,
                "train_loss_hard": math.nan if diverged else train_hard,
                **{f"valid_{k}": v for k, v in valid.items()},
                **{f"test_{k}": v for k, v in test.items()},
                "tau": model.tau,
                "beta": model.beta(),
                "diverged": diverged,
                "seconds": round(elapsed + time.perf_counter() - t0, 2),
            }
            log.log(rec)
            bar.set_postfix(test=f"{test['loss']:.2f}")
            seconds = elapsed + time.perf_counter() - t0
            save_state(
                last, model, optimizer, gen, epoch=epoch, step=step, elapsed=seconds, config=conf
            )
    bar.close()
    from dvae.plots import finish

    return finish(c, model.cpu(), data, diverged=diverged)  # the plots sample on the CPU
