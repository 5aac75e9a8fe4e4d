"""Benchmark the tree laws' exact quantities against torch-struct and a logdet loop.

Run from packages/distributions (``nox -s bench`` does):
``OMP_NUM_THREADS=1 python bench/trees.py``. For batches of random scores it times,
in one run, each quantity three ways where the peer has it:

- ours: ``SpanningTree(θ)`` / ``Arborescence(θ, root=0)`` of structgrad.distributions
  (a fresh distribution per call, so no cached value is reused; the quantity's
  backward included, as in training);
- torch-struct's ``NonProjectiveDependencyCRF(A, multiroot=True)`` (arborescences:
  the same law, written with the root's arcs on the diagonal of an ``n - 1``
  square, see :func:`to_torch_struct`); it has no entropy and no undirected trees,
  and its ``log_prob`` raises in 0.5, so the score minus its partition stands in;
- a logdet + autograd loop: ``torch.logdet`` of the reduced Laplacian (the
  Matrix-Tree theorem) one graph at a time, marginals by ``torch.autograd.grad``
  and the entropy as ``log Z - <θ, μ>``, the way one writes it by hand.

Before timing, every peer's value is checked against ours (``max |Δ|`` column;
torch-struct adds 1e-5 to every potential, so it agrees only to about that).
Ratios are the peer's median time over ours (higher is faster for us). Last, the
count of non-finite log-partitions at growing score scales (torch-struct
exponentiates without a shift).

``--wide`` times instead the marginals (with their backward) at scores ~ N(0, 30²),
past the Laplacian's 15 nats, where ours default to the exact log-space
elimination: against ``max_range=15`` (the reference SST code's clip) and the
logdet loop, each with its largest deviation from the exact marginals.
"""

from __future__ import annotations

import argparse
import os
import platform
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

import structgrad.solvers as solvers
from structgrad.distributions import (
    Arborescence,
    SpanningTree,
    arborescence_marginals,
    spanning_tree_marginals,
)
from structgrad.testing.timing import fmt_seconds, median_time

try:  # torch-struct is the named peer; without it its column reads "n/a"
    import torch_struct
except ImportError:  # pragma: no cover - depends on the bench environment
    torch_struct = None

CASES = [(256, 10), (64, 30), (16, 60)]  # (B, n)
QUANTITIES = ("log_partition", "marginals", "log_prob", "entropy")


def with_grad(theta: Tensor, f: Callable[[Tensor], Tensor]) -> Callable[[], Tensor]:
    """A call computing ``f(θ)`` and, as training does, its backward to ``θ``."""

    def run() -> Tensor:
        x = theta.detach().requires_grad_(True)
        out = f(x)
        out.sum().backward()
        return out.detach()

    return run


# ---- the logdet + autograd loop (one graph at a time) -------------------------------------


def laplacian_logdet(theta: Tensor) -> Tensor:
    """``log Z`` of one graph by the Matrix-Tree theorem (root 0 removed)."""
    w = theta.exp() * (1 - torch.eye(theta.shape[-1], dtype=theta.dtype))
    # Column sums are each node's incoming weight: the arborescence Laplacian, and
    # the undirected one when θ is symmetric.
    lap = torch.diag(w.sum(0)) - w
    return torch.logdet(lap[1:, 1:])


def loop_quantity(theta: Tensor, name: str, directed: bool, x: Tensor) -> Tensor:
    """One quantity for a batch, graph by graph, with autograd for the marginals."""
    out = []
    for t, xi in zip(theta, x, strict=True):
        if name == "log_partition":
            out.append(laplacian_logdet(t))
            continue
        tt = t.detach().requires_grad_(True)
        log_z = laplacian_logdet(tt)
        (mu,) = torch.autograd.grad(log_z, tt, create_graph=t.requires_grad)
        if not directed:
            mu = mu + mu.T  # dlogZ/dθ_ij counts the edge once in each triangle
            mu = torch.triu(mu, 1)
        if name == "marginals":
            out.append(mu if directed else mu + mu.T)
        elif name == "log_prob":
            score = (t * xi).sum() if directed else torch.triu(t * xi, 1).sum()
            out.append(score - log_z)
        else:  # entropy = log Z - <θ, μ>
            inner = (t * mu).sum() if directed else (torch.triu(t, 1) * mu).sum()
            out.append(log_z - inner)
    return torch.stack(out)


# ---- torch-struct's layout for arborescences ----------------------------------------------


def to_torch_struct(theta: Tensor) -> Tensor:
    """Our root-0 arborescence scores ``[B, n, n]`` as torch-struct's ``[B, n-1, n-1]``.

    torch-struct writes the arcs among the ``n - 1`` other nodes off the diagonal
    (head, child) and the root's arc to node ``j`` at ``[j, j]``; with
    ``multiroot=True`` the root may have several children, which is our law.
    """
    inner = theta[:, 1:, 1:].clone()
    idx = torch.arange(theta.shape[-1] - 1)
    inner[:, idx, idx] = theta[:, 0, 1:]
    return inner


def ts_quantity(theta: Tensor, name: str, x: Tensor) -> Tensor:
    arcs = to_torch_struct(theta)
    with warnings.catch_warnings():  # its class defines no arg_constraints
        warnings.simplefilter("ignore", UserWarning)
        d = torch_struct.NonProjectiveDependencyCRF(arcs, multiroot=True)
    if name == "log_partition":
        return d.partition
    if name == "marginals":
        return d.marginals
    # Its log_prob fails in 0.5 (no ``struct`` attribute); the score minus the
    # partition is what it would compute.
    return (arcs * to_torch_struct(x)).sum((-1, -2)) - d.partition


# ---- ours ---------------------------------------------------------------------------------


def our_quantity(theta: Tensor, name: str, directed: bool, x: Tensor) -> Tensor:
    d = Arborescence(theta, root=0) if directed else SpanningTree(theta)
    if name == "log_prob":
        return d.log_prob(x)
    if name == "entropy":
        return d.entropy()
    return getattr(d, name)


def compare(theta: Tensor, directed: bool, repeats: int) -> list[str]:
    """Table rows for one (structure, B, n): ours, the peers, ratios and agreement."""
    d = Arborescence(theta, root=0) if directed else SpanningTree(theta)
    x = d.sample((1,), generator=torch.Generator().manual_seed(0))[0]
    b, n, _ = theta.shape
    kind = "arborescence" if directed else "spanning tree"
    rows = []
    for name in QUANTITIES:
        ours_fn = with_grad(theta, lambda t, q=name: our_quantity(t, q, directed, x))
        ref = ours_fn()
        ours = median_time(ours_fn, repeats=repeats)
        cells = []
        ts_ok = directed and torch_struct is not None and name != "entropy"
        peers: list[Callable[[Tensor], Tensor] | None] = [
            (lambda t, q=name: ts_quantity(t, q, x)) if ts_ok else None,
            lambda t, q=name: loop_quantity(t, q, directed, x),
        ]
        for peer_fn in peers:
            if peer_fn is None:
                cells.append("n/a")
                continue
            fn = with_grad(theta, peer_fn)
            value = fn()
            if name == "marginals" and directed and value.shape != ref.shape:
                value_ours = to_torch_struct(ref)  # compare in torch-struct's layout
            else:
                value_ours = ref
            err = (value - value_ours).abs().max().item()
            peer = median_time(fn, repeats=repeats)
            cells.append(f"{fmt_seconds(peer)} (**{peer / ours:.1f}x**, Δ {err:.0e})")
        lead = [kind, str(b), str(n), name, fmt_seconds(ours)]
        rows.append("| " + " | ".join(lead + cells) + " |")
    return rows


def wide(repeats: int) -> None:
    """The ``--wide`` table: exact marginals past the Laplacian's spread."""
    print("| structure | B | n | exact (default) | max_range=15 | logdet + autograd loop |")
    print("|---|---|---|---|---|---|")
    gen = torch.Generator().manual_seed(1)
    for directed in (False, True):
        for b, n in [(64, 10), (64, 30), (16, 60)]:
            theta = 30 * torch.randn(b, n, n, dtype=torch.float64, generator=gen)
            if not directed:
                theta = torch.triu(theta, 1) + torch.triu(theta, 1).transpose(-1, -2)
            ours = marginals_of(directed)
            exact = with_grad(theta, ours)
            ref = exact()
            base = median_time(exact, repeats=repeats)
            cells = []
            peers = [
                lambda t, f=ours: f(t, max_range=15.0),
                lambda t, d=directed: loop_quantity(t, "marginals", d, t),
            ]
            for peer_fn in peers:
                fn = with_grad(theta, peer_fn)
                try:
                    err = (fn() - ref).abs().max().item()
                except RuntimeError as error:  # the loop's Laplacian is numerically singular
                    cells.append(f"fails ({type(error).__name__})")
                    continue
                peer = median_time(fn, repeats=repeats)
                cells.append(f"{fmt_seconds(peer)} (**{peer / base:.2f}x**, Δ {err:.0e})")
            kind = "arborescence" if directed else "spanning tree"
            print("| " + " | ".join([kind, str(b), str(n), fmt_seconds(base), *cells]) + " |")


def marginals_of(directed: bool) -> Callable[..., Tensor]:
    """The library's marginal function for the structure (root 0 for arborescences)."""
    return arborescence_marginals if directed else spanning_tree_marginals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement")
    parser.add_argument("--wide", action="store_true", help="time the wide-spread marginals")
    args, _ = parser.parse_known_args(argv)  # nox passes the same arguments to every script
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    ts_version = getattr(torch_struct, "__version__", "installed") if torch_struct else "absent"
    print(
        f"structgrad-solvers {solvers.__version__}, torch {torch.__version__}, torch-struct "
        f"{ts_version}, python {platform.python_version()}, OMP_NUM_THREADS={threads}\n"
        f"float64 scores ~ N(0, {30 if args.wide else 1}²); each time includes the backward "
        "to the scores\n"
    )
    if args.wide:
        wide(args.repeats)
        return 0
    print("| structure | B | n | quantity | ours | torch-struct | logdet + autograd loop |")
    print("|---|---|---|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    for directed in (False, True):
        for b, n in CASES:
            theta = torch.randn(b, n, n, dtype=torch.float64, generator=gen)
            if not directed:
                theta = torch.triu(theta, 1) + torch.triu(theta, 1).transpose(-1, -2)
            for row in compare(theta, directed, args.repeats):
                print(row)
    if torch_struct is not None:
        print("\nnon-finite log-partitions of 256 arborescences, n = 10, scores ~ N(0, s²):")
        for s in (1.0, 30.0, 100.0, 1000.0):
            theta = s * torch.randn(256, 10, 10, dtype=torch.float64, generator=gen)
            ours = Arborescence(theta).log_partition
            peer = ts_quantity(theta, "log_partition", theta)
            bad = lambda v: int((~torch.isfinite(v)).sum())  # noqa: E731
            print(f"- s = {s:g}: ours {bad(ours)}, torch-struct {bad(peer)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
