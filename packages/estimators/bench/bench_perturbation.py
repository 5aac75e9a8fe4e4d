"""Benchmark of the perturbation-based estimators (IMLE, AIMLE, ST, perturbed, blackbox).

1. The synthetic top-k problem of the IMLE paper: top-5 of 10, loss ‖z − b‖²,
   θ₀ ~ N(0, 1), b = |N(0, 1)|, SGD with momentum 0.9; the expected loss under
   the exponential family p(z) ∝ exp<z, θ> is computed exactly (252 subsets)
   and reported as the optimality gap after the last step (mean ± std).
2. The cosine-to-true-gradient curves of the AIMLE repository: top-10 of 20,
   true gradient of E_p[‖z − b‖²] for the exponential family (exact, by
   enumerating the 184756 subsets), over λ and over the number of samples.
3. The overhead of the wrapper over the bare solver calls, top-k of n = 45,
   B = 128 (one thread): :func:`overhead`, from ``perturbation_overhead``.

Prints the tables and saves ``perturbation.png`` next to this file (or ``--out``).
Run: ``python bench/bench_perturbation.py [--quick]``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch
from perturbation_overhead import overhead as overhead

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
