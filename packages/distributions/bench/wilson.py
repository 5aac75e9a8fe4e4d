"""Benchmark the exact spanning-tree sampler against a Python loop over networkx.

Run from packages/distributions (``nox -s bench`` does):
``OMP_NUM_THREADS=1 python bench/wilson.py``. For each (B, n) it draws one tree
per graph of a batch of symmetric logits θ three ways and prints the medians and
the ratios measured in this one run:

- ``SpanningTree(θ).sample((1,))``: the public torch call (checks, masks, the
  compiled Wilson kernel of structgrad.solvers, the adjacency);
- the kernel alone, ``structgrad.solvers.wilson_arborescences`` on numpy;
- ``networkx.random_spanning_tree(G, weight="weight", multiplicative=True)`` over
  the graphs ``G`` with weights ``exp(θ)`` (built before timing), one call per
  graph. That loop is timed on the first ``--peer-cap`` graphs and scaled to the
  batch (marked ``~``).

Then the issue's target (≥ 50x at B = 1024, n = 10) as PASS/MISS.
"""

from __future__ import annotations

import argparse
import os
import platform

import networkx as nx
import numpy as np
import torch

import structgrad.solvers as solvers
from structgrad.distributions import SpanningTree
from structgrad.testing.timing import fmt_seconds, median_time

CASES = [(1024, 10), (256, 30)]  # (B, n)
TARGET = (1024, 10, 50.0)  # B, n, minimum ratio of the networkx loop to SpanningTree.sample


def graphs(theta: np.ndarray) -> list[nx.Graph]:
    """The networkx graphs with edge weights ``exp(θ_ij)`` (complete graphs, no self-loops)."""
    n = theta.shape[-1]
    return [nx.from_numpy_array(np.exp(t) * (1 - np.eye(n))) for t in theta]


def measure(theta: np.ndarray, peer_cap: int, repeats: int) -> tuple[float, float, float, bool]:
    """Seconds of ``SpanningTree.sample``, the kernel and the networkx loop (scaled?)."""
    b, n, _ = theta.shape
    logits = torch.from_numpy(theta)
    gen = torch.Generator().manual_seed(0)
    ours = median_time(lambda: SpanningTree(logits).sample((1,), generator=gen), repeats=repeats)
    kernel = median_time(
        lambda: solvers.wilson_arborescences(theta, count=1, seed=1), repeats=repeats
    )
    # networkx's sampler contracts edges with Kirchhoff determinants: slow, so a subset.
    peers = graphs(theta[: max(1, peer_cap * 100 // n**2)])
    rng = np.random.default_rng(1)

    def loop() -> None:
        for g in peers:
            nx.random_spanning_tree(g, weight="weight", multiplicative=True, seed=rng)

    peer = median_time(loop, min_time=0.0, repeats=repeats) * b / len(peers)
    return ours, kernel, peer, len(peers) < b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--peer-cap", type=int, default=16, help="graphs the networkx loop runs at n = 10"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement")
    args, _ = parser.parse_known_args(argv)  # nox passes the same arguments to every script
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(
        f"structgrad-solvers {solvers.__version__} ({solvers.backend()}), torch {torch.__version__}"
        f", networkx {nx.__version__}, python {platform.python_version()}, "
        f"OMP_NUM_THREADS={threads}\n"
    )
    print("| B | n | SpanningTree.sample | kernel | networkx loop | ratio | kernel ratio |")
    print("|---|---|---|---|---|---|---|")
    ratios = {}
    rng = np.random.default_rng(0)
    for b, n in CASES:
        upper = np.triu(rng.normal(size=(b, n, n)), 1)
        theta = upper + upper.transpose(0, 2, 1)  # symmetric, zero diagonal
        ours, kernel, peer, scaled = measure(theta, args.peer_cap, args.repeats)
        ratios[(b, n)] = peer / ours
        print(
            f"| {b} | {n} | {fmt_seconds(ours)} | {fmt_seconds(kernel)} "
            f"| {'~' if scaled else ''}{fmt_seconds(peer)} "
            f"| **{peer / ours:.0f}x** | {peer / kernel:.0f}x |"
        )
    b, n, target = TARGET
    status = "PASS" if ratios[(b, n)] >= target else "MISS"
    print(f"\ntarget: B = {b}, n = {n}: {ratios[(b, n)]:.0f}x >= {target:g}x: {status}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
