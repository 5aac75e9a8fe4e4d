"""Adversarial tests of the recursive Gumbel-max traces (Struminsky et al. 2021).

Every structure of ``RECURSIVE_STRUCTURES`` is checked for: the empirical law of
its traces against ``exp(trace_log_prob)``; ``E | T`` draws that reproduce the
trace and, averaged over traces, follow the unconditional law; gradients;
padding, masking, extreme logits, batch shapes, dtypes and input validation.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
import scipy.stats
import torch

import structgrad.estimators as E
import structgrad.solvers as solvers
from structgrad.distributions import structure
from structgrad.distributions.checks import set_validation
from structgrad.estimators.recursive import _prepare as R

# name -> (event shape, options) at the tiny sizes of the law tests.
CASES: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {
    "categorical": ((5,), {}),
    "k_subset": ((5,), {"k": 3}),
    "spanning_tree": ((4, 4), {}),
    "arborescence": ((4, 4), {"root": 1}),
    "matching": ((3, 3), {}),
    "binary_tree": ((5,), {}),
}
N_DRAWS = 20_000


def test_registry_lists_every_structure() -> None:
    assert set(E.RECURSIVE_STRUCTURES) == set(CASES)


def _theta(name: str, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    event, _ = CASES[name]
    return torch.randn(event, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def _keys(name: str, trace: Any, logits: torch.Tensor, **options: Any) -> torch.Tensor:
    """One int64 row per trace that identifies it: (chosen steps, candidate sets)."""
    _, chosen, candidates = R._flat_steps(name, trace, logits, options)
    return torch.cat([chosen, candidates.flatten(-2).long()], -1)


@functools.cache
def _draws(name: str) -> tuple[torch.Tensor, Any, torch.Tensor]:
    """N_DRAWS samples at one fixed θ, in a single batched call: (θ batch, trace, U)."""
    _, options = CASES[name]
    theta = _theta(name).expand(N_DRAWS, *CASES[name][0])
    out = E.sample_with_trace(name, theta, generator=torch.Generator().manual_seed(1), **options)
    return theta, out.trace, out.utilities


def _tv(
    name: str, trace: Any, theta: torch.Tensor, **options: Any
) -> tuple[float, float, int, float]:
    """TV between trace frequencies and exp(log p): (tv, bound, #traces, observed mass)."""
    draws = theta.shape[0]
    keys = _keys(name, trace, theta, **options)
    log_p = E.trace_log_prob(name, trace, theta, **options)
    uniq, inverse, counts = torch.unique(keys, dim=0, return_inverse=True, return_counts=True)
    # log p is a function of the trace: equal within each group of identical keys.
    first = torch.zeros(len(uniq), dtype=torch.long).scatter_(0, inverse, torch.arange(draws))
    assert torch.allclose(log_p, log_p[first][inverse], atol=1e-12)
    p = log_p[first].exp()
    freq = counts.double() / draws
    mass = float(p.sum())
    tv = 0.5 * (float((freq - p).abs().sum()) + max(0.0, 1.0 - mass))
    # E|f_k - p_k| ≈ sqrt(2 p_k (1 - p_k) / (π N)) for a multinomial; TV concentrates
    # around half their sum (its sd is far smaller), so twice that plus 0.005 is a
    # bound a correct law essentially never exceeds (≈0.02-0.04 at these sizes).
    expected = 0.5 * float((2 * p * (1 - p) / (math.pi * draws)).sqrt().sum())
    return tv, 2 * expected + 0.005, len(uniq), mass


@pytest.mark.parametrize("name", list(CASES))
def test_trace_frequencies_match_log_prob(name: str) -> None:
    _, options = CASES[name]
    theta, trace, _ = _draws(name)
    tv, bound, count, mass = _tv(name, trace, theta, **options)
    print(f"{name}: {count} traces, TV {tv:.4f} (bound {bound:.4f}), mass {mass:.4f}")
    assert tv < bound
    assert mass >= 0.99 and mass <= 1.0 + 1e-9


def test_perturb_and_map_arborescence_is_a_different_law() -> None:
    # The same test rejects the max arborescence of θ + G (CLE run on U, not on −E).
    theta, _, u = _draws("arborescence")
    _, trace = solvers.max_arborescence(u, root=1, return_trace=True)
    tv, bound, _, _ = _tv("arborescence", trace, theta, root=1)
    assert tv > 3 * bound  # 0.21 against a bound of 0.042


def _used(name: str, logits: torch.Tensor, **options: Any) -> torch.Tensor:
    s, logits, event, opts = R._prepare(name, logits, options)
    used = torch.ones(event, dtype=torch.bool)
    read = s.trace_used(event, logits.device, **opts)
    if read is not None:
        used = read & used
    return used.expand(logits.shape)


@pytest.mark.parametrize("name", list(CASES))
def test_conditional_reproduces_trace_and_unconditional_law(name: str) -> None:
    _, options = CASES[name]
    theta, trace, u = _draws(name)
    half = N_DRAWS // 2
    keys = _keys(name, trace, theta, **options)
    # Conditional draws given the traces of the second half.
    trace_b = type(trace)(*(t[half:] for t in trace))
    cond = E.conditional_utilities(
        name, trace_b, theta[half:], generator=torch.Generator().manual_seed(2), **options
    )
    assert cond.dtype == torch.float64 and torch.isfinite(cond).all()
    # Re-running the algorithm on them gives back the trace, every time (float64).
    _, again = structure(name).trace_sample(cond, **R._prepare(name, theta[half:], options)[3])
    same = (_keys(name, again, theta[half:], **options) == keys[half:]).all(-1)
    assert same.all(), f"{int((~same).sum())} of {half} traces not reproduced"
    # Averaged over traces, E | T is the unconditional law: compare with the
    # independent unconditional draws of the first half, entry by entry.
    used = _used(name, theta[0], **options)
    a = u[:half][:, used]  # [half, n_used]
    b = cond[:, used]
    se = (a.var(0) / half + b.var(0) / half).sqrt()
    z = (a.mean(0) - b.mean(0)).abs() / se
    assert (z < 4).all(), z
    for j in range(min(3, a.shape[1])):
        p = scipy.stats.ks_2samp(a[:, j].numpy(), b[:, j].numpy()).pvalue
        assert p > 1e-3, (j, p)


@pytest.mark.parametrize("name", list(CASES))
def test_float32_reproduction_rate(name: str) -> None:
    _, options = CASES[name]
    theta = _theta(name, torch.float32).expand(4000, *CASES[name][0])
    gen = torch.Generator().manual_seed(3)
    out = E.sample_with_trace(name, theta, generator=gen, **options)
    cond = E.conditional_utilities(name, out.trace, theta, generator=gen, **options)
    assert cond.dtype == torch.float32
    _, again = structure(name).trace_sample(cond, **R._prepare(name, theta, options)[3])
    same = (_keys(name, again, theta, **options) == _keys(name, out.trace, theta, **options)).all(
        -1
    )
    rate = float(same.double().mean())
    print(f"{name}: float32 reproduction rate {rate:.4f}")
    assert rate >= 0.995


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck_log_prob_and_conditional(name: str) -> None:
    event, options = CASES[name]
    theta = torch.randn(
        (2, *event), dtype=torch.float64, generator=torch.Generator().manual_seed(4)
    )
    out = E.sample_with_trace(name, theta, generator=torch.Generator().manual_seed(5), **options)
    theta.requires_grad_(True)

    def log_prob(t: torch.Tensor) -> torch.Tensor:
        return E.trace_log_prob(name, out.trace, t, **options)

    def conditional(t: torch.Tensor) -> torch.Tensor:
        gen = torch.Generator().manual_seed(6)
        return E.conditional_utilities(name, out.trace, t, generator=gen, **options)

    assert torch.autograd.gradcheck(log_prob, (theta,))
    assert torch.autograd.gradcheck(conditional, (theta,))


PADDED = {"spanning_tree": {}, "arborescence": {"root": 1}, "binary_tree": {}}


@pytest.mark.parametrize("name", list(PADDED))
def test_padded_instance_equals_the_smaller_instance(name: str) -> None:
    options = PADDED[name]
    n, ndim = 6, CASES[name][0].__len__()
    lengths = torch.tensor([6, 4, 2, 3, 5, 2])
    gen = torch.Generator().manual_seed(7)
    theta = torch.randn((6,) + (n,) * ndim, dtype=torch.float64, generator=gen)
    # Padding holds garbage, including -inf and huge values: it must not matter.
    pad_mask = torch.arange(n) >= lengths.view(-1, *([1] * ndim))
    if ndim == 2:
        pad_mask = pad_mask | pad_mask.transpose(-1, -2)
    garbage = torch.where(torch.rand(theta.shape, generator=gen) < 0.5, -torch.inf, 1e6)
    theta = torch.where(pad_mask, garbage, theta).requires_grad_(True)
    out = E.sample_with_trace(name, theta, generator=gen, lengths=lengths, **options)
    log_p = E.trace_log_prob(name, out.trace, theta, lengths=lengths, **options)
    assert torch.isfinite(log_p).all()
    # The trace knows its lengths: the option is not needed to score it.
    assert torch.equal(log_p, E.trace_log_prob(name, out.trace, theta, **options))
    log_p.sum().backward()
    assert torch.isfinite(theta.grad).all() and (theta.grad[pad_mask] == 0).all()
    cond = E.conditional_utilities(
        name, out.trace, theta, generator=gen, lengths=lengths, **options
    )
    assert torch.isfinite(cond[~pad_mask]).all()
    for b, size in enumerate(lengths.tolist()):
        idx = (slice(0, size),) * ndim
        small_u = out.utilities[b][idx]
        small_theta = theta.detach()[b][idx]
        sample, trace = structure(name).trace_sample(small_u, **options)
        expect = E.trace_log_prob(name, trace, small_theta, **options)
        assert torch.allclose(log_p[b], expect, atol=1e-12)
        sample_idx = (slice(0, size),) * 2  # every sample here is an [n, n] adjacency
        assert torch.equal(out.sample[b][sample_idx], sample)
        assert out.sample[b].sum() == sample.sum()
        # The conditional draw of the padded instance reproduces the small trace.
        again = structure(name).trace_sample(cond[b][idx].detach(), **options)[1]
        assert torch.equal(
            _keys(name, again, small_theta, **options), _keys(name, trace, small_theta, **options)
        )


def _masked_theta(name: str) -> torch.Tensor:
    """θ with -inf entries that still leave a valid structure avoiding them."""
    theta = _theta(name, seed=8).clone()
    if name in ("categorical", "k_subset", "binary_tree"):
        theta[[1, 3]] = -torch.inf
    elif name == "spanning_tree":
        theta[0, 1] = theta[2, 3] = theta[0, 2] = -torch.inf  # 0-3, 1-2, 1-3 remain
    elif name == "arborescence":
        theta[1, 0] = theta[2, 3] = theta[0, 2] = -torch.inf
    elif name == "matching":
        theta.fill_diagonal_(-torch.inf)  # derangements remain
    return theta


@pytest.mark.parametrize("name", list(CASES))
def test_masked_entries(name: str) -> None:
    _, options = CASES[name]
    theta = _masked_theta(name).expand(2000, *CASES[name][0]).clone().requires_grad_(True)
    masked = theta.detach() == -torch.inf
    gen = torch.Generator().manual_seed(9)
    if name == "matching":  # its sampler may take a -inf pair: refused while checking values
        with pytest.raises(ValueError, match="-inf entries are not supported for matching"):
            E.sample_with_trace(name, theta, generator=gen)
        set_validation(False)  # the law of such traces, as crossing_matching produces them
    try:
        out = E.sample_with_trace(name, theta, generator=gen, **options)
    finally:
        set_validation(True)
    log_p = E.trace_log_prob(name, out.trace, theta, **options)
    assert torch.isfinite(log_p).all()
    cond = E.conditional_utilities(
        name, out.trace, theta, generator=torch.Generator().manual_seed(10), **options
    )
    assert torch.equal(cond == -torch.inf, masked) and torch.isfinite(cond[~masked]).all()
    score = E.utility_log_prob(name, out.utilities, theta, **options)
    assert torch.isfinite(score).all()
    (log_p.sum() + cond[~masked].sum() + score.sum()).backward()
    assert torch.isfinite(theta.grad).all() and (theta.grad[masked] == 0).all()
    # Raw steps (before forced steps are marked padded): a masked entry is chosen
    # only at a step whose candidates are all masked, where the solver's
    # tie-breaking decides deterministically (log 1 = 0).
    spec, _, event, opts = R._prepare(name, theta, options)
    raw, candidates = spec.trace_steps(out.trace, event, device=theta.device, **opts)
    flat_masked = masked.flatten(1)
    picked = flat_masked.gather(1, raw.clamp(min=0)) & (raw >= 0)  # [B, S]
    forced = (raw >= 0) & ~(candidates & ~flat_masked.unsqueeze(1)).any(-1)  # [B, S]
    assert not (picked & ~forced).any()
    if name == "matching":
        # The greedy crossing matching cannot look ahead: with the diagonal masked
        # it is forced onto it when the last free pair is diagonal.
        assert 0 < int(forced.any(-1).sum()) < 2000
    elif name != "binary_tree":  # every binary-tree element is a node
        assert not forced.any()
        sample = out.sample if name != "spanning_tree" else out.sample.triu(1)
        assert (sample[masked] == 0).all()


@pytest.mark.parametrize("name", list(CASES))
def test_extreme_logits_stay_finite(name: str) -> None:
    event, options = CASES[name]
    gen = torch.Generator().manual_seed(11)
    theta = 1e4 * torch.randn((500, *event), dtype=torch.float64, generator=gen).sign()
    theta.requires_grad_(True)
    out = E.sample_with_trace(name, theta, generator=gen, **options)
    log_p = E.trace_log_prob(name, out.trace, theta, **options)
    cond = E.conditional_utilities(name, out.trace, theta, generator=gen, **options)
    score = E.utility_log_prob(name, out.utilities, theta, **options)
    assert torch.isfinite(log_p).all() and (log_p <= 1e-9).all()
    assert torch.isfinite(cond).all() and torch.isfinite(score).all()
    (log_p.sum() + cond.sum() + score.sum()).backward()
    assert torch.isfinite(theta.grad).all()


def test_extreme_arborescence_law_is_exact() -> None:
    # θ = ±1e4: the weights of one instance span e^20000, beyond float64, so every
    # instance is redone by the log-space twin of CLE. Column 2 has only -1e4
    # in-edges: its step must still be uniform over them (not decided by index).
    pattern = torch.tensor(
        [[1, -1, -1, 1], [-1, 1, -1, 1], [1, -1, 1, -1], [-1, 1, -1, -1]], dtype=torch.float64
    )
    theta = (1e4 * pattern).expand(2000, 4, 4)
    out = E.sample_with_trace("arborescence", theta, generator=torch.Generator().manual_seed(12))
    indeg = out.sample.sum(-2)
    assert (indeg[:, 0] == 0).all() and (indeg[:, 1:] == 1).all()
    tv, bound, count, mass = _tv("arborescence", out.trace, theta)
    print(f"arborescence ±1e4: {count} traces, TV {tv:.4f} (bound {bound:.4f}), mass {mass:.4f}")
    assert tv < bound and mass > 0.999
    cond = E.conditional_utilities(
        "arborescence", out.trace, theta, generator=torch.Generator().manual_seed(13)
    )
    _, again = structure("arborescence").trace_sample(cond)
    assert torch.equal(_keys("arborescence", again, theta), _keys("arborescence", out.trace, theta))


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batch_shapes_and_dtypes(name: str, dtype: torch.dtype) -> None:
    event, options = CASES[name]
    gen = torch.Generator().manual_seed(13)
    theta = torch.randn((2, 3, *event), dtype=dtype, generator=gen)
    out = E.sample_with_trace(name, theta, generator=gen, **options)
    assert out.sample.dtype == dtype and out.utilities.dtype == dtype
    assert out.sample.shape[:2] == (2, 3) and out.utilities.shape == theta.shape
    log_p = E.trace_log_prob(name, out.trace, theta, **options)
    cond = E.conditional_utilities(name, out.trace, theta, generator=gen, **options)
    score = E.utility_log_prob(name, out.utilities, theta, **options)
    assert log_p.shape == (2, 3) and log_p.dtype == dtype
    assert cond.shape == theta.shape and cond.dtype == dtype
    assert score.shape == (2, 3) and score.dtype == dtype
    # The same as the flattened batch.
    flat_trace = type(out.trace)(*(t.reshape(6, *t.shape[2:]) for t in out.trace))
    flat = E.trace_log_prob(name, flat_trace, theta.reshape(6, *event), **options)
    assert torch.equal(flat, log_p.reshape(6))


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_single_instance_without_batch_dims(name: str, scale: float) -> None:
    event, options = CASES[name]
    gen = torch.Generator().manual_seed(15)
    theta = scale * torch.randn(event, dtype=torch.float64, generator=gen)
    out = E.sample_with_trace(name, theta, generator=gen, **options)
    log_p = E.trace_log_prob(name, out.trace, theta, **options)
    cond = E.conditional_utilities(name, out.trace, theta, **options)
    assert log_p.shape == () and torch.isfinite(log_p)
    assert cond.shape == theta.shape and out.utilities.shape == theta.shape
    batched = E.trace_log_prob(
        name, type(out.trace)(*(t.unsqueeze(0) for t in out.trace)), theta[None], **options
    )
    assert torch.equal(batched, log_p[None])


@pytest.mark.parametrize("name", ["spanning_tree", "arborescence", "binary_tree"])
def test_utility_log_prob_ignores_unread_entries(name: str) -> None:
    event, options = CASES[name]
    gen = torch.Generator().manual_seed(16)
    theta = torch.randn((3, *event), dtype=torch.float64, generator=gen).requires_grad_(True)
    lengths = torch.tensor([event[0], 3, 2])
    out = E.sample_with_trace(name, theta, generator=gen, lengths=lengths, **options)
    score = E.utility_log_prob(name, out.utilities, theta, lengths=lengths, **options)
    score.sum().backward()
    used = structure(name).trace_used(
        event, theta.device, **R._prepare(name, theta, {**options, "lengths": lengths})[3]
    )
    assert used is not None
    used = used.expand(theta.shape)
    assert (theta.grad[~used] == 0).all() and (theta.grad[used] != 0).all()
    if name == "spanning_tree":
        assert not used[..., 1, 0].any() and not used[..., 0, 0].any()
    if name == "arborescence":
        assert not used[..., :, 1].any()  # into the root


BAD: list[tuple[str, tuple[int, ...], dict[str, Any], str]] = [
    ("spanning_tree", (4,), {}, r"must have shape \[\.\.\., n, n\], got rank 1"),
    ("spanning_tree", (3, 4), {}, "square"),
    ("spanning_tree", (1, 1), {}, "n >= 2"),
    ("spanning_tree", (2, 4, 4), {"lengths": [4, 0]}, r"lengths must lie in \[1, 4\]"),
    ("spanning_tree", (2, 4, 4), {"lengths": [4, 5]}, "lengths must lie"),
    ("spanning_tree", (2, 4, 4), {"lengths": [4, 3, 3]}, "do not match batch"),
    ("spanning_tree", (2, 4, 4), {"lengths": [4.5, 3]}, "integers"),
    ("spanning_tree", (4, 4), {"root": 0}, r"unknown options \['root'\]; accepted: lengths"),
    ("arborescence", (4, 4), {"root": 4}, r"root must lie in \[0, 3\]"),
    ("arborescence", (4, 4), {"root": -1}, "root must lie"),
    ("arborescence", (4, 4), {"root": 1.0}, "root must be an integer"),
    # Every graph holds its root: lengths start at root + 1.
    (
        "arborescence",
        (2, 4, 4),
        {"root": 2, "lengths": [4, 2]},
        r"lengths must lie in \[3, 4\] \(every graph holds the root 2\)",
    ),
    ("arborescence", (4, 5), {}, "square"),
    ("arborescence", (4, 4), {"k": 2}, r"unknown options \['k'\]"),
    ("matching", (3, 4), {}, "square"),
    ("matching", (3,), {}, "must have shape"),
    ("matching", (3, 3), {"lengths": 3}, "unknown options"),
    ("binary_tree", (2, 5), {"lengths": [0, 5]}, "lengths must lie"),
    ("binary_tree", (2, 5), {"lengths": torch.ones(3, dtype=torch.long)}, "do not match batch"),
    ("k_subset", (5,), {}, r"missing required options \['k'\]"),
    ("k_subset", (5,), {"k": 6}, "k must lie"),
    ("categorical", (5,), {"k": 1}, "unknown options"),
    ("grid_path", (3, 3), {}, "no recursive Gumbel-max sampler"),
    ("trees", (5,), {}, "no recursive Gumbel-max sampler"),
]


@pytest.mark.parametrize(("name", "shape", "options", "match"), BAD)
def test_bad_inputs_raise(
    name: str, shape: tuple[int, ...], options: dict[str, Any], match: str
) -> None:
    theta = torch.zeros(shape)
    with pytest.raises(ValueError, match=match):
        E.sample_with_trace(name, theta, **options)


@pytest.mark.parametrize("name", list(CASES))
def test_nan_logits_and_mismatched_trace_raise(name: str) -> None:
    event, options = CASES[name]
    theta = torch.zeros((2, *event))
    out = E.sample_with_trace(name, theta, **options)
    bad = theta.clone()
    bad.view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        E.trace_log_prob(name, out.trace, bad, **options)
    with pytest.raises(ValueError, match="batch shape"):
        E.trace_log_prob(name, out.trace, torch.zeros((3, *event)), **options)
    with pytest.raises(TypeError, match=r"expects a torch\.Tensor"):
        E.sample_with_trace(name, np.zeros(event), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("structure", ["spanning_tree", "arborescence", "binary_tree"])
def test_one_vertex_graphs_in_a_padded_batch(structure):
    """lengths = 1 (as the solvers accept): an empty structure with probability 1."""
    shape = (2, 4) if structure == "binary_tree" else (2, 4, 4)
    logits = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([1, 4])
    sample = E.sample_with_trace(
        structure, logits, lengths=lengths, generator=torch.Generator().manual_seed(0)
    )
    assert sample.sample[0].sum() == 0 and sample.sample[1].sum() > 0
    log_p = E.trace_log_prob(structure, sample.trace, logits, lengths=lengths)
    assert log_p[0] == 0 and log_p[1] < 0
    log_p.sum().backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[0] == 0).all()


def test_a_trace_without_steps_conditions_on_nothing() -> None:
    """k = 0: no step, so ``U | T`` is the ordinary draw ``θ + G`` and ``log p(T) = 0``."""
    theta = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    out = E.sample_with_trace("k_subset", theta, k=0, generator=torch.Generator().manual_seed(5))
    assert out.trace.order.shape == (3, 0) and (out.sample == 0).all()
    cond = E.conditional_utilities(
        "k_subset", out.trace, theta, k=0, generator=torch.Generator().manual_seed(5)
    )
    # The same generator state gives the very same utilities as the unconditional draw.
    assert torch.equal(cond.detach(), out.utilities)
    (grad,) = torch.autograd.grad(cond.sum(), theta)
    assert torch.equal(grad, torch.ones_like(theta))  # ∂(θ + G)/∂θ = 1
    log_p = E.trace_log_prob("k_subset", out.trace, theta, k=0)
    assert torch.equal(log_p, torch.zeros(3, dtype=torch.float64))
    read = R.trace_read_mask("k_subset", out.trace, theta, {"k": 0})
    assert read.shape == theta.shape and not read.any()  # nothing was compared


def test_safe_logsumexp_of_no_terms() -> None:
    from structgrad.estimators.recursive._steps import safe_logsumexp

    x = torch.zeros(2, 0, 3, requires_grad=True)
    out = safe_logsumexp(x, dim=-2)
    assert out.shape == (2, 3) and (out == -torch.inf).all()
    assert torch.equal(safe_logsumexp(torch.zeros(2, 0), dim=-1), torch.full((2,), -torch.inf))


@pytest.mark.parametrize("k", [1, 3, 4])
def test_a_trace_of_another_k_raises(k: int) -> None:
    theta = torch.zeros(3, 5)
    out = E.sample_with_trace("k_subset", torch.randn(3, 5), k=2)
    with pytest.raises(ValueError, match=f"the trace was not drawn with k = {k}"):
        E.trace_log_prob("k_subset", out.trace, theta, k=k)
    with pytest.raises(ValueError, match=f"the trace was not drawn with k = {k}"):
        E.conditional_utilities("k_subset", out.trace, theta, k=k)
    # The right k: log p of the first two steps of uniform logits, 1/5 · 1/4.
    want = torch.full((3,), -math.log(20.0))
    torch.testing.assert_close(E.trace_log_prob("k_subset", out.trace, theta, k=2), want)
    # A trace straight from the solver (numpy) is checked too.
    _, trace = solvers.top_k(np.random.default_rng(0).normal(size=(3, 5)), 2, return_trace=True)
    with pytest.raises(ValueError, match="not drawn with k = 3"):
        E.trace_log_prob("k_subset", trace, theta, k=3)


@pytest.mark.parametrize("name", ["spanning_tree", "arborescence", "binary_tree"])
def test_a_trace_of_other_lengths_raises(name: str) -> None:
    """Given, ``lengths`` must be those the trace was drawn with.

    The trace records its sizes (no ``lengths`` scores it as drawn); other
    lengths were ignored, and the trace scored with its own sizes.
    """
    event, options = CASES[name]
    n = event[-1]
    theta = torch.randn(3, *event, dtype=torch.float64)
    lengths = torch.tensor([n, n - 1, 2])
    short = E.sample_with_trace(name, theta, lengths=lengths, **options)
    full = E.sample_with_trace(name, theta, **options)
    for trace, wrong in [
        (short.trace, torch.tensor([n, n - 1, 3])),
        (full.trace, lengths),
    ]:
        with pytest.raises(ValueError, match="not drawn with these lengths"):
            E.trace_log_prob(name, trace, theta, lengths=wrong, **options)
        with pytest.raises(ValueError, match="not drawn with these lengths"):
            E.conditional_utilities(name, trace, theta, lengths=wrong, **options)
    # The right lengths (a list, broadcast) or none are accepted.
    assert (
        E.trace_log_prob(name, short.trace, theta, lengths=[n, n - 1, 2], **options)
        .isfinite()
        .all()
    )
    assert E.trace_log_prob(name, full.trace, theta, lengths=n, **options).isfinite().all()
    assert E.trace_log_prob(name, short.trace, theta, **options).isfinite().all()
    set_validation(False)  # a value check: off with validation
    try:
        E.trace_log_prob(name, full.trace, theta, lengths=lengths, **options)
    finally:
        set_validation(True)


def test_recursive_draws_at_a_large_float32_offset_break_ties_uniformly() -> None:
    # The algorithm runs on centred utilities: at 1e8 (float32 spacing 8) the
    # noise rounded away and the first category won 96 % of draws.
    gen = torch.Generator().manual_seed(0)
    for name, options in (("categorical", {}), ("k_subset", {"k": 2})):
        draw = E.sample_with_trace(name, torch.full((3000, 3), 1e8), generator=gen, **options)
        share = draw.sample.mean(0) / draw.sample.sum(-1).mean()
        assert float((share - 1 / 3).abs().max()) < 0.05, (name, share)
        assert torch.isfinite(
            E.trace_log_prob(name, draw.trace, torch.full((3000, 3), 1e8), **options)
        ).all()


def test_recursive_checks_name_the_logits() -> None:
    with pytest.raises(ValueError, match="logits"):
        E.sample_with_trace("categorical", torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="logits"):
        E.trace_log_prob("spanning_tree", None, torch.full((3, 3), float("inf")))


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_traces_and_scores_compile(name: str, scale: float) -> None:
    """``sample_with_trace`` and ``trace_log_prob`` in one fullgraph compile, as eager.

    At ``scale = 1e4`` the arborescence instances overflow the exponentials and are
    redone in log space: traced, that redo is one opaque op.
    """
    from structgrad.testing.compiled import assert_compiles

    event, options = CASES[name]
    logits = torch.randn(3, *event, dtype=torch.float64) * scale
    logits[1] /= scale  # one ordinary instance beside the extreme ones

    def draw(logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        drawn = E.sample_with_trace(name, logits, wide=True, **options)
        log_p = E.trace_log_prob(name, drawn.trace, logits, **options)
        return drawn.sample, drawn.utilities, log_p, *(t for t in drawn.trace if t is not None)

    assert_compiles(draw, logits, rtol=1e-9, atol=1e-9)
