"""One toy run: logits at zero, Adam, evaluations, checkpoints and ``--resume``.

Every ``eval_every`` steps (and at step 0 and the last step) the expected loss
and the gradient std are logged to ``metrics.jsonl``;
:func:`structgrad_app_common.loop.train` checkpoints the full state (θ, the
layer, Adam, the noise generator, the step) to ``last.pt`` and resumes from
it. The evaluation noise is drawn from its own generator seeded by ``(seed,
step)``, so a resumed run follows exactly the path of an uninterrupted one.
At the end ``final.json`` and ``curve.png``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from structgrad_app_common import CLIError, read_jsonl
from structgrad_app_common.loop import Evaluation, Plan, Step, Trainer, train
from structgrad_app_common.training import derived_generator, global_seed, write_final

from structgrad.models import LatentLayer
from toys.config import RunConfig, check
from toys.evaluation import evaluate, train_step
from toys.methods import LAYER_OPTIONS, build
from toys.problems import Problem, make_problem

__all__ = ["RunConfig", "first_within", "run"]


def first_within(records: list[dict[str, Any]], optimum: float, tol: float = 0.5) -> int | None:
    """The first evaluated step whose mean loss is within ``tol`` of the optimum."""
    for r in records:
        if r.get("mean_loss") is not None and r["mean_loss"] <= optimum + tol:
            return int(r["step"])
    return None


class _Toy(torch.nn.Module):
    """The trained state: the logits θ and the estimator's layer (e.g. with a RELAX critic)."""

    def __init__(self, theta: torch.Tensor, layer: LatentLayer) -> None:
        super().__init__()
        self.theta = torch.nn.Parameter(theta)
        self.layer = layer


class ToyTrainer(Trainer):
    """One estimator on one toy, counted in steps; no ``best.pt`` (the curve is the result)."""

    unit = "step"
    score_on_stop = False
    config: RunConfig
    model: _Toy

    def __init__(self, config: RunConfig, problem: Problem) -> None:
        super().__init__(config)
        self.problem = problem

    @property
    def desc(self) -> str:
        """The progress bar's label: structure/estimator."""
        return f"{self.config.structure}/{self.config.estimator}"

    def build(self) -> None:
        """θ at zero, the estimator's layer and Adam on both."""
        c = self.config
        dtype = torch.float64 if c.precision == "double" else torch.float32
        with global_seed(c.seed):  # the RELAX critic's initialisation
            options = {k: getattr(c, k) for k in LAYER_OPTIONS}
            layer = build(self.problem, c.estimator, **options).to(c.device)
        if dtype == torch.float64:
            layer = layer.double()
        theta = torch.zeros(self.problem.event_shape, dtype=dtype, device=c.device)
        self.model = _Toy(theta, layer)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr)

    def plan(self) -> Plan:
        """``iters`` steps; evaluations at step 0, every ``eval_every`` and at the end."""
        return Plan(self.config.iters, self.config.eval_every, eval_at_start=True)

    def step(self, step: int) -> Step:
        """One Adam step on θ (and the layer); stop when the loss or θ is not finite."""
        theta, layer = self.model.theta, self.model.layer
        samples = self.config.samples()
        loss = train_step(
            theta,
            layer,
            self.problem,
            self.optimizer,
            num_samples=samples,
            generator=self.generator,
        )
        if not (math.isfinite(loss) and bool(torch.isfinite(theta).all())):
            return Step({}, stop=f"loss or logits not finite at step {step}")
        return Step({"loss": loss})

    def evaluate(self, step: int, train: dict[str, float]) -> Evaluation:
        """Expected loss, gap to the optimum and gradient spread (noise fixed by (seed, step))."""
        c = self.config
        res = evaluate(
            self.model.theta,
            self.model.layer,
            self.problem,
            num_mc=c.num_mc,
            generator=derived_generator(c.seed, step + 1, c.device),
        )
        record = {
            "mean_loss": res.mean_loss,
            "gap": res.mean_loss - self.problem.optimum,
            "grad_std": res.grad_std,
            "grad_norm": res.grad_norm,
            "train_loss": train.get("loss"),
        }
        return Evaluation(record)

    def finish(self, step: int, seconds: float) -> dict[str, Any]:
        """``final.json`` and ``curve.png``."""
        from toys import plots

        config, optimum, stopped = self.config, self.problem.optimum, self.stopped
        out = Path(config.out)
        records = [r for r in read_jsonl(out / "metrics.jsonl") if r.get("mean_loss") is not None]
        curve = plots.plot_runs(
            {config.estimator: records},
            out / "curve.png",
            title=f"{config.structure} (n={config.dim}): {config.estimator}",
            optimum=optimum,
        )
        final = {
            "structure": config.structure,
            "estimator": config.estimator,
            "seed": config.seed,
            "dim": config.dim,
            "steps": step,
            "diverged": stopped is not None,
            "stopped": stopped,
            "optimum": optimum,
            "final_loss": records[-1]["mean_loss"] if records else None,
            "losses": {str(r["step"]): r["mean_loss"] for r in records},
            "first_within_0.5": first_within(records, optimum),
            "seconds": round(seconds, 1),
            "plot": str(curve),
            "metrics": str(out / "metrics.jsonl"),
        }
        return write_final(out, final)


def run(config: RunConfig) -> dict[str, Any]:
    """Train one estimator on one toy; write every output.

    Returns:
        The content of ``final.json`` (``{"stopped_at": step}`` when
        ``stop_after`` ended the run early).

    Raises:
        CLIError: on bad settings or a resume problem.
    """
    check(config)
    try:
        problem = make_problem(
            config.structure, config.dim, k=config.k, target_seed=config.target_seed
        )
    except ValueError as err:
        raise CLIError(str(err)) from None
    return train(ToyTrainer(config, problem))
