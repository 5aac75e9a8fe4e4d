"""Benchmark the exact relaxations of structgrad against the peers (forward + backward).

Run from packages/relaxations (``nox -s bench`` does, with ``OMP_NUM_THREADS=1``
and with the default thread setting): ``python bench/run.py [--quick]``.
Prints median times measured in one run and the ratio peer / structgrad.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable

import torch

from structgrad.relaxations import (
    cvx_relaxation,
    k_subset_marginals,
    multi_root_arborescence_marginals,
    spanning_tree_marginals,
)


def median_time(fn: Callable[[], object], *, min_time: float = 0.1, repeats: int = 5) -> float:
    fn()
    start = time.perf_counter()
    fn()
    calls = max(1, int(min_time / max(time.perf_counter() - start, 1e-6)))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def fwd_bwd(relax: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
    weights = torch.randn_like(x)

    def run() -> None:
        leaf = x.detach().requires_grad_(True)
        (relax(leaf) * weights).sum().backward()

    return run


def logdet_tree_marginals(w: torch.Tensor) -> torch.Tensor:
    """The obvious code: Kirchhoff logdet, then autograd for the marginals."""
    w = w.detach().requires_grad_(True) if not w.requires_grad else w
    sym = torch.triu(w, 1)
    sym = sym + sym.transpose(-1, -2)
    shift = sym.amax(dim=(-1, -2), keepdim=True).detach()
    weight = torch.exp(sym - shift) * (1 - torch.eye(w.shape[-1], dtype=w.dtype))
    lap = torch.diag_embed(weight.sum(-1)) - weight
    log_z = torch.logdet(lap[..., 1:, 1:]).sum()
    (grad,) = torch.autograd.grad(log_z, w, create_graph=True)
    return grad


def torch_struct_marginals(x: torch.Tensor) -> torch.Tensor:
    import torch_struct

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch_struct.NonProjectiveDependencyCRF(x, multiroot=True).marginals


def ours_multi_root(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[-1]
    off = x.masked_fill(torch.eye(n, dtype=torch.bool), 0.0)
    edges, roots = multi_root_arborescence_marginals(off, torch.diagonal(x, dim1=-2, dim2=-1))
    return edges + torch.diag_embed(roots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the slow cvxpylayers peer")
    args = parser.parse_args()
    torch.manual_seed(0)
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()} "
        f"(OMP_NUM_THREADS={threads}), B = 128, forward + backward"
    )
    print("\n| relaxation | n | dtype | structgrad | peer | peer time | ratio | target |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    x = torch.randn(128, 45)
    ours = median_time(fwd_bwd(lambda t: k_subset_marginals(t, 9), x))
    if args.quick:
        rows.append(("k-subset marginals (k=9)", 45, "f32", ours, "cvxpylayers", None, ">= 200x"))
    else:
        layer = cvx_relaxation("k_subset", 45, k=9)
        peer = median_time(fwd_bwd(layer, x), min_time=0.0, repeats=3)
        rows.append(("k-subset marginals (k=9)", 45, "f32", ours, "cvxpylayers", peer, ">= 200x"))
    for n in (10, 50):
        for dtype in (torch.float32, torch.float64):
            x = torch.randn(128, n, n, dtype=dtype)
            ours = median_time(fwd_bwd(spanning_tree_marginals, x))
            peer = median_time(fwd_bwd(logdet_tree_marginals, x))
            name = "f32" if dtype == torch.float32 else "f64"
            rows.append(
                ("spanning-tree marginals", n, name, ours, "torch logdet+autograd", peer, ">= 1x")
            )
            ours = median_time(fwd_bwd(ours_multi_root, x))
            peer = median_time(fwd_bwd(torch_struct_marginals, x))
            rows.append(
                (
                    "arborescence marginals (multi-root)",
                    n,
                    name,
                    ours,
                    "torch-struct NonProjective",
                    peer,
                    ">= 1x",
                )
            )
    for name, n, dtype, ours, peer_name, peer, target in rows:
        peer_cell = "skipped (--quick)" if peer is None else f"{peer * 1e3:.2f} ms"
        ratio = "" if peer is None else f"{peer / ours:.1f}x"
        print(
            f"| {name} | {n} | {dtype} | {ours * 1e3:.2f} ms | {peer_name} | {peer_cell} | "
            f"{ratio} | {target} |"
        )


if __name__ == "__main__":
    main()
