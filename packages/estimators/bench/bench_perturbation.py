"""Benchmark of the perturbation-based estimators (IMLE, AIMLE, ST, perturbed, blackbox).

1. The synthetic top-k problem of the IMLE paper: top-5 of 10, loss ‖z − b‖²,
   θ₀ ~ N(0, 1), b = |N(0, 1)|, SGD with momentum 0.9; the expected loss under
   the exponential family p(z) ∝ exp<z, θ> is computed exactly (252 subsets)
   and reported as the optimality gap after the last step (mean ± std).
2. The cosine-to-true-gradient curves of the AIMLE repository: top-10 of 20,
   true gradient of E_p[‖z − b‖²] for the exponential family (exact, by
   enumerating the 184756 subsets), over λ and over the number of samples.
3. The overhead of the wrapper over the bare solver calls, top-k of n = 45,
   B = 128 (one thread).

Prints the tables and saves ``perturbation.png`` next to this file (or ``--out``).
Run: ``python bench/bench_perturbation.py [--quick]``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
import timeit
from pathlib import Path
from typing import Any

import torch

import structgrad.estimators as E
import structgrad.solvers as solvers

F64 = torch.float64


def k_subsets(n: int, k: int) -> torch.Tensor:
    """All C(n, k) k-hot masks ``[C(n, k), n]`` (184756 for n = 20, k = 10)."""
    idx = torch.tensor(list(itertools.combinations(range(n), k)))
    return torch.zeros(idx.shape[0], n, dtype=F64).scatter_(1, idx, 1.0)


def exact_grad(theta: torch.Tensor, b: torch.Tensor, configs: torch.Tensor) -> torch.Tensor:
    """∇θ E_p[‖z − b‖²] for p(z) ∝ exp<z, θ>, by enumeration and autograd."""
    th = theta.detach().clone().requires_grad_(True)
    expected_loss(th, b, configs).sum().backward()
    assert th.grad is not None
    return th.grad


def expected_loss(theta: torch.Tensor, b: torch.Tensor, configs: torch.Tensor) -> torch.Tensor:
    p = torch.softmax(theta @ configs.T, -1)  # [R, N]
    # ‖z − b‖² = <z, 1 − 2b> + ‖b‖² for 0/1 z: no [R, N, n] intermediate
    losses = (1 - 2 * b) @ configs.T + (b**2).sum(-1, keepdim=True)  # [R, N]
    return (p * losses).sum(-1)


def methods_synthetic() -> dict[str, tuple[object, float]]:
    k = 5
    return {  # name: (layer, lr); I-MLE and STE settings are the paper's grid-searched ones
        "STE (Gumbel)": (E.straight_through("k_subset", k=k, noise="gumbel"), 0.019),
        "I-MLE (SoG, λ=2)": (
            E.imle("k_subset", k=k, noise="sog", target=E.Target(2.0, scale=False)),
            0.75,
        ),
        "I-MLE (Gumbel, λ=2)": (
            E.imle("k_subset", k=k, target=E.Target(2.0, scale=False)),
            0.75,
        ),
        "AIMLE central adaptive": (
            E.aimle(
                "k_subset",
                k=k,
                noise="sog",
                difference="central",
                target=E.AdaptiveTarget(beta=0.0, step=0.05, target_nnz=2.0),
            ),
            0.75,
        ),
        "Perturbed (Gumbel, S=10)": (E.perturbed("k_subset", k=k, noise="gumbel"), 0.75),
        "Blackbox (λ=2)": (E.blackbox("k_subset", k=k, lam=2.0), 0.75),
    }


def synthetic(reps: int, steps: int) -> dict[str, list[float]]:
    g = torch.Generator().manual_seed(0)
    n, k = 10, 5
    theta0 = torch.randn(reps, n, generator=g, dtype=F64)
    b = torch.randn(reps, n, generator=g, dtype=F64).abs()
    configs = torch.as_tensor(solvers.enumerate_k_subsets(n, k), dtype=F64)
    best = ((configs[None] - b[:, None]) ** 2).sum(-1).min(-1).values
    curves: dict[str, list[float]] = {}
    print(f"\nSynthetic top-{k} of {n}, loss ‖z − b‖², {reps} runs, {steps} SGD steps")
    print(f"{'method':28s} {'gap at start':>14s} {'final gap':>18s}")
    for name, (layer, lr) in methods_synthetic().items():
        theta = theta0.clone().requires_grad_(True)
        opt = torch.optim.SGD([theta], lr=lr, momentum=0.9)
        curve = []
        for _ in range(steps):
            with torch.no_grad():
                curve.append(float((expected_loss(theta, b, configs) - best).mean()))
            opt.zero_grad()
            z = layer(theta, generator=g)  # type: ignore[operator]
            ((z - b) ** 2).sum().backward()  # each run's own loss: runs stay independent
            opt.step()
        gap = (expected_loss(theta.detach(), b, configs) - best).numpy()
        curve.append(float(gap.mean()))
        curves[name] = curve
        print(f"{name:28s} {curve[0]:14.3f} {gap.mean():10.3f} ± {gap.std():5.3f}")
    return curves


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-30)


def estimate(
    layer: object, theta: torch.Tensor, b: torch.Tensor, g: torch.Generator
) -> torch.Tensor:
    t = theta.clone().requires_grad_(True)
    z = layer(t, generator=g)  # type: ignore[operator]
    ((z - b) ** 2).sum().backward()
    assert t.grad is not None
    return t.grad


def fidelity(seeds: int, lams: list[float], sample_counts: list[int]) -> dict[str, list[float]]:
    n, k = 20, 10
    g = torch.Generator().manual_seed(1)
    theta = torch.randn(seeds, n, generator=g, dtype=F64)
    b = torch.rand(seeds, n, generator=g, dtype=F64)
    true = exact_grad(theta, b, k_subsets(n, k))
    out: dict[str, list[float]] = {}
    print(f"\nCosine to the exact gradient, top-{k} of {n}, mean over {seeds} instances")
    s_fixed = 100
    for name, make in {
        "I-MLE forward": lambda lam: E.imle("k_subset", k=k, samples=s_fixed, target=E.Target(lam)),
        "AIMLE central": lambda lam: E.aimle(
            "k_subset", k=k, samples=s_fixed, difference="central", target=E.Target(lam)
        ),
    }.items():
        out[name] = [float(cosine(estimate(make(lam), theta, b, g), true).mean()) for lam in lams]
    for name, layer in {
        "STE (Gumbel)": E.straight_through("k_subset", k=k, noise="gumbel", samples=s_fixed),
        "AIMLE central adaptive": E.aimle(
            "k_subset", k=k, samples=s_fixed, difference="central", target=E.AdaptiveTarget(0.1)
        ),
    }.items():
        out[name] = [float(cosine(estimate(layer, theta, b, g), true).mean())] * len(lams)
    print(f"{'λ (S = 100)':24s}" + "".join(f"{lam:>8.3g}" for lam in lams))
    for name, vals in out.items():
        print(f"{name:24s}" + "".join(f"{v:8.3f}" for v in vals))
    print(f"{'samples (λ = 0.3)':24s}" + "".join(f"{s:>8d}" for s in sample_counts))
    for name, make_s in {
        "I-MLE forward": lambda s: E.imle("k_subset", k=k, samples=s, target=E.Target(0.3)),
        "AIMLE central": lambda s: E.aimle(
            "k_subset", k=k, samples=s, difference="central", target=E.Target(0.3)
        ),
    }.items():
        vals = [float(cosine(estimate(make_s(s), theta, b, g), true).mean()) for s in sample_counts]
        out[f"{name} vs S"] = vals
        print(f"{name:24s}" + "".join(f"{v:8.3f}" for v in vals))
    return out


def interleaved(fns: dict[str, object], rounds: int, number: int) -> dict[str, list[float]]:
    """Per-round CPU times (µs) of each function, the functions taking turns in every round.

    On a shared machine the speed drifts between rounds; alternating keeps every
    comparison within one round (each round's time is the best of 3 loops). The
    clock is the process CPU time: everything runs on one thread, and time spent
    descheduled by other jobs does not count.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            loops = timeit.repeat(f, number=number, repeat=3, timer=time.process_time)  # type: ignore[arg-type]
            best = min(loops)
            times[name].append(best / number * 1e6)
    return times


class _HandWritten(torch.autograd.Function):
    """The least a hand-written IMLE layer does: the 2 bare solver calls, one difference."""

    @staticmethod
    def forward(ctx: Any, theta: torch.Tensor) -> torch.Tensor:
        z = solvers.top_k(theta, 10)
        ctx.save_for_backward(theta, z)
        return z

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> torch.Tensor:
        theta, z = ctx.saved_tensors
        return z - solvers.top_k(theta - dy, 10)


class _Empty(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, theta: torch.Tensor) -> torch.Tensor:
        return theta.clone()

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> torch.Tensor:
        return dy


#: wrapper row: its reference row
OVERHEAD_REFS = {
    "IMLE forward, no noise": "bare solver call, top_k(θ)",
    "IMLE forward + backward, no noise": "2 bare solver calls",
    "IMLE forward + backward, Gumbel": "by hand: noise + 2 solver calls",
    "hand-written autograd.Function": "2 bare solver calls",
    "2 bare calls, empty Function between": "2 bare solver calls",
    "by hand, empty Function between": "by hand: noise + 2 solver calls",
}


def overhead_rows(n_inputs: int) -> dict[str, Any]:
    """The timed functions, each taking the next of ``n_inputs`` problems at every call.

    With one input every call solves the same scores; the solver's branches then
    replay, which favours a tight loop of bare calls. Several inputs in turn are
    closer to training, where the scores change at every step.
    """
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(128, 45, generator=g) for _ in range(n_inputs)]
    vs = [torch.randn(128, 45, generator=g) for _ in range(n_inputs)]
    xrs = [x.clone().requires_grad_(True) for x in xs]
    xvs = [x - v for x, v in zip(xs, vs, strict=True)]  # the backward's second solve
    gen = torch.Generator().manual_seed(0)
    noise = E.Gumbel()
    bare = E.imle("k_subset", k=10, noise=None)
    noisy = E.imle("k_subset", k=10)
    turn = itertools.cycle(range(n_inputs))

    def by_hand_noisy(between: Any = None) -> torch.Tensor:
        # the same arithmetic and solver calls as the layer, no wrapper
        i = next(turn)
        eps = noise.sample((128, 45), dtype=torch.float32, device=xs[i].device, generator=gen)
        xe = xs[i] + eps
        z = solvers.top_k(xe, 10)
        if between is not None:
            between(xrs[i]).backward(vs[i])
        return z - solvers.top_k(xe - vs[i], 10)

    def two_calls() -> tuple[torch.Tensor, torch.Tensor]:
        i = next(turn)
        return solvers.top_k(xs[i], 10), solvers.top_k(xvs[i], 10)

    def two_calls_around_autograd() -> tuple[torch.Tensor, torch.Tensor]:
        i = next(turn)
        z = solvers.top_k(xs[i], 10)
        _Empty.apply(xrs[i]).backward(vs[i])
        return z, solvers.top_k(xvs[i], 10)

    def step(layer: Any, **kw: Any) -> Any:
        def run() -> None:
            i = next(turn)
            layer(xrs[i], **kw).backward(vs[i])

        return run

    return {
        "bare solver call, top_k(θ)": lambda: solvers.top_k(xs[next(turn)], 10),
        "IMLE forward, no noise": lambda: bare(xrs[next(turn)]),
        "2 bare solver calls": two_calls,
        "IMLE forward + backward, no noise": step(bare),
        "by hand: noise + 2 solver calls": by_hand_noisy,
        "IMLE forward + backward, Gumbel": step(noisy, generator=gen),
        "empty autograd.Function": step(_Empty.apply),
        "hand-written autograd.Function": step(_HandWritten.apply),
        "2 bare calls, empty Function between": two_calls_around_autograd,
        "by hand, empty Function between": lambda: by_hand_noisy(_Empty.apply),
    }


def overhead(rounds: int = 15, number: int = 128) -> dict[str, dict[str, tuple[float, str]]]:
    """The wrapper against the bare solver calls and the same arithmetic by hand.

    Each wrapper row is compared with its reference measured in the same round;
    the table gives the medians over rounds of the times and of the ratios, for
    one input and for 64 inputs in turn. The last four rows bound what any
    autograd layer pays: an empty ``autograd.Function`` (forward + backward), a
    minimal hand-written one making the same two bare solver calls, and the two
    references with an empty ``Function``'s forward + backward run between their
    two solver calls (where a layer's forward ends and its backward begins).
    """
    torch.set_num_threads(1)
    table: dict[str, dict[str, tuple[float, str]]] = {}
    for label, n_inputs in (("same input", 1), ("64 inputs", 64)):
        times = interleaved(overhead_rows(n_inputs), rounds, number)
        for name, ts in times.items():
            extra = ""
            if name in OVERHEAD_REFS:
                ratios = [t / r for t, r in zip(ts, times[OVERHEAD_REFS[name]], strict=True)]
                extra = f"{100 * (statistics.median(ratios) - 1):+.0f}%"
            table.setdefault(name, {})[label] = (statistics.median(ts), extra)
    print(
        "\nWrapper overhead, top-10 of n = 45, B = 128, float32, one thread "
        f"(CPU µs, medians over {rounds} interleaved rounds)"
    )
    print(f"{'':36s} {'same input':>18s} {'64 inputs in turn':>20s}")
    for name, cols in table.items():
        cells = "".join(
            f"{cols[c][0]:10.1f} {cols[c][1]:>7s}  " for c in ("same input", "64 inputs")
        )
        print(f"{name:36s} {cells}")
    return table


def plot(curves: dict[str, list[float]], fid: dict[str, list[float]], lams: list[float],
         sample_counts: list[int], out: Path) -> None:  # fmt: skip
    try:
        import matplotlib
    except ImportError:
        print("\nmatplotlib is not installed (pip install 'structgrad-estimators[bench]'): no plot")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, curve in curves.items():
        axes[0].plot(curve, label=name)
    axes[0].set(xlabel="step", ylabel="optimality gap", yscale="log", title="top-5 of 10")
    for name, vals in fid.items():
        if not name.endswith("vs S"):
            axes[1].plot(lams, vals, label=name, marker="o" if "adaptive" not in name else None)
        else:
            axes[2].plot(sample_counts, vals, label=name[: -len(" vs S")], marker="o")
    axes[1].set(
        xlabel="λ", ylabel="cosine to true gradient", xscale="log", title="n=20, k=10, S=100"
    )
    axes[2].set(xlabel="samples", ylabel="cosine to true gradient", xscale="log", title="λ = 0.3")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"\nsaved {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, seeds and points")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("perturbation.png"))
    args = parser.parse_args()
    reps, seeds = (10, 8) if args.quick else (100, 64)
    lams = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0] if not args.quick else [0.1, 1.0, 10.0]
    sample_counts = [1, 3, 10, 30, 100, 300] if not args.quick else [1, 10, 100]
    curves = synthetic(reps, 50)
    fid = fidelity(seeds, lams, sample_counts)
    overhead()
    plot(curves, fid, lams, sample_counts, args.out)


if __name__ == "__main__":
    main()
