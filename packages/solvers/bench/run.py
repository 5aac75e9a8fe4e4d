"""Benchmark structgrad.solvers against per-graph loops over scipy and networkx.

Run from packages/solvers (``nox -s bench`` does): ``python bench/run.py``.
Prints one markdown table per solver with median times and ratios measured in
the same run, then the issue's targets as PASS/MISS. ``--quick`` runs a small
subset; ``--out FILE`` also writes the rows as JSON.

A networkx loop over many graphs is timed on the first ``--peer-cap`` graphs
and scaled to the batch (marked ``~``); scipy loops run over the whole batch;
a peer named "(batched)" is one call on the whole batch.
Each measurement repeats the same batch, so branch predictors learn small
batches: compare the large-batch rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra, minimum_spanning_tree

import structgrad.solvers as solvers
from structgrad.testing.timing import fmt_seconds, median_time


def peer_loop(
    one: Callable[[np.ndarray], Any], x: np.ndarray, cap: int, repeats: int
) -> tuple[float, bool]:
    """Time ``one`` over the batch, on at most ``cap`` items scaled to the whole batch."""
    items = x[:cap]
    t = median_time(lambda: [one(item) for item in items], repeats=repeats)
    return t * len(x) / len(items), len(items) < len(x)


def scipy_mst(w: np.ndarray) -> Any:
    return minimum_spanning_tree(-np.triu(w, 1))


def nx_mst(w: np.ndarray) -> Any:
    return nx.maximum_spanning_tree(nx.from_numpy_array(np.triu(w, 1) + np.triu(w, 1).T))


def nx_arborescence(w: np.ndarray) -> Any:
    v = w.copy()
    np.fill_diagonal(v, 0.0)
    v[:, 0] = 0.0  # no edges into the root (0 means "no edge" for from_numpy_array)
    return nx.maximum_spanning_arborescence(nx.from_numpy_array(v, create_using=nx.DiGraph))


def scipy_lap(w: np.ndarray) -> Any:
    return linear_sum_assignment(w, maximize=True)


_GRID_EDGES: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def grid_peer(c: np.ndarray) -> Any:
    """Dijkstra of scipy on the 8-neighbour grid graph, edge weight = cost of the cell entered.

    The edge structure is built once per grid shape (vectorised); each call only
    fills in the weights, builds the CSR matrix and runs Dijkstra.
    """
    h, w = c.shape
    if (h, w) not in _GRID_EDGES:
        idx = np.arange(h * w).reshape(h, w)
        src, dst = [], []
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if dr or dc:
                    a = idx[max(0, -dr) : h - max(0, dr), max(0, -dc) : w - max(0, dc)]
                    b = idx[max(0, dr) : h + min(0, dr), max(0, dc) : w + min(0, dc)]
                    src.append(a.ravel())
                    dst.append(b.ravel())
        _GRID_EDGES[(h, w)] = (np.concatenate(src), np.concatenate(dst))
    src, dst = _GRID_EDGES[(h, w)]
    graph = csr_matrix((c.ravel()[dst] + 1e-300, (src, dst)), shape=(h * w, h * w))
    return dijkstra(graph, indices=0, return_predecessors=True)


CASES: dict[str, dict[str, Any]] = {
    "spanning tree": {
        "ours": solvers.max_spanning_tree,
        "peers": {"scipy": scipy_mst, "networkx": nx_mst},
        "make": lambda rng, b, n: rng.random((b, n, n)) + 0.01,
    },
    "spanning tree + trace": {
        "ours": lambda x: solvers.max_spanning_tree(x, return_trace=True),
        "peers": {"scipy": scipy_mst},
        "make": lambda rng, b, n: rng.random((b, n, n)) + 0.01,
    },
    "arborescence": {
        "ours": solvers.max_arborescence,
        "peers": {"networkx": nx_arborescence},
        "make": lambda rng, b, n: rng.random((b, n, n)) + 0.01,
    },
    "linear assignment": {
        "ours": solvers.linear_assignment,
        "peers": {"scipy": scipy_lap},
        "make": lambda rng, b, n: rng.random((b, n, n)),
    },
    "top-k (k = n/5)": {
        "ours": lambda x: solvers.top_k(x, max(1, x.shape[-1] // 5)),
        "peers": {},
        "make": lambda rng, b, n: rng.random((b, n)),
    },
    "batched inverse": {
        "ours": lambda x: solvers.batched_inverse(x)[0],
        "peers": {"numpy.linalg.inv (batched)": np.linalg.inv},
        "make": lambda rng, b, n: rng.random((b, n, n)) + n * np.eye(n),
    },
    "grid shortest path (n x n)": {
        "ours": solvers.grid_shortest_path,
        "peers": {"scipy": grid_peer},
        "make": lambda rng, b, n: rng.random((b, n, n)),
    },
}

TARGETS = [  # (case, peer, B, n, minimum ratio)
    ("spanning tree", "scipy", 1024, 10, 50.0),
    ("spanning tree", "scipy", 1024, 50, 10.0),
    ("arborescence", "networkx", 1024, 10, 100.0),
    ("arborescence", "networkx", 1024, 50, 20.0),
    ("linear assignment", "scipy", 128, 10, 2.0),
    ("linear assignment", "scipy", 1024, 10, 2.0),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="B in {1, 128}, n in {10}")
    parser.add_argument("--out", help="also write the rows to this JSON file")
    parser.add_argument("--peer-cap", type=int, default=64, help="most graphs a peer loop runs")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement")
    parser.add_argument("--only", help="run only the solvers whose name contains this text")
    args = parser.parse_args(argv)
    batches = [1, 128] if args.quick else [1, 128, 1024]
    sizes = [10] if args.quick else [10, 50, 100]
    rng = np.random.default_rng(0)
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(
        f"structgrad-solvers {solvers.__version__} ({solvers.backend()}), "
        f"numpy {np.__version__}, python {platform.python_version()}, OMP_NUM_THREADS={threads}"
    )
    rows = []
    for name, case in CASES.items():
        if args.only and args.only not in name:
            continue
        peers = list(case["peers"])
        print(f"\n### {name}\n")
        header = ["B", "n", "structgrad"] + [
            f"{p}{'' if p.endswith('(batched)') else ' loop'} | ratio" for p in peers
        ]
        print("| " + " | ".join(header) + " |")
        print("|---|---|---|" + "---|---|" * len(peers))
        for n in sizes:
            for b in batches:
                x = case["make"](rng, b, n)
                ours = median_time(lambda f=case["ours"], x=x: f(x), repeats=args.repeats)
                row: dict[str, Any] = {"case": name, "B": b, "n": n, "ours": ours}
                cells = [str(b), str(n), fmt_seconds(ours)]
                for peer in peers:
                    # scipy loops run over the whole batch; slow networkx loops over a subset.
                    if peer.endswith("(batched)"):
                        fn = case["peers"][peer]
                        t = median_time(lambda fn=fn, x=x: fn(x), repeats=args.repeats)
                        row[peer] = t
                        cells += [fmt_seconds(t), f"{t / ours:.1f}x"]
                        continue
                    if peer == "scipy":
                        cap = b
                    else:
                        cap = args.peer_cap if n <= 10 else max(2, args.peer_cap // (n // 10) ** 2)
                    t, scaled = peer_loop(case["peers"][peer], x, cap, args.repeats)
                    row[peer] = t
                    cells += [("~" if scaled else "") + fmt_seconds(t), f"{t / ours:.1f}x"]
                rows.append(row)
                print("| " + " | ".join(cells) + " |")
    print("\n### targets\n")
    print("| solver | peer | B | n | ratio | target | status |")
    print("|---|---|---|---|---|---|---|")
    for case, peer, b, n, target in TARGETS:
        match = [r for r in rows if r["case"] == case and r["B"] == b and r["n"] == n]
        if not match:
            continue
        ratio = match[0][peer] / match[0]["ours"]
        status = "PASS" if ratio >= target else "MISS"
        print(f"| {case} | {peer} | {b} | {n} | {ratio:.1f}x | >= {target:g}x | {status} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"threads": threads, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
