"""Score-function estimators: time per call and gradient variance at the toy start.

Per structure at n = 10 (k-subset: k = 5), for E-REINFORCE, T-REINFORCE,
E-REINFORCE+ and T-REINFORCE+ (K = 3) and RELAX (default critic, untrained):

- time per estimator call at B = 128 rows: forward + attach + backward, median
  of repeats;
- gradient variance at logits 0 on the toy losses of Struminsky et al. 2021
  (binary tree −height, matching −#diagonal pairs, arborescence −max
  out-degree; spanning tree #edges not at vertex 0, categorical −index,
  k-subset −#chosen among the first k): the sum over parameters of the
  per-parameter variance of the single-sample estimate; "+" rows per group of
  3 samples (the estimate ``1/(K−1) Σ_k (f_k − mean f) ∇ log p_k``), exactly
  the definition of the reference's table (recursive_gumbel.md §4).

Run ``python bench/bench_score.py`` (about 2 minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import structgrad.estimators as E
from structgrad.testing import toys

N = 10
K = 3
# Reference variances (E, T, E+, T+), recursive_gumbel.md §4 (4000 draws; arborescence 2000).
REFERENCE = {
    "binary_tree": (323, 151, 4.3, 1.9),
    "matching": (197, 16, 50, 4.2),
    "arborescence": (526, 62, 16, 2.0),
}


TOY: dict[str, tuple[tuple[int, ...], dict, Callable[[torch.Tensor], torch.Tensor]]] = {
    "categorical": ((N,), {}, lambda x: -(x * torch.arange(N, dtype=x.dtype)).sum(-1)),
    "k_subset": ((N,), {"k": 5}, lambda x: -x[:, :5].sum(-1)),
    "spanning_tree": (
        (N, N),
        {},
        toys.spanning_tree_loss,
    ),
    "arborescence": ((N, N), {"root": 0}, toys.arborescence_loss),
    "matching": ((N, N), {}, toys.matching_loss),
    "binary_tree": ((N,), {}, toys.binary_tree_loss),
}

ESTIMATORS = ("E-REINFORCE", "T-REINFORCE", "E-REINFORCE+", "T-REINFORCE+", "RELAX")


def build(name: str, structure: str, event: tuple[int, ...], options: dict) -> torch.nn.Module:
    if name == "RELAX":
        return E.relax(structure, event_shape=event, **options).double()
    score = "noise" if name.startswith("E") else "trace"
    if name.endswith("+"):
        return E.ScoreFunction(structure, score=score, baseline="loo", samples=K, **options)
    return E.ScoreFunction(structure, score=score, **options)


def estimate(layer, theta: torch.Tensor, loss_fn, seed: int) -> torch.Tensor:
    """One call: ``[rows, *event]`` estimates (per group of K for "+")."""
    th = theta.clone().requires_grad_(True)
    x = layer(th, generator=torch.Generator().manual_seed(seed))
    rows = theta.shape[0]
    lead = (layer.samples, rows) if layer.samples else (rows,)
    loss = loss_fn(x.reshape(-1, *x.shape[len(lead) :])).reshape(lead)
    out = layer.attach(loss)
    if layer.samples:
        out = out.mean(0)
    out.sum().backward()
    return th.grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few draws and repeats")
    parser.add_argument("--structures", nargs="*", default=None)
    args = parser.parse_args()
    draws, repeats = (400, 3) if args.quick else (4000, 10)
    structures = args.structures or [s for s in E.RECURSIVE_STRUCTURES if s in TOY]
    print(
        f"torch {torch.__version__}, OMP threads {torch.get_num_threads()}, n = {N}, "
        f"K = {K}, variance over {draws} draws (arborescence {draws // 2}), float64\n"
    )
    print("| structure | estimator | ms / call (B=128) | variance | reference variance |")
    print("|---|---|---|---|---|")
    for structure in structures:
        event, options, loss_fn = TOY[structure]
        ref = REFERENCE.get(structure)
        for i, name in enumerate(ESTIMATORS):
            layer = build(name, structure, event, options)
            theta = torch.zeros(128, *event, dtype=torch.float64)
            estimate(layer, theta, loss_fn, 0)  # warm-up
            times = []
            for r in range(repeats):
                start = time.perf_counter()
                estimate(layer, theta, loss_fn, r + 1)
                times.append(time.perf_counter() - start)
            m = draws // 2 if structure == "arborescence" else draws
            est = estimate(layer, torch.zeros(m, *event, dtype=torch.float64), loss_fn, 99)
            var = float(est.var(0).sum())
            want = f"{ref[i]:g}" if ref is not None and i < 4 else ""
            print(
                f"| {structure} | {name} | {1e3 * statistics.median(times):.1f} | "
                f"{var:.3g} | {want} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
