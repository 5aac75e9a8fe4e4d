"""Training and evaluation of one (task, method, seed) run.

Adam on explainer + predictor (+ the selector's own parameters, e.g. a RELAX
critic). After every epoch the validation split is scored in evaluation mode
(top-k of the logits) and one JSONL record is written; the best validation
loss is checkpointed (``best.pt``, as the reference keeps the best validation
MSE); :func:`structgrad_app_common.loop.train` keeps the run resumable. At the
end the best checkpoint is scored on the test split, ``final.json`` and the
plots are written.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from structgrad_app_common import load_checkpoint, read_jsonl
from structgrad_app_common.loop import Evaluation, Plan, Step, Trainer, train
from structgrad_app_common.training import (
    epoch_batch,
    global_seed,
    steps_per_epoch,
    write_final,
)

from l2x.config import TrainConfig, check
from l2x.methods import MethodSpec, Selector, resolve
from l2x.model import L2XModel
from l2x.tasks import Task, build_task


def setup(config: TrainConfig) -> tuple[Task, MethodSpec, L2XModel]:
    """Build the task, the method and the model of a configuration."""
    task = build_task(
        config.task,
        data=config.data,
        aspect=config.aspect,
        max_len=config.max_len,
        sizes=(config.num_train, config.num_valid, config.num_test),
        data_seed=config.data_seed,
        seed=config.seed,
    )
    spec = resolve(
        config.method,
        k=config.k or task.default_k,
        n=task.n_items,
        tau=config.tau,
        lam=config.lam,
        aimle_difference=config.aimle_difference,
        num_samples=config.num_samples,
    )
    with global_seed(config.seed):
        return task, spec, task.build_model(Selector(spec), k=spec.k)


class L2XTrainer(Trainer):
    """One (task, method, seed) run: an epoch is one pass over the shuffled training split."""

    config: TrainConfig
    model: L2XModel

    def build(self) -> None:
        """The task, the method, the model and Adam."""
        c = self.config
        self.task, self.spec, self.model = setup(c)
        self.model.to(c.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr)
        self.x_train, self.y_train = self.task.splits["train"]

    def plan(self) -> Plan:
        """``epochs`` passes; a validation record after each."""
        # BatchNorm cannot train on one item: a last batch of one joins the one before
        self.per_epoch = steps_per_epoch(len(self.x_train), self.config.batch_size, no_single=True)
        return Plan(total=self.config.epochs * self.per_epoch, eval_every=self.per_epoch)

    def step(self, step: int) -> Step:
        """One Adam step on a batch; the batch's mean task loss (each batch weighs the same)."""
        c = self.config
        idx = epoch_batch(step, len(self.x_train), c.batch_size, seed=c.seed, no_single=True)
        x, y = self.x_train[idx].to(c.device), self.y_train[idx].to(c.device)
        pred, _, _ = self.model(x, generator=self.generator)
        per_sample = self.task.loss(pred, y)  # [*S, B]
        value = float(per_sample.detach().mean())
        if not math.isfinite(value) or not self.update(
            self.model.selector.attach(per_sample).mean()
        ):
            return Step({}, stop=f"training loss not finite at step {step}")
        return Step({"loss": value})

    def evaluate(self, step: int, train: dict[str, float]) -> Evaluation:
        """The epoch's record, scored by minus the validation loss (best.pt: the best MSE)."""
        res = self.task.evaluate(self.model, "valid", self.config.eval_batch_size)
        record = {"train_loss": train.get("loss", 0.0), **{f"valid_{k}": v for k, v in res.items()}}
        return Evaluation(record, -res["loss"])

    def finish(self, step: int, seconds: float) -> dict[str, Any]:
        """Score the best checkpoint on the test split; write ``final.json`` and the plots."""
        from l2x import plots

        config, task, spec, model = self.config, self.task, self.spec, self.model
        out = Path(config.out)
        best = load_checkpoint(out / "best.pt") if (out / "best.pt").exists() else None
        if best is not None:
            model.load_state_dict(best["model"])  # onto the model's device
        test = task.evaluate(model, "test", config.eval_batch_size)
        valid = task.evaluate(model, "valid", config.eval_batch_size)
        records = read_jsonl(out / "metrics.jsonl")
        title = f"{config.task}: {config.method} (seed {config.seed})"
        paths = {"curves": str(plots.plot_curves(records, out / "curves.png", title=title))}
        if task.is_synthetic:
            truth = task.extra["test_relevant"].mean(axis=0)
            selection = plots.plot_selection(
                test["frequency"], truth, out / "selection.png", title=title
            )
            paths["selection"] = str(selection)
        final = {
            "task": config.task,
            "method": spec.name,
            "k": spec.k,
            "tau": spec.tau,
            "lr": config.lr,
            "seed": config.seed,
            "epochs": -(-step // self.per_epoch),
            "best_epoch": None if best is None else int(best["epoch"]),
            "diverged": self.stopped is not None,
            "stopped": self.stopped,
            "seconds": round(seconds, 1),
            **{f"valid_{k}": v for k, v in valid.items()},
            **{f"test_{k}": v for k, v in test.items()},
            "plots": paths,
            "metrics": str(out / "metrics.jsonl"),
        }
        return write_final(out, final)


def run(config: TrainConfig) -> dict[str, Any]:
    """Train, evaluate and write every output of one run.

    Returns:
        The content of ``final.json``, or ``{"stopped_at": epoch}`` when
        ``stop_after`` ended the run early.

    Raises:
        CLIError: on bad settings, bad data or a resume problem.
    """
    check(config)
    return train(L2XTrainer(config))
