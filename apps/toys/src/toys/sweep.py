"""``toys all``: every structure × estimator (× seed) through the joblib sweep runner.

Each run is one joblib task (local processes by default) writing its own
folder ``<out>/<structure>/<estimator>-seed<seed>``; then one PNG per structure
(one curve per estimator, first seed) and the markdown table of the loss at
steps 1k / 2k / 5k / final and the first step within 0.5 of the optimum,
beside the reference numbers (``reference.py``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from structgrad_app_common import (
    CLIError,
    atomic_write_text,
    check_names,
    json_safe,
    markdown_table,
    mean_se,
    read_jsonl,
    run_parallel,
)
from structgrad_app_common.sweep_resume import check_settings

from toys.config import RunConfig
from toys.methods import applicable
from toys.problems import STRUCTURES
from toys.reference import REFERENCE, REFERENCE_DIM
from toys.train import run

__all__ = ["loss_at", "plan", "run_all", "table"]

#: Steps of the table columns (besides the final one).
TABLE_STEPS = (1000, 2000, 5000)


def _task(config: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration; failures become a record instead of killing the sweep."""
    try:
        return run(RunConfig(**config))
    except Exception as err:
        return {
            "structure": config["structure"],
            "estimator": config["estimator"],
            "seed": config["seed"],
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(limit=3),
        }


def plan(
    base: RunConfig,
    structures: Sequence[str],
    estimators: Sequence[str] | None,
    seeds: Sequence[int],
) -> list[RunConfig]:
    """The run configurations: applicable (structure, estimator) pairs × seeds.

    Finished runs (with ``final.json``) are skipped when ``base.resume``;
    unfinished ones resume from their checkpoint, the others start afresh.

    Raises:
        CLIError: an unknown name, no applicable pair, or an output folder that
            already holds a run without ``--resume`` / ``--overwrite``.
    """
    check_names("structure", structures, STRUCTURES)
    every = {e for s in STRUCTURES for e in applicable(s)}
    check_names("estimator", estimators or (), sorted(every))
    configs = []
    for s in structures:
        for e in applicable(s):
            if estimators is not None and e not in estimators:
                continue
            for seed in seeds:
                out = Path(base.out) / s / f"{e}-seed{seed}"
                config = dataclasses.replace(
                    base, structure=s, estimator=e, seed=seed, out=str(out), progress=False
                )
                if (out / "last.pt").exists() and not base.overwrite:
                    if not base.resume:
                        raise CLIError(
                            f"{str(out)!r} already holds a run; pass --resume or --overwrite"
                        )
                    check_settings(out / "config.json", config)
                    if (out / "final.json").exists():
                        continue
                elif base.resume:
                    config = dataclasses.replace(config, resume=False)
                configs.append(config)
    if not configs and not base.resume:
        raise CLIError("no (structure, estimator) pair to run: the estimators do not apply")
    return configs


def loss_at(records: list[dict[str, Any]], step: int) -> float | None:
    """The mean loss of the last evaluation at or before ``step`` (``None`` if past the end)."""
    recs = [r for r in records if r.get("mean_loss") is not None]
    if not recs or recs[-1]["step"] < step:
        return None
    return [r for r in recs if r["step"] <= step][-1]["mean_loss"]


def _fmt(mean: float, se: float) -> str:
    """Two decimals; ``± se`` when several seeds."""
    return f"{mean:.2f}" if not math.isfinite(se) else f"{mean:.2f} ± {se:.2f}"


def _cell(values: list[float | None], ref: float | str | None, *, integer: bool = False) -> str:
    mean, se, n = mean_se(values)
    if integer:
        ours = "never" if n == 0 else f"{mean:.0f}"
        if 0 < n < len(values):
            ours += f" ({len(values) - n} never)"
    else:
        ours = "—" if n == 0 else _fmt(mean, se)
    return ours if ref is None else f"{ours} ({ref})"


def table(results: list[dict[str, Any]], *, with_reference: bool = True) -> str:
    """Markdown table: loss at 1k / 2k / 5k / final and first step within 0.5, "ours (ref)".

    ``with_reference=False`` (runs of another size than the reference's) leaves
    the reference numbers out.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["structure"], r["estimator"]), []).append(r)
    rows = []
    for (structure, estimator), recs in groups.items():
        ref = REFERENCE.get(structure, {}).get(estimator) if with_reference else None
        ok = [r for r in recs if "error" not in r]
        if not ok:
            rows.append([structure, estimator, "", *["error"] * 5])
            continue
        metrics = [read_jsonl(r["metrics"]) for r in ok]
        cells = [
            _cell([loss_at(m, s) for m in metrics], None if ref is None else ref[i])
            for i, s in enumerate(TABLE_STEPS)
        ]
        steps = sorted({r["steps"] for r in ok})
        cells.append(
            _cell([r["final_loss"] for r in ok], None if ref is None else ref[3])
            + f" @{','.join(map(str, steps))}"
        )
        within = [r["first_within_0.5"] for r in ok]
        ref_within = None if ref is None else ("never" if ref[4] is None else ref[4])
        cells.append(_cell(within, ref_within, integer=True))
        rows.append([structure, estimator, f"{ok[0]['optimum']:.3g}", *cells])
    headers = ["structure", "estimator", "optimum", "1k (ref)", "2k (ref)", "5k (ref)",
               "final @step (ref @14.5k)", "within 0.5 at (ref)"]  # fmt: skip
    return markdown_table(headers, rows)


def run_all(
    base: RunConfig,
    structures: Sequence[str],
    estimators: Sequence[str] | None,
    seeds: Sequence[int],
    *,
    n_jobs: int,
    backend: str,
    scheduler: str | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Run the plan in parallel, then write the plots, ``results.json`` and ``table.md``.

    ``scheduler``: the address of a Dask scheduler whose cluster runs the plan
    (its workers must see ``base.out``).

    Returns:
        The per-run results and the markdown table.
    """
    from toys import plots

    configs = plan(base, structures, estimators, seeds)
    tasks = [{"config": dataclasses.asdict(c)} for c in configs]
    returned = run_parallel(
        _task, tasks, n_jobs=n_jobs, backend=backend, scheduler=scheduler, verbose=5 if tasks else 0
    )
    errors = {(r["structure"], r["estimator"], r["seed"]): r for r in returned if "error" in r}
    out = Path(base.out)
    results = []
    for s in structures:
        runs: dict[str, list[dict[str, Any]]] = {}
        optimum = math.nan
        for e in applicable(s):
            if estimators is not None and e not in estimators:
                continue
            for seed in seeds:
                folder = out / s / f"{e}-seed{seed}"
                final = folder / "final.json"
                if final.exists():
                    rec = json.loads(final.read_text())
                    optimum = rec["optimum"]
                    runs.setdefault(e, read_jsonl(folder / "metrics.jsonl"))
                else:
                    missing = {
                        "structure": s,
                        "estimator": e,
                        "seed": seed,
                        "error": "no final.json",
                    }
                    rec = errors.get((s, e, seed), missing)
                results.append(rec)
        if runs:
            plots.plot_runs(
                runs,
                out / f"{s}.png",
                title=f"{s} (n={base.dim}, seed {seeds[0]})",
                optimum=optimum,
            )
    md = table(results, with_reference=base.dim == REFERENCE_DIM)
    atomic_write_text(out / "results.json", json.dumps(json_safe(results), indent=2) + "\n")
    atomic_write_text(out / "table.md", md + "\n")
    return results, md
