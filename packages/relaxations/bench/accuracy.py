"""Accuracy figures quoted in the README (Numerics): not timings.

1. The τ → 0 limit of arborescence marginals with the default clip: largest
   deviation from the maximum arborescence over Gaussian graphs at τ = 1e-6,
   and the share of graphs a plain per-column clip (the former default) sends
   away from it (deviation > 0.5).
2. The float32 path of the Matrix-Tree marginals against float64, for float32
   input within the 10-nat spread that selects it.

Run from `packages/relaxations`: `python bench/accuracy.py`.
"""

from __future__ import annotations

import math

import torch

import structgrad.solvers as solvers
from structgrad.relaxations import arborescence_marginals, spanning_tree_marginals


def limit(n: int, graphs: int = 200, tau: float = 1e-6) -> tuple[float, float]:
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(graphs, n, n, dtype=torch.float64, generator=gen)
    best = solvers.max_arborescence(scores)
    new = (arborescence_marginals(scores / tau) - best).abs().amax((-2, -1))
    w = scores / tau
    column_clipped = torch.maximum(w, w.amax(-2, keepdim=True) - 15.0)
    old = (arborescence_marginals(column_clipped, max_range=math.inf) - best).abs()
    return float(new.max()), float((old.amax((-2, -1)) > 0.5).double().mean())


def float32_error(n: int, scale: float) -> float:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, n, n, dtype=torch.float64, generator=gen) * scale
    err = 0.0
    for fn in (spanning_tree_marginals, arborescence_marginals):
        err = max(err, float((fn(x.float()).double() - fn(x)).abs().max()))
    return err


def main() -> None:
    print("| n | largest deviation from the MAP, τ = 1e-6 | per-column clip: graphs off the MAP |")
    print("|---|---|---|")
    for n in (4, 6, 10, 20):
        dev, off = limit(n)
        print(f"| {n} | {dev:.1e} | {100 * off:.0f}% |")
    print("\n| n | score scale | float32 vs float64, largest error |")
    print("|---|---|---|")
    for n in (10, 50):
        for scale in (0.5, 1.0):
            print(f"| {n} | {scale} | {float32_error(n, scale):.1e} |")


if __name__ == "__main__":
    main()
