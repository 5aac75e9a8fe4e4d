"""The test problems: one tiny instance, one objective and the reference gradients per structure.

Each structure gets logits ``θ ~ N(0, 1)`` (symmetrised for spanning trees) and a
fixed non-linear objective, a random linear-plus-quadratic function of the
flattened structure ``v = vec(x)``::

    f(x) = a·v + (b·v)²,    a, b ~ N(0, I)

drawn from a ``torch.Generator`` seeded with ``seed`` (the same seed gives the
same θ, a and b; every structure has its own stream).

Reference gradients of ``E[f(X)]``, one per law:

- ``rg``: the recursive Gumbel-max law, exact, by enumerating every trace with
  :func:`structgrad.testing.traces.exact_gradient`. For categorical, k-subset and
  spanning tree (and binary tree) it is also the perturb-and-MAP law of
  ``θ + G``, since those MAPs depend only on the order of the utilities.
- ``pam``: perturb-and-MAP, ``X = MAP(θ + G)``, for arborescence (maximum
  arborescence of ``θ + G``, not the minimum arborescence of the exponentials)
  and matching (linear assignment of ``θ + G``, not the greedy crossing). No
  closed form: Monte Carlo with many samples of the Gumbel score identity
  ``∇ E[f(X)] = E[(f(X) − c)(1 − exp(−(U − θ)))]``, ``U = θ + G`` (the score of
  the Gumbel density of each utility; ``c`` a constant baseline), restricted to
  the entries the solver reads. Its standard error is returned with it.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from typing import Any

import torch
from structgrad_app_common.batches import torch_seed
from torch import Tensor

from structgrad.models import map_sample
from structgrad.relaxations import sample_gumbel
from structgrad.testing import traces

__all__ = [
    "SIZES",
    "STRUCTURES",
    "Problem",
    "Reference",
    "describe",
    "make_problem",
    "pam_reference",
    "reference",
    "rg_reference",
]

#: Structure → (n, structure options) of the instance (small enough to enumerate traces).
SIZES: dict[str, tuple[int, dict[str, int]]] = {
    "categorical": (5, {}),
    "k_subset": (5, {"k": 2}),
    "spanning_tree": (4, {}),
    "arborescence": (4, {"root": 0}),
    "matching": (4, {}),
    "binary_tree": (5, {}),
}
STRUCTURES = tuple(SIZES)

#: Structures whose perturb-and-MAP law differs from the recursive Gumbel-max law.
PAM_DIFFERS = ("arborescence", "matching")


@dataclass(frozen=True)
class Problem:
    """One instance: logits θ ``[*event]`` (float64) and the objective's weights.

    Attributes:
        structure: the structure name.
        n: the size.
        options: ``k`` or ``root`` when the structure has one.
        logits: θ, ``[n]`` or ``[n, n]``.
        a: ``[d]`` linear weights, ``d`` the number of entries of a structure.
        b: ``[d]`` quadratic direction.
    """

    structure: str
    n: int
    options: dict[str, Any] = field(default_factory=dict)
    logits: Tensor = field(default_factory=lambda: torch.zeros(0))
    a: Tensor = field(default_factory=lambda: torch.zeros(0))
    b: Tensor = field(default_factory=lambda: torch.zeros(0))

    @property
    def structure_ndim(self) -> int:
        """Dims of one structure: 1 for categorical / k-subset, 2 otherwise (trees as adjacency)."""
        return 1 if self.structure in ("categorical", "k_subset") else 2

    def f(self, x: Tensor) -> Tensor:
        """``f(x) = a·v + (b·v)²`` with ``v = vec(x)``: ``[*batch, *structure]`` → ``[*batch]``."""
        v = x.flatten(start_dim=x.ndim - self.structure_ndim).to(self.a.dtype)
        return v @ self.a + (v @ self.b).square()

    def to(self, device: torch.device | str) -> Problem:
        """This instance with θ and the objective's weights on ``device``."""
        move = {k: getattr(self, k).to(device) for k in ("logits", "a", "b")}
        return dataclasses.replace(self, **move)

    def read_mask(self) -> Tensor:
        """Bool ``[*event]``: the logits the MAP solver and the traces read."""
        n, shape = self.n, tuple(self.logits.shape)
        mask = torch.ones(shape, dtype=torch.bool)
        if self.structure == "spanning_tree":
            mask = torch.ones(n, n).triu(1).bool()
        elif self.structure == "arborescence":
            mask = ~torch.eye(n, dtype=torch.bool)
            mask[:, self.options["root"]] = False
        return mask


def _stream(seed: int, name: str) -> torch.Generator:
    # crc32, not hash(): stable across processes and Python versions.
    return torch.Generator().manual_seed(torch_seed(seed * 1_000_003 + zlib.crc32(name.encode())))


def make_problem(structure: str, seed: int = 0) -> Problem:
    """The instance of ``structure`` for ``seed`` (see the module docstring).

    Raises:
        ValueError: for an unknown structure.
    """
    if structure not in SIZES:
        raise ValueError(f"unknown structure {structure!r}; choose from {', '.join(STRUCTURES)}")
    n, options = SIZES[structure]
    gen = _stream(seed, structure)
    shape = (n,) if structure in ("categorical", "k_subset", "binary_tree") else (n, n)
    theta = torch.randn(shape, generator=gen, dtype=torch.float64)
    if structure == "spanning_tree":
        theta = 0.5 * (theta + theta.T)
    d = n if structure in ("categorical", "k_subset") else n * n
    a = torch.randn(d, generator=gen, dtype=torch.float64)
    b = torch.randn(d, generator=gen, dtype=torch.float64) / d**0.5
    return Problem(structure, n, dict(options), theta, a, b)


@dataclass(frozen=True)
class Reference:
    """A reference gradient of ``E[f(X)]`` under one law.

    Attributes:
        law: ``"rg"`` or ``"pam"``.
        value: ``E[f(X)]``.
        grad: ``[*event]`` the gradient.
        stderr: ``[*event]`` its Monte Carlo standard error (zeros when exact).
        samples: Monte Carlo samples (0 when exact).
    """

    law: str
    value: float
    grad: Tensor
    stderr: Tensor
    samples: int = 0


def rg_reference(problem: Problem) -> Reference:
    """Exact gradient under the recursive Gumbel-max law, by trace enumeration."""
    value, grad = traces.exact_gradient(
        problem.structure, problem.logits, problem.f, **problem.options
    )
    return Reference("rg", float(value), grad, torch.zeros_like(grad))


def pam_reference(
    problem: Problem, samples: int, *, generator: torch.Generator, chunk: int = 200_000
) -> Reference:
    """Monte Carlo gradient under the perturb-and-MAP law (see the module docstring).

    Args:
        problem: any problem but ``binary_tree`` (whose solution is not linear in θ);
            only ``arborescence`` and ``matching`` need it.
        samples: number of Gumbel perturbations (``>= 2``).
        generator: the noise generator.
        chunk: perturbations per solver call.

    Returns:
        The :class:`Reference`, with the standard error of each entry.
    """
    theta, mask = problem.logits, problem.read_mask()
    total, fsum, baseline = 0, 0.0, None
    s1: Tensor | float = 0.0  # sums of the estimates and of their squares: tensors once drawn
    s2: Tensor | float = 0.0
    while total < samples:
        m = min(chunk, samples - total)
        g = sample_gumbel((m, *theta.shape), dtype=theta.dtype, generator=generator)
        fx = problem.f(map_sample(problem.structure, theta + g, noise=False, **problem.options))
        if baseline is None:
            # The first chunk's mean, fixed from then on: only that chunk's own
            # estimates see a baseline that depends on them, a bias of -∇/total
            # (2.5e-7 relative at the defaults), far below the Monte Carlo error.
            baseline = float(fx.mean())
        # d/dθ log Gumbel(u; θ, 1) = 1 − exp(−(u − θ)), with u − θ = g.
        est = (fx - baseline)[:, None, None] * (1.0 - torch.exp(-g)) * mask  # [m, n, n]
        s1, s2, fsum = s1 + est.sum(0), s2 + est.square().sum(0), fsum + float(fx.sum())
        total += m
    mean = s1 / total
    assert isinstance(mean, Tensor) and isinstance(s2, Tensor)  # samples >= 1: the loop ran
    var = (s2 / total - mean.square()).clamp(min=0.0) * total / (total - 1)
    return Reference("pam", fsum / total, mean, (var / total).sqrt(), total)


def reference(problem: Problem, law: str, *, samples: int, seed: int) -> Reference:
    """The reference of ``law`` for ``problem`` (``pam`` = ``rg`` where the laws coincide)."""
    if law == "pam" and problem.structure in PAM_DIFFERS:
        return pam_reference(problem, samples, generator=_stream(seed, "pam/" + problem.structure))
    return rg_reference(problem)


def describe(problem: Problem) -> dict[str, Any]:
    """JSON-friendly description of a problem (for the JSONL log)."""
    return {"structure": problem.structure, "n": problem.n, **problem.options}
