"""Training and per-epoch evaluation of one discrete VAE (a :class:`Trainer`).

Adam on encoder + decoder. For every batch the training objective is computed
on the method's sample (relaxed for ``gumbel-softmax`` / ``sst`` /
``gumbel-topk``) and, after the update, the *unrelaxed* loss of the same batch
with discrete samples (:meth:`dvae.model.DiscreteVAE.sample_hard`: argmax /
top-k of ``θ + G``, or the perturb-and-MAP sample of I-MLE / AIMLE / STE), as
the SGA tutorial prints both. After every epoch the validation and test sets
are scored with such discrete samples (fixed-seed noise) in one JSONL record;
:func:`structgrad_app_common.loop.train` keeps the run resumable. At the end
``final.json`` and the PNGs (curves, reconstructions, prior samples) are written.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import torch
from structgrad_app_common.loop import Evaluation, Plan, Step, Trainer, train
from structgrad_app_common.training import epoch_batch, global_seed, steps_per_epoch

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


class VAETrainer(Trainer):
    """One discrete VAE: an epoch is one pass over the (shuffled) training images."""

    config: TrainConfig
    model: DiscreteVAE

    def build(self) -> None:
        """The digits (or MNIST), the VAE and Adam."""
        c = self.config
        self.data = data_mod.load(c.data, c.valid_size)
        self.x_train = self.data.train[: c.max_train]
        with global_seed(c.seed):
            self.model = DiscreteVAE(self.data.dim, c).to(c.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr)
        if not self.resumed:
            print(f"data: {self.data.describe(c.max_train)}", file=sys.stderr)

    def plan(self) -> Plan:
        """``epochs`` passes; an evaluation after each."""
        per_epoch = steps_per_epoch(len(self.x_train), self.config.batch_size)
        return Plan(total=self.config.epochs * per_epoch, eval_every=per_epoch)

    def step(self, step: int) -> Step:
        """One Adam step on a batch; its relaxed and unrelaxed losses."""
        c, model = self.config, self.model
        model.set_tau(tau_at(c, step))
        idx = epoch_batch(step, len(self.x_train), c.batch_size, seed=c.seed)
        xb = torch.from_numpy(self.x_train[idx.numpy()]).to(c.device)
        loss = model(xb, generator=self.generator).loss.mean()
        if not self.update(loss):
            return Step({}, stop=f"training loss not finite at step {step}")
        with torch.no_grad():  # the tutorial's "unrelaxed" objective, after the step
            logits = model.logits(xb)
            hard = model.loss(xb, model.sample_hard(logits, generator=self.generator), logits)
        return Step({"loss": float(loss.detach()), "loss_hard": float(hard.loss.mean())}, len(xb))

    def evaluate(self, step: int, train: dict[str, float]) -> Evaluation:
        """The epoch's record: training means, valid and test losses, τ, β."""
        c, model = self.config, self.model
        valid = evaluate(model, self.data.valid, 500, seed=c.seed + 1)
        test = evaluate(model, self.data.test, 500, seed=c.seed + 2)
        diverged = self.stopped is not None
        return Evaluation(
            {
                "step": step,
                "train_loss": math.nan if diverged else train.get("loss", math.nan),
                "train_loss_hard": math.nan if diverged else train.get("loss_hard", math.nan),
                **{f"valid_{k}": v for k, v in valid.items()},
                **{f"test_{k}": v for k, v in test.items()},
                "tau": model.tau,
                "beta": model.beta(),
            }
        )

    def finish(self, step: int, seconds: float) -> dict[str, Any]:
        """The plots and ``final.json``."""
        from dvae.plots import finish

        # The plots sample on the CPU.
        return finish(self.config, self.model.cpu(), self.data, stopped=self.stopped)


def run(config: TrainConfig) -> dict[str, Any]:
    """Train, evaluate every epoch and write all outputs of one run.

    Returns:
        The content of ``final.json``, or ``{"stopped_at": epoch}`` when
        ``stop_after`` ended the run early.

    Raises:
        CLIError: on bad settings, a bad data file, or a resume problem.
    """
    c = config.resolved()
    check(c)
    return train(VAETrainer(c))
