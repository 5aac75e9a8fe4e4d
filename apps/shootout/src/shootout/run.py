"""Run the shootout: references, one conformance evaluation per (structure, estimator), table.

Every pair is evaluated with :func:`structgrad.testing.conformance.evaluate` on
``draws`` independent single estimates against the reference gradient of the law
the estimator's samples follow (:mod:`shootout.problems`). Pairs run through
joblib (:func:`structgrad_app_common.sweep.run_parallel`), each with its own seeded
``torch.Generator``, so the numbers do not depend on ``jobs``.
"""

from __future__ import annotations

import math
import statistics
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from structgrad_app_common import markdown_table, opt, run_parallel, seed_int
from structgrad_app_common.batches import torch_seed

from structgrad.testing import conformance

from .estimators import ESTIMATORS, Settings, applicable, build, make_draw
from .problems import PAM_DIFFERS, Reference, make_problem, reference

__all__ = ["COLUMNS", "Config", "evaluate_pair", "law_of", "markdown", "pairs", "run"]


@dataclass(frozen=True)
class Config:
    """What a run measures (stored in every JSONL row; ``--resume`` reuses matching rows).

    Each field is also a flag (see :func:`~structgrad_app_common.opt`).

    Attributes:
        draws: single estimates per pair.
        seed: seed of the problems, the draws, the warm-ups and the critics.
        tau: temperature of the relaxations.
        warmup: warm-up steps of the stateful estimators.
        reference_samples: Monte Carlo samples of the perturb-and-MAP references.
        chunk: estimates per batched call.
        device: torch device of the measured draws (warm-ups and references run on the CPU).
    """

    BOUNDS: ClassVar = {
        "draws": ">= 2", "tau": "> 0", "warmup": ">= 0", "reference_samples": ">= 2",
        "chunk": ">= 1",
    }  # fmt: skip

    draws: int = opt(5000, "independent single estimates per pair (default 5000; 200 with --smoke)")
    seed: int = opt(
        0,
        "seed of the problems (θ, f), the draws, warm-ups and critics (default 0)",
        type=seed_int,
    )
    tau: float = opt(1.0, "temperature of sst / st-sst / Gumbel-softmax (default 1.0)")
    warmup: int = opt(
        200,
        "training steps before freezing the EMA baseline, AIMLE's λ and the "
        "relax-trained critic (default 200; 5 with --smoke)",
    )
    reference_samples: int = opt(
        4_000_000,
        "Monte Carlo samples of the perturb-and-MAP reference gradients "
        "(arborescence, matching; default 4000000, 20000 with --smoke)",
        metavar="M",
    )
    chunk: int = opt(1000, "estimates per batched estimator call (default 1000)")
    device: str = opt("cpu", "torch device of the measured draws: cpu, cuda... (default cpu)")


def law_of(estimator: str, structure: str) -> str:
    """``rg`` (score-function estimators) or ``pam`` (pathwise ones: perturb-and-MAP forward)."""
    return "rg" if ESTIMATORS[estimator].kind == "score" else "pam"


def law_label(law: str, structure: str) -> str:
    """The law column: says when the two laws coincide on ``structure``."""
    if structure not in PAM_DIFFERS and structure != "binary_tree":
        return f"{law} (= {'pam' if law == 'rg' else 'rg'})"
    return law


def pairs(structures: Iterable[str], estimators: Iterable[str]) -> list[tuple[str, str]]:
    """The applicable (structure, estimator) pairs, in table order."""
    names = list(estimators)
    return [(s, e) for s in structures for e in names if applicable(e, s)]


def _seed(config: Config, structure: str, estimator: str) -> int:
    return torch_seed(config.seed * 1_000_003 + zlib.crc32(f"{structure}/{estimator}".encode()))


def evaluate_pair(
    structure: str, estimator: str, config: Config, ref: dict[str, Any]
) -> dict[str, Any]:
    """Evaluate one pair; ``ref`` holds the reference (law, grad, stderr as lists).

    Returns:
        The JSONL row: the table columns plus the config and the reference's size.
    """
    torch.set_num_threads(1)  # one core per pair: the pairs run in parallel
    problem = make_problem(structure, config.seed)
    settings = Settings(tau=config.tau, warmup=config.warmup, seed=_seed(config, structure, "w"))
    layer = build(estimator, problem, settings).to(config.device)  # warmed up on the CPU
    problem = problem.to(config.device)
    draw = make_draw(layer, problem)
    gen = torch.Generator(config.device).manual_seed(_seed(config, structure, estimator))
    # the report's tensors are on the CPU: the reference stays there too
    exact = torch.tensor(ref["grad"], dtype=torch.float64)
    report = conformance.evaluate(
        draw, problem.logits, exact, n_draws=config.draws, generator=gen, chunk=config.chunk
    )
    # z-scores with the reference's own Monte Carlo error (zero when exact).
    ref_se = torch.tensor(ref["stderr"], dtype=torch.float64)
    se = (report.stderr.square() + ref_se.square()).sqrt()
    err = (report.mean - exact).abs()
    z = torch.where(se > report.tolerance, err / se.clamp(min=1e-300), err * 0.0)
    z = torch.where((se <= report.tolerance) & (err > report.tolerance), err * math.inf, z)
    calls = []
    for _ in range(7):
        start = time.perf_counter()
        draw(problem.logits, 1, gen)
        if problem.logits.is_cuda:
            torch.cuda.synchronize()  # the call's own time, not its launch
        calls.append(time.perf_counter() - start)
    return {
        "structure": structure,
        "n": problem.n,
        "estimator": estimator,
        "kind": ESTIMATORS[estimator].kind,
        "law": ref["law"],
        "cosine": report.cosine,
        "rel_bias": report.relative_bias,
        "max_z": float(z.max()),
        "total_var": report.total_variance,
        "samples_per_estimate": ESTIMATORS[estimator].samples,
        "us_per_draw": 1e6 * report.seconds_per_draw,
        "ms_per_call": 1e3 * statistics.median(calls),
        "exact_norm": float(exact.norm()),
        "reference_samples": ref["samples"],
        **{f"config_{k}": v for k, v in asdict(config).items()},
    }


def _num(value: Any, spec: str) -> str:
    # JSONL stores inf as null (rows reused by --resume).
    return "inf" if value is None else format(value, spec)


#: Table columns: header and how to format the row's value.
COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("structure", lambda r: f"{r['structure']} (n={r['n']})"),
    ("estimator", lambda r: r["estimator"]),
    ("law", lambda r: law_label(r["law"], r["structure"])),
    ("cosine", lambda r: _num(r["cosine"], ".3f")),
    ("rel. bias", lambda r: _num(r["rel_bias"], ".3f")),
    ("max abs z", lambda r: _num(r["max_z"], ".1f")),
    ("variance", lambda r: _num(r["total_var"], ".3g")),
    ("K", lambda r: str(r["samples_per_estimate"])),
    ("µs/draw", lambda r: _num(r["us_per_draw"], ".0f")),
    ("ms/call", lambda r: _num(r["ms_per_call"], ".2f")),
]


def markdown(rows: list[dict[str, Any]]) -> str:
    """The results as a GitHub markdown table."""
    return markdown_table([c for c, _ in COLUMNS], [[fmt(r) for _, fmt in COLUMNS] for r in rows])


def references(structures: Iterable[str], config: Config) -> dict[tuple[str, str], Reference]:
    """The reference gradients needed for ``structures``, keyed by (structure, law)."""
    out = {}
    for s in structures:
        problem = make_problem(s, config.seed)
        laws = ("rg", "pam") if s in PAM_DIFFERS else ("rg",)
        for law in laws:
            out[s, law] = reference(
                problem, law, samples=config.reference_samples, seed=config.seed
            )
    return out


def run(
    todo: list[tuple[str, str]],
    config: Config,
    *,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
    record: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate ``todo`` pairs (``jobs`` in parallel); ``progress(k)`` after each batch.

    ``record(row)`` is called for each row as soon as its batch is done.

    Returns:
        One row per pair, in ``todo`` order.
    """
    refs = references(dict.fromkeys(s for s, _ in todo), config)
    tasks: list[dict[str, Any]] = []
    for s, e in todo:
        law = law_of(e, s)
        r = refs.get((s, law), refs[s, "rg"])
        ref = {
            "law": law,
            "grad": r.grad.tolist(),
            "stderr": r.stderr.tolist(),
            "samples": r.samples,
        }
        tasks.append({"structure": s, "estimator": e, "config": config, "ref": ref})
    rows: list[dict[str, Any]] = []
    step = 1 if jobs <= 1 else 3 * jobs  # a few pairs per worker between progress updates
    for i in range(0, len(tasks), step):
        batch = tasks[i : i + step]
        done = (
            [evaluate_pair(**t) for t in batch]
            if jobs <= 1
            else run_parallel(evaluate_pair, batch, n_jobs=jobs)
        )
        rows += done
        if record is not None:
            for row in done:
                record(row)
        if progress is not None:
            progress(len(batch))
    return rows
