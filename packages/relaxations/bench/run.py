"""Benchmark the exact relaxations of structgrad against the peers (forward + backward).

Run from packages/relaxations (``nox -s bench`` does, with ``OMP_NUM_THREADS=1``
and with the default thread setting): ``python bench/run.py [--quick]``.
Prints median times measured in one run and the median ratio peer / structgrad
of the rounds in which the two were timed one after the other.
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


def calls_for(fn: Callable[[], object], min_time: float) -> int:
    """How many calls of ``fn`` (after a warm-up call) take at least ``min_time`` seconds."""
    fn()
    start = time.perf_counter()
    fn()
    return max(1, int(min_time / max(time.perf_counter() - start, 1e-6)))


def per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def compare(
    ours: Callable[[], object],
    peer: Callable[[], object] | None,
    *,
    min_time: float = 0.1,
    rounds: int = 7,
) -> tuple[float, float | None, float | None]:
    """Median seconds per call of ``ours`` and ``peer``, and the median ratio peer / ours.

    The two are timed in alternation, ``rounds`` times: on a shared machine
    the load drifts, and the ratio of neighbouring measurements drifts less
    than either time.
    """
    n_ours = calls_for(ours, min_time)
    n_peer = None if peer is None else calls_for(peer, min_time)
    mine, theirs, ratios = [], [], []
    for _ in range(rounds):
        mine.append(per_call(ours, n_ours))
        if peer is not None and n_peer is not None:
            theirs.append(per_call(peer, n_peer))
            ratios.append(theirs[-1] / mine[-1])
    if peer is None:
        return statistics.median(mine), None, None
    return statistics.median(mine), statistics.median(theirs), statistics.median(ratios)


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


def torch_struct_marginals(x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    import torch_struct

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crf = torch_struct.NonProjectiveDependencyCRF(x, lengths=lengths, multiroot=True)
        return crf.marginals


def ours_multi_root(x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    # torch-struct's layout (root scores on the diagonal) as it is: the diagonal
    # of ``scores`` is not read.
    roots = torch.diagonal(x, dim1=-2, dim2=-1)
    edges, roots = multi_root_arborescence_marginals(x, roots, lengths=lengths)
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
    ours_k = fwd_bwd(lambda t: k_subset_marginals(t, 9), x)
    layer = None if args.quick else fwd_bwd(cvx_relaxation("k_subset", 45, k=9), x)
    # cvxpylayers takes seconds per call: one call per round
    times = compare(ours_k, layer, min_time=0.0 if layer else 0.1, rounds=3)
    rows.append(("k-subset marginals (k=9)", 45, "f32", "cvxpylayers", *times, ">= 200x"))
    for n in (10, 50):
        for dtype in (torch.float32, torch.float64):
            x = torch.randn(128, n, n, dtype=dtype)
            name = "f32" if dtype == torch.float32 else "f64"
            times = compare(fwd_bwd(spanning_tree_marginals, x), fwd_bwd(logdet_tree_marginals, x))
            rows.append(
                ("spanning-tree marginals", n, name, "torch logdet+autograd", *times, ">= 1x")
            )
            # Padded: random lengths in [n/2, n], as in a batch of sentences.
            for padded in (False, True):
                lengths = torch.randint(n // 2, n + 1, (128,)) if padded else None
                times = compare(
                    fwd_bwd(lambda t, lens=lengths: ours_multi_root(t, lens), x),
                    fwd_bwd(lambda t, lens=lengths: torch_struct_marginals(t, lens), x),
                )
                label = "arborescence marginals (multi-root" + (", padded)" if padded else ")")
                rows.append((label, n, name, "torch-struct NonProjective", *times, ">= 1x"))
    for name, n, dtype, peer_name, ours, peer, ratio, target in rows:
        peer_cell = "skipped (--quick)" if peer is None else f"{peer * 1e3:.2f} ms"
        ratio_cell = "" if ratio is None else f"{ratio:.1f}x"
        print(
            f"| {name} | {n} | {dtype} | {ours * 1e3:.2f} ms | {peer_name} | {peer_cell} | "
            f"{ratio_cell} | {target} |"
        )


if __name__ == "__main__":
    main()
