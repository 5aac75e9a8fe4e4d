"""Eager vs ``torch.compile`` (inductor) time of the compilable layers, one run.

Every layer of the compile tests (Gumbel-softmax, k-subset and spanning-tree
marginals, ``latent`` SST / IMLE / AIMLE on k-subsets and spanning trees) is
timed forward + backward, eagerly and compiled with ``fullgraph=True``; the
table prints the median of repeated calls, the ratio eager / compiled and the
one-off compile time. Run: ``nox -s bench-3.11(pkg='models')`` or
``python bench/compiled.py [--backend aot_eager] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch

from structgrad.distributions import k_subset_marginals, spanning_tree_marginals
from structgrad.models import latent
from structgrad.relaxations import gumbel_softmax

B = 128


def _cases() -> dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    cat = torch.randn(B, 10, generator=g)
    subset = torch.randn(B, 45, generator=g)
    tree = torch.randn(B, 10, 10, generator=g)
    return {
        "gumbel_softmax [128, 10]": (lambda x: gumbel_softmax(x, 0.5), cat),
        "k_subset_marginals [128, 45], k=9": (lambda x: k_subset_marginals(x, 9), subset),
        "spanning_tree_marginals [128, 10, 10]": (spanning_tree_marginals, tree),
        "latent k_subset sst": (latent("k_subset", "sst", k=9), subset),
        "latent k_subset imle": (latent("k_subset", "imle", k=9), subset),
        "latent k_subset aimle": (latent("k_subset", "aimle", k=9), subset),
        "latent spanning_tree sst": (latent("spanning_tree", "sst"), tree),
        "latent spanning_tree imle": (latent("spanning_tree", "imle"), tree),
    }


def _step(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> None:
    x = x.detach().requires_grad_(True)
    (fn(x) * x).sum().backward()


def _median_us(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, repeat: int) -> float:
    _step(fn, x)  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        _step(fn, x)
        times.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(times)


def main() -> None:
    """Print the eager / compiled table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="inductor", help="torch.compile backend (inductor)")
    parser.add_argument("--repeat", type=int, default=30, help="timed calls per layer (30)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", ".*should not be instantiated", DeprecationWarning)
    print(f"threads {torch.get_num_threads()}, backend {args.backend}, forward + backward")
    print(f"| layer | eager µs | compiled µs | eager / compiled | compile s |\n|{'---|' * 5}")
    for name, (fn, x) in _cases().items():
        eager = _median_us(fn, x, args.repeat)
        compiled_fn = torch.compile(fn, backend=args.backend, fullgraph=True)
        t0 = time.perf_counter()
        _step(compiled_fn, x)
        compile_s = time.perf_counter() - t0
        compiled = _median_us(compiled_fn, x, args.repeat)
        ratio = eager / compiled
        print(f"| {name} | {eager:.0f} | {compiled:.0f} | {ratio:.2f} | {compile_s:.1f} |")
        torch._dynamo.reset()


if __name__ == "__main__":
    main()
