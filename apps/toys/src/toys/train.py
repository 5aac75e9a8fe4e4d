"""One toy run: logits at zero, Adam, evaluations, checkpoints and ``--resume``.

Every ``eval_every`` steps (and at step 0 and the last step) the expected loss
and the gradient std are logged to ``metrics.jsonl`` and the full state (θ,
the layer, Adam, the noise generator, the step) is checkpointed atomically to
``last.pt``; ``--resume`` continues from it and cuts the JSONL back to its
step, so nothing is duplicated. The evaluation noise is drawn from its own
generator seeded by ``(seed, step)``, so a resumed run follows exactly the
path of an uninterrupted one. At the end ``final.json`` and ``curve.png``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from structgrad_app_common import CLIError, read_jsonl, save_checkpoint
from structgrad_app_common.training import (
    derived_generator,
    load_entry,
    open_log,
    start_run,
    write_config,
    write_final,
)

from toys.config import RunConfig, check
from toys.evaluation import evaluate, train_step
from toys.methods import build
from toys.problems import make_problem

__all__ = ["RunConfig", "first_within", "run"]


def first_within(records: list[dict[str, Any]], optimum: float, tol: float = 0.5) -> int | None:
    """The first evaluated step whose mean loss is within ``tol`` of the optimum."""
    for r in records:
        if r.get("mean_loss") is not None and r["mean_loss"] <= optimum + tol:
            return int(r["step"])
    return None


def run(config: RunConfig) -> dict[str, Any]:
    """Train one estimator on one toy; write every output.

    Returns:
        The content of ``final.json`` (``{"stopped_at": step}`` when
        ``stop_after`` ended the run early).

    Raises:
        CLIError: on bad settings or a resume problem.
    """
    from tqdm.auto import tqdm

    check(config)
    try:
        problem = make_problem(
            config.structure, config.dim, k=config.k, target_seed=config.target_seed
        )
    except ValueError as err:
        raise CLIError(str(err)) from None
    out = Path(config.out)
    last = out / "last.pt"
    state = start_run(config)

    dtype = torch.float64 if config.precision == "double" else torch.float32
    torch.manual_seed(config.seed)  # the RELAX critic's initialisation
    layer = build(
        problem,
        config.estimator,
        plus_samples=config.plus_samples,
        hidden=config.hidden,
        tau=config.tau,
        lam=config.lam,
        aimle_target=config.aimle_target,
    )
    layer = layer.to(config.device)
    if dtype == torch.float64:
        layer = layer.double()
    theta = torch.zeros(problem.event_shape, dtype=dtype, device=config.device, requires_grad=True)
    optimizer = torch.optim.Adam([theta, *layer.parameters()], lr=config.lr)
    gen = torch.Generator(config.device).manual_seed(config.seed)
    step, elapsed = 0, 0.0
    # The training-loss window since the last evaluation: checkpointed, so a
    # resumed run logs the same mean as an uninterrupted one.
    running, count = 0.0, 0
    if state is not None:
        with torch.no_grad():
            theta.copy_(state["theta"])
        load_entry(layer, state, "layer", str(last))
        load_entry(optimizer, state, "optimizer", str(last))
        gen.set_state(state["generator"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
        running, count = float(state.get("running", 0.0)), int(state.get("count", 0))
    conf = write_config(out, config)
    log = open_log(out, state)
    t0 = time.perf_counter()

    def seconds() -> float:
        return elapsed + time.perf_counter() - t0

    def checkpoint() -> None:
        save_checkpoint(
            last,
            {
                "theta": theta.detach().clone(),
                "layer": layer.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": gen.get_state(),
                "step": step,
                "elapsed": seconds(),
                "running": running,
                "count": count,
                "config": conf,
            },
        )

    def evaluation(train_loss: float | None) -> None:
        res = evaluate(
            theta,
            layer,
            problem,
            num_mc=config.num_mc,
            generator=derived_generator(config.seed, step + 1, config.device),
        )
        log.log(
            {
                "step": step,
                "mean_loss": res.mean_loss,
                "gap": res.mean_loss - problem.optimum,
                "grad_std": res.grad_std,
                "grad_norm": res.grad_norm,
                "train_loss": train_loss,
                "seconds": round(seconds(), 3),
            }
        )
        checkpoint()

    diverged = False
    samples = config.samples()
    with log:
        if state is None:
            evaluation(None)
        bar = tqdm(
            total=config.iters,
            initial=step,
            desc=f"{config.structure}/{config.estimator}",
            unit="step",
            disable=not config.progress,
            leave=False,
        )
        while step < config.iters:
            if config.stops_at(step):
                checkpoint()
                bar.close()
                return {"stopped_at": step}
            step += 1
            loss = train_step(theta, layer, problem, optimizer, num_samples=samples, generator=gen)
            if not (math.isfinite(loss) and bool(torch.isfinite(theta).all())):
                diverged = True
                log.log({"step": step, "mean_loss": None, "diverged": True})
                break
            running, count = running + loss, count + 1
            bar.update(1)
            if step % config.eval_every == 0 or step == config.iters:
                evaluation(running / count)
                bar.set_postfix(loss=f"{running / count:.3g}")
                running, count = 0.0, 0
        bar.close()
        checkpoint()
    return _finish(config, problem.optimum, step=step, diverged=diverged, seconds=seconds())


def _finish(
    config: RunConfig, optimum: float, *, step: int, diverged: bool, seconds: float
) -> dict[str, Any]:
    from toys import plots

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
        "diverged": diverged,
        "optimum": optimum,
        "final_loss": records[-1]["mean_loss"] if records else None,
        "losses": {str(r["step"]): r["mean_loss"] for r in records},
        "first_within_0.5": first_within(records, optimum),
        "seconds": round(seconds, 1),
        "plot": str(curve),
        "metrics": str(out / "metrics.jsonl"),
    }
    return write_final(out, final)
