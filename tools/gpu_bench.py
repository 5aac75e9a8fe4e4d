"""GPU benchmark of issue 15: native CUDA solvers, compiled layers, the NRI iteration.

Printed as markdown tables (ratios from one run):

1. each solver with a device twin (top-k, spanning tree, grid path, linear
   assignment) on a CUDA batch against the compiled CPU kernel plus the round
   trip (device -> host -> device), at B = 1024 and n = 10 / 50; the
   arborescence, which copies through the host, for reference;
2. the compile-tested layers, eager vs ``torch.compile`` (inductor), forward
   and backward, on the device.

``--device cpu`` runs the same tables on the CPU (a check of the script).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch

import structgrad.solvers as solvers
from structgrad.distributions import k_subset_marginals, spanning_tree_marginals
from structgrad.models import latent
from structgrad.relaxations import gumbel_softmax

B = 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(
    device: torch.device, repeat: int, fn: Callable[..., object], *args: object
) -> float:
    fn(*args)
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _round_trip(solve: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The solver's CPU kernel on ``x``, the result back on ``x``'s device."""
    return solve(x.cpu()).to(x.device)


def _step(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> None:
    leaf = x.detach().requires_grad_(True)
    (f(leaf) * leaf).sum().backward()


def solver_table(device: torch.device, repeat: int) -> None:
    """Device solver vs CPU kernel + transfers."""
    print(f"\n### Solvers, B = {B}, {device} vs the CPU kernel + round trip (ms)\n")
    print("| solver | n | device | CPU + copies | ratio |\n|---|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for n in (10, 50):
        cases = {
            "top_k (k = n/5)": (
                lambda x, n=n: solvers.top_k(x, n // 5),
                torch.randn(B, n, generator=g),
            ),
            "max_spanning_tree": (solvers.max_spanning_tree, torch.randn(B, n, n, generator=g)),
            "grid_shortest_path": (
                solvers.grid_shortest_path,
                torch.rand(B // 8, n, n, generator=g) + 0.1,
            ),
            "max_arborescence (host)": (
                solvers.max_arborescence,
                torch.randn(B, n, n, generator=g),
            ),
            "linear_assignment": (
                solvers.linear_assignment,
                torch.randn(B, n, n, generator=g),
            ),
        }
        for name, (solve, x) in cases.items():
            on_device = x.to(device)
            native = _median_ms(device, repeat, solve, on_device)
            host = _median_ms(device, repeat, _round_trip, solve, on_device)
            print(f"| {name} | {n} | {native:.2f} | {host:.2f} | {host / native:.2f} |")


def layer_table(device: torch.device, repeat: int) -> None:
    """Eager vs compiled layers, forward + backward."""
    warnings.filterwarnings("ignore", ".*should not be instantiated", DeprecationWarning)
    print(f"\n### Layers, B = {B}, forward + backward on {device} (ms)\n")
    print("| layer | eager | compiled | eager / compiled |\n|---|---|---|---|")
    g = torch.Generator().manual_seed(1)
    cases = {
        "gumbel_softmax [B, 10]": (
            lambda x: gumbel_softmax(x, 0.5),
            torch.randn(B, 10, generator=g),
        ),
        # n = 20: inductor unrolls the DP's loop over items (compile time grows with n).
        "k_subset_marginals [B, 20], k=4": (
            lambda x: k_subset_marginals(x, 4),
            torch.randn(B, 20, generator=g),
        ),
        "spanning_tree_marginals [B, 10, 10]": (
            spanning_tree_marginals,
            torch.randn(B, 10, 10, generator=g),
        ),
        "latent k_subset imle": (latent("k_subset", "imle", k=9), torch.randn(B, 45, generator=g)),
        "latent spanning_tree sst": (
            latent("spanning_tree", "sst"),
            torch.randn(B, 10, 10, generator=g),
        ),
    }
    for name, (fn, x) in cases.items():
        if isinstance(fn, torch.nn.Module):
            fn = fn.to(device)
        x = x.to(device)
        eager = _median_ms(device, repeat, _step, fn, x)
        compiled = _median_ms(device, repeat, _step, torch.compile(fn, fullgraph=True), x)
        print(f"| {name} | {eager:.2f} | {compiled:.2f} | {eager / compiled:.2f} |")
        torch._dynamo.reset()


def main() -> None:
    """Print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per row (20)")
    parser.add_argument("--skip-layers", action="store_true", help="solvers only")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"## {name}, torch {torch.__version__}")
    solver_table(device, args.repeat)
    if not args.skip_layers:
        layer_table(device, args.repeat)


if __name__ == "__main__":
    main()
