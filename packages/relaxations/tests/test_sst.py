import itertools
import math

import numpy as np
import pytest
import torch

import structgrad.solvers as solvers
from structgrad.distributions import without_offset
from structgrad.relaxations import gumbel_sinkhorn, sst

CASES = [
    ("categorical", (4, 6), {}),
    ("k_subset", (4, 8), {"k": 3}),
    ("spanning_tree", (4, 6, 6), {}),
    ("arborescence", (4, 6, 6), {"root": 1}),
    ("matching", (4, 5, 5), {}),
]


def _map(structure: str, u: torch.Tensor, options: dict) -> torch.Tensor:
    if structure == "categorical":
        return torch.nn.functional.one_hot(u.argmax(-1), u.shape[-1]).to(u.dtype)
    if structure == "k_subset":
        return solvers.top_k(u, options["k"])
    if structure == "spanning_tree":
        return solvers.max_spanning_tree(u)
    if structure == "arborescence":
        return solvers.max_arborescence(u, root=options["root"])
    return solvers.linear_assignment(u)


@pytest.mark.parametrize(("structure", "shape", "options"), CASES)
def test_small_temperature_recovers_the_map(structure: str, shape: tuple, options: dict) -> None:
    logits = torch.randn(shape, dtype=torch.float64)
    gaps = []
    for tau in (1.0, 0.3, 0.1, 0.03, 1e-3):
        gen = torch.Generator().manual_seed(0)
        soft, u = sst(structure, logits, tau, return_utilities=True, generator=gen, **options)
        gaps.append((soft - _map(structure, u, options)).abs().mean().item())
    # Mean distance to the MAP of the same utilities shrinks with tau (near-ties of
    # the Gumbel-perturbed utilities keep a few entries fractional) down to the
    # e^{-R} residue of the Matrix-Tree range clips.
    assert all(a > b or b < 1e-4 for a, b in itertools.pairwise(gaps)), gaps
    assert gaps[-1] < 0.01, gaps


@pytest.mark.parametrize("n", [2, 3, 6, 10])
@pytest.mark.parametrize("tau", [1e-3, 1e-4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matching_rounds_to_the_assignment(n: int, tau: float, dtype: torch.dtype) -> None:
    """Default options (annealed Sinkhorn): tau -> 0 gives the assignment of U."""
    logits = torch.randn(64, n, n, dtype=dtype, generator=torch.Generator().manual_seed(n))
    gen = torch.Generator().manual_seed(1)
    soft, u = sst("matching", logits, tau, return_utilities=True, generator=gen)
    want = solvers.linear_assignment(u)
    off = (soft.round() != want).any(-1).any(-1)
    # Near-ties of the perturbed utilities may leave one item in 64 fractional.
    assert off.sum() <= 1, off.sum()
    assert (soft - want).abs().amax((-1, -2)).median() < 1e-6


@pytest.mark.parametrize(("structure", "shape", "options"), CASES)
def test_straight_through_forward_is_the_map(structure: str, shape: tuple, options: dict) -> None:
    logits = torch.randn(shape, requires_grad=True)
    out, u = sst(structure, logits, 1.0, straight_through=True, return_utilities=True, **options)
    assert torch.equal(out.detach(), _map(structure, u.detach(), options))
    out.mul(torch.randn(shape)).sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize(("structure", "shape", "options"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_at_tiny_tau_huge_scores_and_neg_inf(
    structure: str, shape: tuple, options: dict, dtype: torch.dtype
) -> None:
    logits = (torch.randn(shape, dtype=dtype) * 1e4).requires_grad_(True)
    forbid = torch.zeros(shape, dtype=torch.bool)
    forbid[..., 0, -1] = True  # one forbidden entry per instance (never all of a row)
    masked = logits.masked_fill(forbid, -torch.inf)
    out = sst(structure, masked, 1e-3, **options)
    (out * torch.randn(shape, dtype=dtype)).sum().backward()
    assert out.dtype == dtype
    assert torch.isfinite(out).all() and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize(("structure", "shape", "options"), CASES)
def test_learned_tau_with_neg_inf_logits_has_a_finite_gradient(
    structure: str, shape: tuple, options: dict
) -> None:
    # The division's backward was 0 * inf = NaN for tau at a -inf score.
    logits = torch.randn(shape, dtype=torch.float64)
    logits[..., 0, -1] = -torch.inf
    tau = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    out = sst(structure, logits, tau, generator=torch.Generator().manual_seed(0), **options)
    (out * torch.randn(shape, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(tau.grad)
    # Away from -inf the gradient is the plain quotient's (a finite difference).
    finite = logits.masked_fill(torch.isneginf(logits), -30.0)

    def at(t: float) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        return sst(structure, finite, t, generator=g, **options)

    if structure != "matching":  # (Sinkhorn's anneal schedule is piecewise in tau)
        out = sst(structure, finite, tau, generator=torch.Generator().manual_seed(0), **options)
        w = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        (grad,) = torch.autograd.grad((out * w).sum(), tau)
        numeric = ((at(0.5 + 1e-6) - at(0.5 - 1e-6)) * w).sum() / 2e-6
        torch.testing.assert_close(grad, numeric, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_huge_scores_at_tiny_tau(dtype: torch.dtype) -> None:
    """1e31 / 1e-8 overflows float32: shift-invariant laws shift first, trees say so."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=g, dtype=dtype) * 1e31
    out = sst("k_subset", x, 1e-8, k=2, generator=torch.Generator().manual_seed(2))
    noisy = x + _gumbel(x, 2)
    torch.testing.assert_close(out, solvers.top_k(noisy, 2))
    w = torch.randn(6, 5, 5, generator=g, dtype=dtype) * 1e31
    if dtype == torch.float32:
        with pytest.raises(ValueError, match=r"overflows torch\.float32"):
            sst("spanning_tree", w, 1e-8)
    else:
        assert torch.isfinite(sst("spanning_tree", w, 1e-8)).all()
        with pytest.raises(ValueError, match=r"float64 \(.*\): use a larger tau$"):
            sst("spanning_tree", w * 1e10, 1e-300)  # float64 scores: no "use float64"


def _gumbel(like: torch.Tensor, seed: int) -> torch.Tensor:
    from structgrad.distributions import sample_gumbel

    g = torch.Generator().manual_seed(seed)
    return sample_gumbel(like.shape, dtype=like.dtype, generator=g)


def test_gradcheck_through_the_trick() -> None:
    for structure, shape, options in CASES:
        logits = torch.randn(shape, dtype=torch.float64, requires_grad=True)

        def f(x: torch.Tensor, s: str = structure, o: dict = options) -> torch.Tensor:
            return sst(s, x, 0.8, generator=torch.Generator().manual_seed(5), **o)

        assert torch.autograd.gradcheck(f, (logits,)), structure


def test_tensor_temperature_broadcasts() -> None:
    logits = torch.randn(3, 5, 5)
    tau = torch.tensor([1.0, 0.5, 0.1]).view(3, 1, 1)
    out = sst("spanning_tree", logits, tau)
    torch.testing.assert_close(out.triu(1).sum((-1, -2)), torch.full((3,), 4.0))


def test_lengths_option() -> None:
    out = sst("spanning_tree", torch.randn(2, 6, 6), 1.0, lengths=torch.tensor([3, 6]))
    assert (out[0, 3:] == 0).all()
    torch.testing.assert_close(out.triu(1).sum((-1, -2)), torch.tensor([2.0, 5.0]))


@pytest.mark.parametrize(
    ("structure", "options", "match"),
    [
        ("nope", {}, "unknown structure"),
        ("binary_tree", {}, "no relaxation"),
        ("grid_path", {}, "no relaxation"),
        ("categorical", {"k": 2}, "takes options"),
        ("k_subset", {}, r"needs the option\(s\) \['k'\]"),
    ],
)
def test_bad_structure_or_option(structure: str, options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sst(structure, torch.randn(4, 4), 1.0, **options)


def test_integer_logits_rejected() -> None:
    with pytest.raises(TypeError, match=r"logits must be a floating tensor \(float32 or float64\)"):
        sst("categorical", torch.tensor([1, 2, 3]), 1.0)
    with pytest.raises(TypeError, match="float16, which is not supported"):
        sst("categorical", torch.randn(3).half(), 1.0)
    with pytest.raises(TypeError, match=r"logits expects a torch\.Tensor, got ndarray"):
        sst("categorical", torch.randn(3).numpy(), 1.0)


def test_integer_like_options() -> None:
    """numpy and 0-d torch integers work wherever an int option is expected."""
    logits = torch.randn(5, 5, dtype=torch.float64)
    for root in (np.int64(2), torch.tensor(2)):
        g = torch.Generator().manual_seed(0)
        out = sst("arborescence", logits, 1.0, root=root, generator=g)
        want = sst("arborescence", logits, 1.0, root=2, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(out, want)
    g = torch.Generator().manual_seed(1)
    out = sst("k_subset", logits[0], 0.5, k=np.int64(2), straight_through=True, generator=g)
    assert out.sum().item() == 2


@pytest.mark.parametrize("offset", [1e4, 1e7, -1e7])
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("categorical", {}),
        ("k_subset", {"k": 2}),
        ("spanning_tree", {}),
        ("arborescence", {"root": 1}),
        ("matching", {}),
    ],
)
def test_float32_sst_ignores_a_common_offset(name: str, options: dict, offset: float) -> None:
    # θ + G at 1e7 (float32 spacing 1) rounded the noise away: errors up to 0.5.
    rows = [[0.0, 1.0, 2.0, 3.0], [5.0, 0.0, 3.0, 1.0], [1.0, 2.0, 0.0, 4.0], [2.0, 6.0, 1.0, 0.0]]
    base = torch.tensor(rows)
    if name in ("categorical", "k_subset"):
        base = base[0]
    if name == "spanning_tree":
        base = base.triu(1) + base.triu(1).T
    shifted = base + offset
    if name in ("spanning_tree", "arborescence"):
        shifted = shifted.masked_fill(torch.eye(4, dtype=torch.bool), 0.0)  # unread: any value
    for straight_through in (False, True):
        kw = {"straight_through": straight_through, **options}
        got, u = sst(name, shifted, 0.5, return_utilities=True, generator=_seed(0), **kw)
        want = sst(name, base, 0.5, generator=_seed(0), **kw)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
        assert float((u - shifted).abs().max()) < 30  # U is still logits + G


def _seed(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("offset", [1e4, 1e7])
def test_float32_gumbel_sinkhorn_ignores_a_common_offset(offset: float) -> None:
    base = torch.tensor([[0.0, 1.0, 2.0], [5.0, 0.0, 3.0], [1.0, 2.0, 0.0]])
    got = gumbel_sinkhorn(base + offset, 0.5, generator=_seed(1))
    torch.testing.assert_close(
        got, gumbel_sinkhorn(base, 0.5, generator=_seed(1)), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("structure", ["spanning_tree", "arborescence"])
def test_a_padded_one_vertex_graph(structure: str) -> None:
    # Every entry of item 0 masked (its length is 1): no finite score sets an
    # offset, which was taken as -inf and made NaN of the -inf entries.
    x = torch.randn(2, 4, 4, dtype=torch.float64)
    x[0] = -math.inf
    out = sst(structure, x, 0.5, lengths=torch.tensor([1, 4]), generator=_seed(0))
    assert torch.equal(out[0], torch.zeros(4, 4, dtype=torch.float64))
    assert torch.isfinite(out).all() and out[1].sum() > 0


def test_matching_without_a_finite_off_diagonal_entry() -> None:
    # n = 1, and a matrix that allows the identity alone: the offset is read
    # off the diagonal, where nothing is finite.
    one = torch.randn(2, 1, 1, dtype=torch.float64)
    assert torch.equal(sst("matching", one, 0.5), torch.ones_like(one))
    assert torch.equal(gumbel_sinkhorn(one, 0.5), torch.ones_like(one))
    eye = torch.full((3, 3), -math.inf).fill_diagonal_(0.5)
    torch.testing.assert_close(sst("matching", eye, 0.5, straight_through=True), torch.eye(3))
    torch.testing.assert_close(gumbel_sinkhorn(eye, 0.5), torch.eye(3))


def test_without_offset_of_an_instance_with_nothing_read() -> None:
    x = torch.tensor([[-math.inf, 2.0], [3.0, 3.5]])
    read = torch.tensor([True, False])
    want = torch.tensor([[-math.inf, 2.0], [0.0, 0.5]])
    torch.testing.assert_close(without_offset(x, 1, read.expand(2, 2)), want)


def test_without_offset_leaves_wide_scores_alone() -> None:
    # A shift by 1e31 would merge 0, 1 and 2; they are left as they are.
    x = torch.tensor([1e31, 0.0, 1.0, 2.0])
    assert torch.equal(without_offset(x, 1), x)
    y = torch.tensor([[3e7, 3e7 + 2, 3e7 + 4], [-3e7, -3e7 - 2, -math.inf]])
    want = torch.tensor([[-4.0, -2.0, 0.0], [0.0, -2.0, -math.inf]])
    torch.testing.assert_close(without_offset(y, 1), want)


@pytest.mark.parametrize(
    ("max_range", "error", "match"),
    [
        (0, ValueError, "max_range must be a number > 0, got 0.0"),
        (-1.0, ValueError, "max_range must be a number > 0, got -1.0"),
        (math.nan, ValueError, "max_range must be a number > 0, got nan"),
        ("15", TypeError, "max_range must be a real number, got str"),
        (True, TypeError, "max_range must be a real number, got bool"),
    ],
)
def test_a_bad_max_range_is_refused_when_the_layer_is_built(max_range, error, match) -> None:
    # The layer took it and failed at its first draw ("15" was used as 15).
    from structgrad.relaxations import SSTLayer

    with pytest.raises(error, match=match):
        SSTLayer("spanning_tree", max_range=max_range)
    with pytest.raises(error, match=match):
        sst("spanning_tree", torch.randn(4, 4), 1.0, max_range=max_range)
    assert SSTLayer("spanning_tree", max_range=math.inf)(torch.randn(4, 4)).shape == (4, 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("structure", ["spanning_tree", "arborescence"])
@pytest.mark.parametrize("max_range", [40.0, 100.0, 1e4])
def test_a_range_above_the_default_relaxes_wide_scores(
    max_range: float, structure: str, dtype: torch.dtype
) -> None:
    # Two clusters joined far below the maximum: the Laplacian of the clipped
    # scores was singular ("... (a finite max_range prevents that)", with one
    # given), where the default is exact; they now take the default's elimination.
    theta = torch.tensor(
        [[0.0, 64, -27, 10], [64, 0, 17, -16], [-27, 17, 0, 61], [10, -16, 61, 0]], dtype=dtype
    ).requires_grad_(True)
    out = sst(
        structure, theta, 0.5, max_range=max_range, generator=torch.Generator().manual_seed(0)
    )
    sums = out.triu(1).sum((-2, -1)) if structure == "spanning_tree" else out.sum(-2)[1:].mean()
    want = 3.0 if structure == "spanning_tree" else 1.0
    assert float(sums.detach()) == pytest.approx(want, abs=1e-5)
    (out * torch.randn(4, 4, dtype=dtype)).sum().backward()
    assert theta.grad is not None and torch.isfinite(theta.grad).all()
    if max_range > 1e3:  # nothing to clip: the default's law
        exact = sst(structure, theta, 0.5, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(out, exact)


@pytest.mark.parametrize(
    ("structure", "logits", "options", "want"),
    [
        ("categorical", [1e8, 1e8, 0.0], {}, [0.5, 0.5, 0.0]),
        ("k_subset", [1e8, 1e8, 1e8, 0.0], {"k": 1}, [1 / 3, 1 / 3, 1 / 3, 0.0]),
        (  # a triangle of 1e8 edges: each edge in 2 of the 3 trees
            "spanning_tree",
            [[0.0, 1e8, 1e8], [0.0, 0.0, 1e8], [0.0, 0.0, 0.0]],
            {},
            [[0.0, 2 / 3, 2 / 3], [2 / 3, 0.0, 2 / 3], [2 / 3, 2 / 3, 0.0]],
        ),
    ],
)
def test_float32_straight_through_draws_break_wide_ties_uniformly(
    structure: str, logits: list[float], options: dict, want: list[float]
) -> None:
    # θ + G in float32 beside 1e8 (spacing 8) lost the noise: ties went to the
    # lowest index, [0.98, 0.02] for [0.5, 0.5].
    theta = torch.tensor(logits).expand(20000, *torch.tensor(logits).shape)
    z = sst(
        structure,
        theta,
        1.0,
        straight_through=True,
        generator=torch.Generator().manual_seed(0),
        **options,
    )
    assert z.dtype == torch.float32
    torch.testing.assert_close(z.mean(0), torch.tensor(want), atol=0.02, rtol=0)
