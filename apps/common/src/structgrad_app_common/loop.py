"""One training loop for every app: an app declares ``build``, ``step`` and ``evaluate``.

An app subclasses :class:`Trainer` with its run config (a :class:`RunControl`
dataclass with ``out`` and ``seed``) and fills in what is its own: the data
and model (:meth:`Trainer.build`), one optimiser step (:meth:`Trainer.step`),
the validation record (:meth:`Trainer.evaluate`) and the end of the run
(:meth:`Trainer.finish`). :func:`train` does the rest once: the run folder
and ``--resume``, ``config.json``, ``metrics.jsonl`` (cut back on resume),
tqdm, ``--stop-after``, the training-metric window, divergence, ``best.pt``
when the validation score improves and ``last.pt`` (model, optimiser, RNG
states, step, window) at every evaluation, so a resumed run logs what an
uninterrupted one would.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from structgrad_app_common.checkpoint import first_line
from structgrad_app_common.divergence import DIVERGED, diverged_errors, fall_back, snapshot
from structgrad_app_common.progress import Window, resume_progress, same_data
from structgrad_app_common.training import (
    open_log,
    restore_state,
    save_if_best,
    save_state,
    start_run,
    write_config,
)

__all__ = ["Evaluation", "Plan", "Step", "Trainer", "Window", "train"]


@dataclass(frozen=True)
class Plan:
    """When a run steps, evaluates and logs.

    Attributes:
        total: optimiser steps of the whole run.
        eval_every: steps between evaluations (and one at the last step); an
            epoch's batches for an app whose unit is the epoch.
        log_every: steps between training records; ``None``: the training
            means go into the evaluation record instead (as ``train_<name>``).
        eval_at_start: also evaluate before the first step.
    """

    total: int
    eval_every: int
    log_every: int | None = None
    eval_at_start: bool = False


class Step(NamedTuple):
    """What one optimiser step reports.

    Attributes:
        metrics: this batch's training metrics (averaged over the window).
        weight: the batch's weight in those averages (e.g. its size).
        stop: the reason to stop the run here (a non-finite loss), else ``None``.
    """

    metrics: dict[str, float]
    weight: float = 1.0
    stop: str | None = None


class Evaluation(NamedTuple):
    """What one evaluation reports.

    Attributes:
        record: the fields of its ``metrics.jsonl`` record.
        score: the checkpoint criterion (higher is better), ``None``: no ``best.pt``.
        stop: the reason to stop the run here (nothing is logged), else ``None``.
    """

    record: dict[str, Any]
    score: float | None = None
    stop: str | None = None


class Trainer:
    """An app's training, run by :func:`train`; subclass and fill in the hooks.

    Attributes:
        unit: what ``--stop-after`` and the JSONL records count: ``"epoch"``
            (one evaluation, ``Plan.eval_every`` steps) or ``"step"``.
        score_on_stop: when a step stops the run, evaluate and log as usual
            (every record says ``diverged``, and the last one its ``reason``);
            else log ``{"split": "stopped", "reason"}``.
        config: the run's settings.
        model, optimizer: set by :meth:`build`.
        generator: the run's sampling generator (on ``config.device``).
        resumed: whether the run continues from a checkpoint (set before :meth:`build`).
        stopped: the reason the run stopped early, else ``None``.
    """

    unit: ClassVar[str] = "epoch"
    score_on_stop: ClassVar[bool] = True

    def __init__(self, config: Any) -> None:
        self.config = config
        self.model: Any = None
        self.optimizer: Any = None
        self.generator: Any = None
        self.resumed = False
        self.stopped: str | None = None

    @property
    def desc(self) -> str:
        """The progress bar's label."""
        return str(getattr(self.config, "method", ""))

    def build(self) -> None:
        """Load the data and set ``self.model`` and ``self.optimizer`` (after the run checks)."""
        raise NotImplementedError

    def plan(self) -> Plan:
        """When to step, evaluate and log (called after :meth:`build`)."""
        raise NotImplementedError

    def step(self, step: int) -> Step:
        """Take optimiser step ``step`` (1-based), usually through :meth:`update`."""
        raise NotImplementedError

    def evaluate(self, step: int, train: dict[str, float]) -> Evaluation:
        """Score the model after ``step`` steps; ``train``: the window's means."""
        raise NotImplementedError

    def finish(self, step: int, seconds: float) -> dict[str, Any]:
        """The end of the run: test scores, plots, ``final.json`` (returned)."""
        raise NotImplementedError

    def update(self, loss: Any) -> bool:
        """Backpropagate ``loss``, step the optimiser; ``False`` (no step) if it is not finite."""
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if not bool(torch.isfinite(loss.detach())):
            return False
        self.optimizer.step()
        return True


def train(trainer: Trainer) -> dict[str, Any]:
    """Run ``trainer`` from its config: the whole run, resumable.

    Returns:
        What :meth:`Trainer.finish` returns, or ``{"stopped_at": n}`` when
        ``--stop-after`` ended the run after ``n`` units.

    Raises:
        CLIError: bad settings, no checkpoint to resume from, changed settings.
    """
    import torch
    from tqdm.auto import tqdm

    c, unit = trainer.config, trainer.unit
    state = start_run(c)
    trainer.resumed = state is not None
    trainer.build()
    data = same_data(c, state)  # (before anything is written)
    trainer.generator = torch.Generator(c.device).manual_seed(c.seed)
    plan = trainer.plan()
    per_unit = plan.eval_every if unit == "epoch" else 1

    def units(step: int) -> int:  # a started epoch counts (a run can stop inside one)
        return -(-step // per_unit)

    out = Path(c.out)
    last, best_path = out / "last.pt", out / "best.pt"
    step, best, elapsed, window = 0, -math.inf, 0.0, Window()
    if state is not None:
        restore_state(state, trainer.model, trainer.optimizer, trainer.generator)
        step, best, elapsed, window = resume_progress(state, str(last))
    initial = snapshot(trainer.model)
    # A run resumed past this call's total keeps its config.json: it trains no further.
    conf = state["config"] if state and step >= plan.total else write_config(out, c)
    log = open_log(out, state, step_key=unit)
    t0 = time.perf_counter()
    saved = -1  # the step of the last checkpoint

    def seconds() -> float:
        return elapsed + time.perf_counter() - t0

    def checkpoint() -> None:
        nonlocal saved
        progress: dict[str, Any] = {
            unit: units(step),
            "step": step,
            "best": best,
            "elapsed": seconds(),
        }
        progress |= {"window": dict(window.sums), "window_weight": window.weight, **data}
        model, optimizer, gen = trainer.model, trainer.optimizer, trainer.generator
        save_state(last, model, optimizer, gen, **progress, config=conf)
        saved = step

    def evaluate() -> None:
        nonlocal best
        try:
            ev = trainer.evaluate(step, window.means())
        except diverged_errors() as err:  # the model's outputs overflow: score one that works
            trainer.stopped = trainer.stopped or f"{DIVERGED} at step {step} ({first_line(err)})"
            fall_back(trainer.model, out, initial)
            if not trainer.score_on_stop:
                return  # the loop logs why at its end
            ev = trainer.evaluate(step, window.means())
        if ev.stop is not None:
            trainer.stopped = ev.stop
            return
        why = {} if trainer.stopped is None else {"reason": trainer.stopped}
        ended = {"diverged": trainer.stopped is not None, **why} if trainer.score_on_stop else {}
        record = {unit: units(step), **ev.record, **ended, "seconds": round(seconds(), 2)}
        log.log(record)
        if plan.log_every is None:
            window.reset()
        if ev.score is not None:
            # best.pt keeps the record's scalars beside the model (arrays need pickle).
            extra = {k: v for k, v in record.items() if isinstance(v, int | float | str | bool)}
            best = save_if_best(
                best_path, trainer.model, ev.score, best, higher=True, **{**extra, "step": step}
            )
        checkpoint()

    bar = tqdm(
        total=plan.total,
        initial=step,
        desc=trainer.desc,
        unit="step",
        disable=not c.progress,
        leave=False,
    )
    with log:
        if state is None and plan.eval_at_start:
            evaluate()
        while step < plan.total and trainer.stopped is None:
            if step % per_unit == 0 and c.stops_at(step // per_unit):
                if saved != step:
                    checkpoint()
                bar.close()
                return {"stopped_at": step // per_unit}
            res = _guarded_step(trainer, step + 1)
            step += 1
            if res.stop is not None:
                trainer.stopped = res.stop
                if trainer.score_on_stop:
                    evaluate()
                break
            window.add(res.metrics, res.weight)
            bar.update(1)
            if plan.log_every is not None and step % plan.log_every == 0:
                means = window.means()
                log.log({unit: units(step), "split": "train", **means})
                bar.set_postfix(loss=f"{means.get('loss', math.nan):.4g}")
                window.reset()
            if step % plan.eval_every == 0 or step == plan.total:
                evaluate()
        if trainer.stopped is not None and not trainer.score_on_stop:
            # No null metrics: the record says why, the run ends on its best checkpoint.
            log.log({unit: units(step), "split": "stopped", "reason": trainer.stopped})
    bar.close()
    if trainer.stopped is not None and trainer.stopped.startswith(DIVERGED):
        fall_back(trainer.model, out, initial)  # its outputs overflow: finish on one that works
    return trainer.finish(step, seconds())


def _guarded_step(trainer: Trainer, step: int) -> Step:
    """``trainer.step(step)``; an update past the float range, or diverged scores, stop the run."""
    try:
        return trainer.step(step)
    except RuntimeError as err:
        # torch's optimisers raise this when lr times the update leaves the
        # parameters' dtype (e.g. --lr 1e38 in float32): a divergence, not a bug.
        if "overflow" not in str(err):
            raise
        return Step({}, stop=f"update overflowed at step {step} ({first_line(err)})")
    except diverged_errors() as err:
        return Step({}, stop=f"{DIVERGED} at step {step} ({first_line(err)})")
