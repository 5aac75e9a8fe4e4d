"""The wrapper-overhead part of ``bench_perturbation``: a layer against the bare solver calls.

Top-k of n = 45, B = 128, float32, one thread; the rows take turns in
interleaved rounds, timed in CPU time. ``bench_perturbation`` runs
:func:`overhead` and re-exports it (the README's command imports it from
there); this module has no command of its own.
"""

from __future__ import annotations

import itertools
import statistics
import time
import timeit
from typing import Any

import torch

import structgrad.estimators as E
import structgrad.solvers as solvers


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
