"""Structures: names, options, input checks, Gumbel noise, MAP, enumeration, edge layouts."""

import math

import brute
import pytest
import torch

from structgrad.distributions import (
    STRUCTURES,
    Structure,
    arborescence_marginals,
    edge_list,
    from_upper,
    spanning_tree_marginals,
    structure,
    to_upper,
)
from structgrad.distributions.checks import OptionError

INF = math.inf


def test_every_name_resolves_to_one_structure() -> None:
    assert STRUCTURES == (
        "categorical",
        "k_subset",
        "spanning_tree",
        "arborescence",
        "matching",
        "binary_tree",
        "grid_path",
    )
    for name in STRUCTURES:
        s = structure(name)
        assert isinstance(s, Structure) and s.name == name
        assert structure(name) is s and structure(s) is s
    with pytest.raises(ValueError, match=r"unknown name 'tree'.*spanning_tree"):
        structure("tree")


def test_options_are_checked() -> None:
    with pytest.raises(OptionError, match=r"unknown options \['kk'\]; accepted: k"):
        structure("k_subset").map(torch.randn(5), kk=2)
    with pytest.raises(ValueError, match="missing required options"):
        structure("k_subset").map(torch.randn(5))
    with pytest.raises(ValueError, match="accepted: root, lengths"):
        structure("arborescence").check(torch.randn(3, 3), k=1)
    with pytest.raises(ValueError, match="accepted: none"):
        structure("matching").check(torch.randn(3, 3), root=1)
    # "lengths must lie in [4, 5]" did not say where the 4 came from.
    with pytest.raises(ValueError, match=r"\[4, 5\] \(every graph holds the root 3\), got"):
        structure("arborescence").check(torch.randn(2, 5, 5), root=3, lengths=[5, 3])


BAD = [
    ("spanning_tree", torch.tensor([[0.0, math.nan], [0.0, 0.0]]), {}, "scores contains NaN"),
    ("spanning_tree", torch.tensor([[0.0, INF], [0.0, 0.0]]), {}, r"scores contains \+inf"),
    ("spanning_tree", torch.randn(4), {}, "scores must have shape"),
    ("spanning_tree", torch.randn(1, 1), {}, "n >= 2"),
    ("spanning_tree", torch.randn(3, 4), {}, "square"),
    ("spanning_tree", torch.randn(3, 3).long(), {}, "floating"),
    ("spanning_tree", torch.randn(2, 3, 3), {"lengths": torch.tensor([1, 4])}, "lengths"),
    ("spanning_tree", torch.randn(2, 3, 3), {"lengths": torch.tensor([1.0, 2.0])}, "lengths"),
    ("spanning_tree", torch.randn(2, 3, 3), {"lengths": torch.tensor([1, 2, 3])}, "lengths"),
    ("spanning_tree", torch.randn(2, 3, 3), {"lengths": "3"}, "lengths must be integers"),
    ("spanning_tree", torch.randn(2, 3, 3), {"lengths": [[2], [2, 3]]}, "lengths must be integers"),
    ("arborescence", torch.randn(3, 3), {"root": 3}, "root"),
    ("arborescence", torch.randn(3, 3), {"root": -1}, "root"),
    ("arborescence", torch.randn(2, 3, 3), {"root": 1, "lengths": torch.tensor([1, 3])}, "lengths"),
    ("k_subset", torch.randn(4), {"k": 5}, "k must lie"),
    ("k_subset", torch.randn(4), {"k": -1}, "k must lie"),
    ("k_subset", torch.randn(4), {"k": 1.5}, "k must be an integer"),
    ("categorical", torch.tensor(1.0), {}, "scores must have shape"),
    ("matching", torch.randn(2, 3), {}, "square"),
    ("grid_path", -torch.ones(2, 2), {}, "non-negative"),
]


@pytest.mark.parametrize(("name", "scores", "options", "match"), BAD)
def test_bad_input_raises_value_error_naming_it(
    name: str, scores: torch.Tensor, options: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        structure(name).check(scores, **options)


def test_forbidden_scores_leaving_nothing_raise() -> None:
    from structgrad.solvers import InvalidScoresError

    theta = torch.randn(4, 4, dtype=torch.float64)
    theta[0, 1:] = theta[1:, 0] = -INF  # vertex 0 cut off
    with pytest.raises(InvalidScoresError, match="leave no spanning_tree"):
        structure("spanning_tree").log_partition(theta)
    with pytest.raises(InvalidScoresError, match="leave no k_subset"):
        structure("k_subset").marginals(torch.tensor([0.0, -INF, -INF]), k=2)
    with pytest.raises(InvalidScoresError, match="contains NaN"):
        structure("arborescence").marginals(torch.full((3, 3), math.nan))
    with pytest.raises(InvalidScoresError, match="all -inf"):
        structure("categorical").map(torch.tensor([[-INF, -INF]]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gumbel_noise(dtype: torch.dtype) -> None:
    like = torch.zeros(200, 6, 6, dtype=dtype)
    g = structure("arborescence").gumbel(like, generator=torch.Generator().manual_seed(0))
    assert g.dtype == dtype and g.shape == like.shape and bool(torch.isfinite(g).all())
    assert abs(float(g.mean()) - 0.5772) < 0.02  # Euler-Mascheroni: the Gumbel mean
    assert not torch.equal(g, g.transpose(-1, -2))
    s = structure("spanning_tree").gumbel(like)
    assert torch.equal(s, s.transpose(-1, -2)) and float(s.diagonal(0, -2, -1).abs().max()) == 0
    same = structure("k_subset").gumbel(like[0], generator=torch.Generator().manual_seed(1))
    again = structure("k_subset").gumbel(like[0], generator=torch.Generator().manual_seed(1))
    assert torch.equal(same, again)


def test_perturb_adds_a_given_noise_after_the_exact_offset_removal() -> None:
    s = structure("spanning_tree")
    # float32 at 1e7 (spacing 1): the noise survives only once the offset is gone
    theta = torch.full((2, 4, 4), 1e7) + torch.arange(16.0).reshape(4, 4)
    noise = s.gumbel(theta, generator=torch.Generator().manual_seed(0))
    u = s.perturb(theta, noise=noise)
    off = ~torch.eye(4, dtype=torch.bool)
    gaps = (u - noise)[..., off] - (theta - 1e7)[..., off]
    assert float(gaps.std()) < 1e-5  # one common shift per graph, noise kept to float32
    seeded = s.perturb(theta, generator=torch.Generator().manual_seed(0))
    assert torch.equal(seeded, u)  # the default draw is the same gumbel draw
    with pytest.raises(TypeError, match="noise"):
        s.perturb(theta, noise=noise.tolist())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise"):
        s.perturb(theta, noise=noise[0])


@pytest.mark.parametrize(
    ("dtype", "noise_dtype"), [(torch.float32, torch.float64), (torch.float64, torch.float32)]
)
def test_perturb_follows_the_scores_dtype_not_the_noise(
    dtype: torch.dtype, noise_dtype: torch.dtype
) -> None:
    s = structure("k_subset")
    theta = torch.randn(2, 5, dtype=dtype)
    noise = s.gumbel(theta.to(noise_dtype)).requires_grad_(True)
    u = s.perturb(theta, noise=noise)
    assert u.dtype == dtype and u.device == theta.device
    torch.testing.assert_close(u, theta + noise.detach().to(dtype))
    u.sum().backward()  # the noise's gradient comes back in its own dtype
    assert noise.grad is not None and noise.grad.dtype == noise_dtype
    assert s.perturb(theta, noise=noise, wide=True).dtype == torch.float64


MAPS = [
    ("categorical", (3, 5), {}),
    ("k_subset", (3, 5), {"k": 2}),
    ("spanning_tree", (3, 5, 5), {}),
    ("arborescence", (3, 5, 5), {"root": 2}),
    ("matching", (3, 4, 4), {}),
]


@pytest.mark.parametrize(("name", "shape", "options"), MAPS)
def test_map_is_the_argmax_over_the_enumeration(name: str, shape: tuple, options: dict) -> None:
    s = structure(name)
    theta = torch.randn(shape, dtype=torch.float64)
    xs = s.enumerate(shape[-1], **options)
    kind = "spanning_tree" if name == "spanning_tree" else "other"
    best = brute.scores(theta, xs, kind).argmax(-1)
    torch.testing.assert_close(s.map(theta, **options), xs[best])


def test_binary_tree_map_is_in_its_enumeration() -> None:
    s = structure("binary_tree")
    xs = s.enumerate(5)
    tree = s.map(torch.randn(3, 5, dtype=torch.float64))
    assert bool((brute.index_of(tree, xs) >= 0).all())
    path = structure("grid_path").map(torch.rand(2, 3, 4))
    assert path.shape == (2, 3, 4) and bool((path[:, 0, 0] == 1).all())


def test_enumeration_counts() -> None:
    assert structure("spanning_tree").enumerate(5).shape == (125, 5, 5)
    assert structure("arborescence").enumerate(4, root=3).shape == (16, 4, 4)
    assert structure("k_subset").enumerate(6, k=2).shape == (15, 6)
    assert structure("categorical").enumerate(4).shape == (4, 4)
    assert structure("matching").enumerate(4).shape == (24, 4, 4)
    assert structure("binary_tree").enumerate(4).shape == (14, 4, 4)
    with pytest.raises(NotImplementedError, match="no enumerator"):
        structure("grid_path").enumerate(3)


@pytest.mark.parametrize(
    ("name", "reason"),
    [("matching", "permanent"), ("binary_tree", "split points"), ("grid_path", "paths")],
)
def test_intractable_laws_say_why(name: str, reason: str) -> None:
    s = structure(name)
    assert not s.tractable
    scores = torch.rand(4, 4)
    for call in (s.log_partition, s.marginals, s.sample):
        with pytest.raises(NotImplementedError, match=reason):
            call(scores)


def test_edge_layouts_round_trip() -> None:
    n = 5
    sym = torch.randn(2, n, n)
    sym = sym + sym.transpose(-1, -2)
    upper = to_upper(sym)
    assert upper.shape == (2, 10)
    back = from_upper(upper)
    torch.testing.assert_close(back, sym - torch.diag_embed(sym.diagonal(0, -2, -1)))
    edges = edge_list(n)
    assert edges.shape == (10, 2) and bool((edges[:, 0] < edges[:, 1]).all())
    torch.testing.assert_close(upper, sym[:, edges[:, 0], edges[:, 1]])
    st = structure("spanning_tree")
    torch.testing.assert_close(st.to_upper(sym), upper)  # also on the structure
    with pytest.raises(ValueError, match="not n\\(n-1\\)/2"):
        from_upper(torch.randn(4))
    grad_in = torch.randn(3, requires_grad=True)
    from_upper(grad_in).sum().backward()
    torch.testing.assert_close(grad_in.grad, torch.full((3,), 2.0))


def test_divide_by_tau_keeps_a_learned_tau_finite() -> None:
    from structgrad.distributions import divide_by_tau

    scores = torch.tensor([0.5, -torch.inf, 1.0])
    tau = torch.tensor(0.5, requires_grad=True)
    out = divide_by_tau(scores, tau)
    assert torch.equal(out.detach(), torch.tensor([1.0, -torch.inf, 2.0]))
    torch.softmax(out, -1)[0].backward()
    assert torch.isfinite(tau.grad)
    assert torch.equal(divide_by_tau(scores, torch.tensor(0.5)), scores / 0.5)


def test_relaxed_scores_that_overflow_are_named() -> None:
    # Trees read only part of their event, so they are not centred: a quotient
    # that overflows float32 is an error naming it, not a +inf deep inside.
    w = torch.full((4, 4), 1e31)
    with pytest.raises(ValueError, match="overflows"):
        structure("spanning_tree").relax(w, tau=1e-8)
    got = structure("categorical").relax(torch.tensor([1e31, 0.0, -1e31]), tau=1e-8)
    assert torch.equal(got, torch.tensor([1.0, 0.0, 0.0]))


def test_tau_broadcasts_one_way_only() -> None:
    from structgrad.distributions.checks import as_tau

    x = torch.zeros(3, 4)
    assert as_tau(torch.ones(3, 1), x).shape == (3, 1)
    for bad in (torch.ones(2, 1, 1), torch.ones(3, 4, 1), torch.ones(5)):
        with pytest.raises(ValueError, match="does not broadcast to the shape"):
            as_tau(bad, x)


def test_small_inputs_and_argument_types() -> None:
    from structgrad.distributions import (
        SpanningTree,
        k_subset_log_partition,
        multi_root_arborescence_marginals,
        sample_gumbel,
    )

    assert k_subset_log_partition(torch.zeros(0), 0).item() == 0.0  # was an IndexError
    scores = torch.tensor([[0.0, -torch.inf], [1.0, 2.0]], requires_grad=True)
    out = k_subset_log_partition(scores, 0)
    assert torch.equal(out, torch.zeros(2))
    out.sum().backward()
    assert torch.equal(scores.grad, torch.zeros(2, 2))
    with pytest.raises(TypeError, match="root_scores"):
        multi_root_arborescence_marginals(torch.randn(3, 3), [0.0, 0.0, 0.0])
    with pytest.raises(TypeError, match="dtype must be a floating torch dtype"):
        sample_gumbel((3,), dtype=torch.int64)
    # A sparse or meta tensor failed inside an op ("Could not run 'aten::eq.Tensor'
    # with arguments from the 'SparseCPU' backend", "item() on meta tensors").
    with pytest.raises(TypeError, match="logits must be a dense tensor, got layout"):
        SpanningTree(torch.randn(3, 3).to_sparse())
    with pytest.raises(TypeError, match="logits is a meta tensor, which holds no values"):
        SpanningTree(torch.empty(3, 3, device="meta"))


def test_relax_takes_a_tau_per_edge_for_trees_only() -> None:
    # Trees divide the scores as they are: a tau per edge is exact there. The
    # others centre each instance first, exact for one tau per instance only.
    s = torch.randn(2, 4, 4, dtype=torch.float64)
    tau = torch.rand(2, 4, 4, dtype=torch.float64) + 0.5
    for name, exact in (
        ("spanning_tree", spanning_tree_marginals),
        ("arborescence", arborescence_marginals),
    ):
        torch.testing.assert_close(structure(name).relax(s, tau=tau), exact(s / tau))
    with pytest.raises(ValueError, match="varies within an instance"):
        structure("matching").relax(s, tau=tau)
    with pytest.raises(ValueError, match="varies within an instance"):
        structure("k_subset").relax(s[:, 0], tau=tau[:, 0], k=2)
    assert structure("k_subset").relax(s[:, 0], tau=tau[:, :1, 0], k=2).shape == (2, 4)


def test_contains_checks_the_structure_and_its_shape() -> None:
    # matching took any 0/1 matrix (506 of the 512 3x3 ones wrongly); binary_tree
    # and grid_path answered per row / for any mask (helper 76).
    m = structure("matching")
    x = torch.zeros(3, 3)
    assert not bool(m.contains(x, torch.zeros(3, 3)))
    assert not bool(m.contains(x, torch.ones(3, 3)))
    assert bool(m.contains(x, torch.eye(3)[[2, 0, 1]]))
    with pytest.raises(NotImplementedError, match="binary_tree: whether"):
        structure("binary_tree").contains(torch.zeros(3), torch.zeros(3, 3))
    with pytest.raises(NotImplementedError, match="does not live in the space of its"):
        structure("binary_tree").score(torch.zeros(3), torch.zeros(3, 3))
    with pytest.raises(NotImplementedError, match="grid_path: whether"):
        structure("grid_path").contains(torch.rand(3, 3), torch.zeros(3, 3))
    # A bare KeyError 'k', a broadcast RuntimeError: named now.
    with pytest.raises(ValueError, match=r"missing required options \['k'\]"):
        structure("k_subset").contains(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match=r"spanning_tree: x must end in \(4, 4\)"):
        structure("spanning_tree").contains(torch.zeros(4, 4), torch.zeros(5, 5))


def test_relax_names_tau_for_an_old_name() -> None:
    with pytest.raises(ValueError, match="option 'temperature' is now called 'tau'"):
        structure("spanning_tree").relax(torch.zeros(3, 3), temperature=0.5)


@pytest.mark.parametrize("name", ["arborescence", "spanning_tree"])
def test_perturb_reads_the_offset_where_the_structure_reads(name: str) -> None:
    # A zero root column (or padding) kept a 1e7 offset in float32: the noise was
    # rounded to whole numbers (helper 76).
    gen = torch.Generator().manual_seed(0)
    x = (1e7 + torch.randn(4, 4, generator=gen, dtype=torch.float64)).float()
    x.fill_diagonal_(0)
    options = {"root": 0} if name == "arborescence" else {"lengths": 3}
    if name == "arborescence":
        x[:, 0] = 0
    else:
        x[3, :] = x[:, 3] = 0
    u = structure(name).perturb(x, generator=torch.Generator().manual_seed(1), **options)
    assert float(u[0, 1:3].abs().max()) < 100  # θ + G less the offset
    with pytest.raises(ValueError, match=r"perturb: unknown option\(s\) k; it takes"):
        structure(name).perturb(x, k=2)
