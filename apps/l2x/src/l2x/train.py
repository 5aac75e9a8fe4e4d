"""Training and evaluation of one (task, method, seed) run.

Adam on explainer + predictor (+ the selector's own parameters, e.g. a RELAX
critic). After every epoch the validation split is scored in evaluation mode
(top-k of the logits) and one JSONL record is written; the best validation
loss is checkpointed (``best.pt``, as the reference keeps the best validation
MSE) and the full state (model, optimiser, RNG states, epoch) goes to
``last.pt``, so ``--resume`` continues after the last finished epoch. At the
end the best checkpoint is scored on the test split, ``final.json`` and the
plots are written.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from structgrad_app_common import load_checkpoint, read_jsonl
from structgrad_app_common.training import (
    open_log,
    restore_state,
    save_if_best,
    save_state,
    shuffled,
    start_run,
    write_config,
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
    torch.manual_seed(config.seed)
    return task, spec, task.build_model(Selector(spec), k=spec.k)


def run(config: TrainConfig) -> dict[str, Any]:
    """Train, evaluate and write every output of one run.

    Returns:
        The content of ``final.json``, or ``{"stopped_at": epoch}`` when
        ``stop_after`` ended the run early.

    Raises:
        CLIError: on bad settings, bad data or a resume problem.
    """
    from tqdm.auto import tqdm

    check(config)
    out = Path(config.out)
    last, best_path = out / "last.pt", out / "best.pt"
    state = start_run(config)
    task, spec, model = setup(config)
    model.to(config.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator(config.device).manual_seed(config.seed)
    epoch, best, elapsed = 0, math.inf, 0.0
    if state is not None:
        restore_state(state, model, optimizer, gen)
        epoch, best, elapsed = int(state["epoch"]), float(state["best"]), float(state["elapsed"])
    conf = write_config(out, config)
    log = open_log(out, state, step_key="epoch")
    x_train, y_train = task.splits["train"]
    t0 = time.perf_counter()
    diverged = False
    with log:
        while epoch < config.epochs and not diverged:
            if config.stops_at(epoch):
                return {"stopped_at": epoch}
            epoch += 1
            order = shuffled(len(x_train), seed=config.seed, epoch=epoch)
            batches = range(0, len(order), config.batch_size)
            bar = tqdm(
                batches,
                desc=f"{spec.name} epoch {epoch}/{config.epochs}",
                leave=False,
                disable=not config.progress,
                unit="batch",
            )
            total, count = 0.0, 0
            for start in bar:
                idx = order[start : start + config.batch_size]
                x, y = x_train[idx].to(config.device), y_train[idx].to(config.device)
                pred, _, _ = model(x, generator=gen)
                per_sample = task.loss(pred, y)  # [*S, B]
                loss = model.selector.attach(per_sample).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                value = float(per_sample.detach().mean())
                if not math.isfinite(value):
                    diverged = True
                    break
                optimizer.step()
                total, count = total + value, count + 1
                bar.set_postfix(loss=f"{total / count:.4g}")
            res = task.evaluate(model, "valid", config.eval_batch_size)
            record = {"epoch": epoch, "train_loss": total / max(count, 1), "diverged": diverged}
            log.log({**record, **{f"valid_{k}": v for k, v in res.items()}})
            best = save_if_best(best_path, model, res["loss"], best, epoch=epoch)
            seconds = elapsed + time.perf_counter() - t0
            save_state(
                last, model, optimizer, gen, epoch=epoch, best=best, elapsed=seconds, config=conf
            )
    seconds = elapsed + time.perf_counter() - t0
    return finish(config, task, spec, model, diverged=diverged, seconds=seconds, epoch=epoch)


def finish(
    config: TrainConfig,
    task: Task,
    spec: MethodSpec,
    model: L2XModel,
    *,
    diverged: bool,
    seconds: float,
    epoch: int,
) -> dict[str, Any]:
    """Score the best checkpoint on the test split; write ``final.json`` and the plots."""
    from l2x import plots

    out = Path(config.out)
    best = load_checkpoint(out / "best.pt") if (out / "best.pt").exists() else None
    if best is not None:
        model.load_state_dict(best["model"])  # onto the model's device
    test = task.evaluate(model, "test", config.eval_batch_size)
    valid = task.evaluate(model, "valid", config.eval_batch_size)
    records = read_jsonl(out / "metrics.jsonl")
    paths = {"curves": str(plots.plot_curves(records, out / "curves.png", title=_title(config)))}
    if task.is_synthetic:
        truth = task.extra["test_relevant"].mean(axis=0)
        paths["selection"] = str(
            plots.plot_selection(
                test["frequency"], truth, out / "selection.png", title=_title(config)
            )
        )
    final = {
        "task": config.task,
        "method": spec.name,
        "k": spec.k,
        "tau": spec.tau,
        "lr": config.lr,
        "seed": config.seed,
        "epochs": epoch,
        "best_epoch": None if best is None else int(best["epoch"]),
        "diverged": diverged,
        "seconds": round(seconds, 1),
        **{f"valid_{k}": v for k, v in valid.items()},
        **{f"test_{k}": v for k, v in test.items()},
        "plots": paths,
        "metrics": str(out / "metrics.jsonl"),
    }
    return write_final(out, final)


def _title(config: TrainConfig) -> str:
    return f"{config.task}: {config.method} (seed {config.seed})"
