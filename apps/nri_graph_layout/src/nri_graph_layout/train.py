"""Training and evaluation of one method (the reference's ``train.py``, §3.7).

Adam on encoder + decoder (+ the latent layer's own parameters, e.g. a RELAX
critic); every ``eval_every`` steps (and at step 0 and the last step) the whole
validation set is scored with hard samples ``MAP(θ + G)`` and teacher forcing:
ELBO = −(NLL + KL), NLL, KL and edge accuracy / precision / recall (best of
the two channels). The best validation ELBO (or ``--select`` metric) is checkpointed
(``best.pt``); :func:`structgrad_app_common.loop.train` keeps the run
resumable. At the end the best checkpoint is scored on the test set and
``final.json`` and the plots are written.

The settings and their checks are in :mod:`nri_graph_layout.config`, the
scoring and the end of a run in :mod:`nri_graph_layout.evaluation` (both
re-exported here).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from structgrad_app_common import CLIError
from structgrad_app_common.loop import Evaluation, Plan, Step, Trainer, train
from structgrad_app_common.training import epoch_batch, global_seed

from nri_graph_layout import data as data_mod
from nri_graph_layout.config import SELECT, TrainConfig, check
from nri_graph_layout.evaluation import evaluate, finish, score
from nri_graph_layout.methods import MethodSpec, resolve_config
from nri_graph_layout.model import MODEL_OPTIONS, GraphLayoutModel
from nri_graph_layout.rws import rws_step

__all__ = ["TrainConfig", "evaluate", "finish", "run", "score"]


class _Tempered(Protocol):
    """A latent layer with a temperature."""

    tau: float


class _StraightThrough(Protocol):
    """A latent layer with a straight-through switch (``--straight-through`` methods)."""

    straight_through: bool


class NRITrainer(Trainer):
    """One method on one dataset: counted in optimiser steps, scored on the validation set."""

    unit = "step"
    score_on_stop = False
    config: TrainConfig
    model: GraphLayoutModel

    def __init__(
        self, config: TrainConfig, data: data_mod.Dataset, spec: MethodSpec, pred_steps: int
    ) -> None:
        super().__init__(config)
        self.data, self.spec, self.pred_steps = data, spec, pred_steps

    def build(self) -> None:
        """The encoder-decoder model and Adam."""
        c = self.config
        with global_seed(c.seed):
            options = {k: getattr(c, k) for k in MODEL_OPTIONS}
            self.model = GraphLayoutModel(
                self.spec, self.data.num_vertices, self.data.num_timesteps, **options
            ).to(c.device)
        if c.tau_final is not None and not hasattr(self.model.latent, "tau"):
            raise CLIError(f"--tau-final needs a method with a temperature; {c.method} has none")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr)
        self.x_train = self.data.trajectories["train"]

    def plan(self) -> Plan:
        """``iterations`` steps; validation at step 0, every ``eval_every`` and at the end."""
        c = self.config
        return Plan(c.iterations, c.eval_every, log_every=c.log_every, eval_at_start=True)

    def step(self, step: int) -> Step:
        """One Adam (or wake-sleep) step after the schedules of τ, lr and straight-through."""
        c, model = self.config, self.model
        # Reshuffled every epoch (seeded), the last partial batch dropped, epochs
        # numbered from 0 (the reference's loader neither shuffles nor drops).
        idx = epoch_batch(
            step, len(self.x_train), c.batch_size, seed=c.seed, drop_last=True, first_epoch=0
        )
        # nn.Module types unknown attributes as Tensor | Module: name the ones set here
        if c.tau_final is not None:  # build() checked that the layer has a tau
            cast("_Tempered", model.latent).tau = c.tau_at(step)
        if c.lr_final is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = c.lr_at(step)
        if c.soft_steps:  # relaxed forward samples first, then straight-through
            cast("_StraightThrough", model.latent).straight_through = step > c.soft_steps
        batch = torch.from_numpy(self.x_train[idx.numpy()]).to(c.device)
        if c.rws_after is not None and step == c.rws_after + 1:
            # A new objective: Adam's moments of the estimator's gradients (the
            # ELBO's, hundreds of times the tree-CRF term's) would shrink the
            # wake-sleep steps, so the phase starts from fresh moments.
            self.optimizer.state.clear()
        if c.rws_at(step):
            res = rws_step(
                model,
                batch,
                samples=c.rws_samples,
                pred_steps=self.pred_steps,
                generator=self.generator,
            )
        else:
            res = model(batch, pred_steps=self.pred_steps, generator=self.generator)
        loss = res.loss.mean()
        nll, kl = float(res.nll.mean()), float(res.kl.mean())
        if not self.update(loss):
            return Step(
                {}, stop=f"training loss not finite at step {step} (nll {nll:.4g}, kl {kl:.4g})"
            )
        return Step({"loss": float(loss.detach()), "nll": nll, "kl": kl})

    def evaluate(self, step: int, train: dict[str, float]) -> Evaluation:
        """The validation record, scored by the ``--select`` metric; stop if one is not finite."""
        res = score(self.model, self.data, "valid", self.config)
        bad = [k for k, v in res.items() if not math.isfinite(v)]
        if bad:
            return Evaluation({}, stop=f"validation {', '.join(bad)} not finite at step {step}")
        key, higher = SELECT[self.config.select]
        return Evaluation({"split": "valid", **res}, res[key] if higher else -res[key])

    def finish(self, step: int, seconds: float) -> dict[str, Any]:
        """Score the best checkpoint on the test set; ``final.json`` and the plots."""
        best_path = Path(self.config.out) / "best.pt"
        if not best_path.exists():
            raise CLIError(f"stopped before any checkpoint: {self.stopped}")
        if self.stopped is not None:
            print(f"stopped: {self.stopped}; scoring the best checkpoint", file=sys.stderr)
        c, model, data = self.config, self.model, self.data
        return finish(c, model, data, best_path, stopped=self.stopped, seconds=seconds, step=step)


def default_prediction_steps(t: int) -> int:
    """The reference recipes' rollout length: ``T - 1`` up to 10 (9 at T = 10, 10 at T = 20)."""
    return max(1, min(t - 1, 10))


def run(config: TrainConfig) -> dict[str, Any]:
    """Train, evaluate and write all outputs of one run.

    Returns:
        The content of ``final.json`` (or ``{"stopped_at": step}`` when
        ``stop_after`` ended the run early).

    Raises:
        CLIError: on bad settings, a bad data file, or a resume problem.
    """
    check(config)
    data = data_mod.load(config.data)
    t = data.num_timesteps
    pred_steps = config.prediction_steps or default_prediction_steps(t)
    if not 1 <= pred_steps <= t - 1:
        raise CLIError(f"--prediction-steps must be in [1, {t - 1}] for T={t}, got {pred_steps}")
    spec = resolve_config(config, data.num_vertices)
    return train(NRITrainer(config, data, spec, pred_steps))
