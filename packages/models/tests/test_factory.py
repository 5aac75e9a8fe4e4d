import math
import re

import pytest
import torch

import structgrad.solvers as solvers
from structgrad.models import METHODS, LatentLayer, latent, map_sample, method_info

from ._nri_setup import train_step

PAIRS = [(s, m) for s, methods in METHODS.items() for m in methods]
SCORE = {
    "reinforce",
    "nvil",
    "e-reinforce",
    "t-reinforce",
    "e-reinforce+",
    "t-reinforce+",
    "relax",
}


def test_registry_shape() -> None:
    assert set(METHODS) == {
        "spanning_tree",
        "k_subset",
        "arborescence",
        "categorical",
        "matching",
        "binary_tree",
        "edges",
    }
    for structure in ("spanning_tree", "k_subset"):
        assert {"sst", "st-sst", "imle", "aimle"} <= set(METHODS[structure])
    assert {"gumbel-softmax", "st"} <= set(METHODS["categorical"])
    assert METHODS["edges"] == ("indep",)
    assert all(isinstance(v, tuple) for v in METHODS.values())


@pytest.mark.parametrize(("structure", "method"), PAIRS)
def test_method_info_says_what_the_built_layer_is(structure: str, method: str) -> None:
    info = method_info(method)
    options = {"k": 3} if structure == "k_subset" else {}
    if method == "relax":  # the default critic's event shape (checked against the structure)
        options["event_shape"] = (
            (5,) if structure in ("categorical", "k_subset", "binary_tree") else (5, 5)
        )
    layer = latent(structure, method, **options)
    assert info.name == method and info.pathwise == layer.pathwise == (method not in SCORE)
    if info.family == "score":
        assert not info.tau
        with pytest.raises(ValueError, match="tau"):
            latent(structure, method, tau=0.5, **options)
    elif info.tau:  # tau is the layer's temperature, or the scale of its noise
        tempered = latent(structure, method, tau=0.37, **options)
        assert float(tempered.tau) == 0.37  # type: ignore[arg-type]
        assert getattr(tempered, "noise", "relaxation") is not None
    else:  # blackbox: no noise by default, so nothing for tau to scale
        assert info.family == "perturbation" and layer.noise is None


def test_method_info_of_an_unknown_name_lists_the_known() -> None:
    with pytest.raises(ValueError, match="unknown method 'foo'; known methods: sst, st-sst"):
        method_info("foo")


@pytest.mark.parametrize(("structure", "method"), PAIRS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_method_trains_one_nri_step(structure: str, method: str, dtype: torch.dtype) -> None:
    out = train_step(structure, method, dtype)
    assert torch.isfinite(out["loss"])
    assert out["grads"], "no parameter received a gradient"
    assert all(torch.isfinite(g).all() for g in out["grads"])
    assert all(torch.isfinite(p).all() for p in out["params"])
    assert out["layer"].pathwise == (method not in SCORE)


def test_unknown_structure_lists_supported() -> None:
    with pytest.raises(ValueError, match="spanning_tree"):
        latent("hypergraph", "sst")
    with pytest.raises(ValueError, match="binary_tree"):
        latent("binary_tree", "imle")


@pytest.mark.parametrize(
    ("structure", "method"),
    [("spanning_tree", "gumbel-softmax"), ("categorical", "sst"), ("edges", "imle")],
)
def test_unsupported_method_lists_supported(structure: str, method: str) -> None:
    with pytest.raises(ValueError, match="supported: ") as info:
        latent(structure, method)
    for name in METHODS[structure]:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("structure", "method", "reason"),
    [
        ("categorical", "sst", "use 'gumbel-softmax'"),
        ("binary_tree", "sst", "no tractable exponential-family relaxation"),
        ("binary_tree", "aimle", "not argmax <z, θ>"),
        ("matching", "st", "categorical variables only"),
        ("k_subset", "indep", "structure 'edges'"),
        ("edges", "imle", "'indep'"),
    ],
)
def test_unsupported_method_says_what_is_missing(structure: str, method: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        latent(structure, method, k=2)


def test_matching_sst() -> None:
    """Gumbel-Sinkhorn SST for matchings: doubly stochastic; st-sst forward is the assignment."""
    # Seeded: Sinkhorn's residual after n rounds depends on the instance (at 50
    # rounds and tau 0.5 it exceeds 1e-3 on a third of random ones; at 300, on 1.5%).
    gen = torch.Generator().manual_seed(3)
    theta = torch.randn(3, 5, 5, dtype=torch.float64, generator=gen).requires_grad_(True)
    layer = latent("matching", "sst", tau=0.5, n_iters=300)
    z = layer(theta, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.sum(-2), torch.ones(3, 5, dtype=torch.float64))
    torch.testing.assert_close(z.sum(-1), torch.ones(3, 5, dtype=torch.float64), atol=1e-3, rtol=0)
    hard = latent("matching", "st-sst", tau=0.5)
    z = hard(theta, generator=torch.Generator().manual_seed(4))
    u = theta.detach() + hard.structure.gumbel(theta, generator=torch.Generator().manual_seed(4))
    assert torch.equal(z.detach(), solvers.linear_assignment(u))
    hard.attach((z * torch.randn(5, 5, dtype=torch.float64)).sum((-1, -2))).sum().backward()
    assert theta.grad is not None and torch.isfinite(theta.grad).all()
    assert theta.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"unknown option.*max_range; it takes .*n_iters"):
        latent("matching", "sst", max_range=3.0)


def test_k_subset_needs_k() -> None:
    with pytest.raises(ValueError, match=r"missing required options \['k'\]"):
        latent("k_subset", "sst")


@pytest.mark.parametrize("method", ["sst", "imle", "indep"])
def test_bad_options_raise_value_error(method: str) -> None:
    structure = "edges" if method == "indep" else "spanning_tree"
    with pytest.raises(ValueError):
        latent(structure, method, no_such_option=1)


@pytest.mark.parametrize("method", ["imle", "aimle", "ste", "blackbox", "perturbed"])
def test_minimize_is_refused_by_latent_layers(method: str) -> None:
    # The layer then took costs (the bottom k) while sample_hard took the top k;
    # latent layers take logits to maximise (helper 65).
    with pytest.raises(ValueError, match=r"takes logits to maximise.*minimize=True"):
        latent("k_subset", method, k=2, minimize=True)
    # ...so the list of accepted options does not name it (it did).
    with pytest.raises(ValueError, match=r"unknown option\(s\) bogus; it takes") as info:
        latent("k_subset", method, k=2, bogus=1)
    assert "minimize" not in str(info.value)


def test_bad_relaxation_options_are_refused_when_the_layer_is_built() -> None:
    with pytest.raises(ValueError, match="n_iters"):
        latent("matching", "sst", n_iters=0)
    with pytest.raises(TypeError, match="anneal"):
        latent("matching", "st-sst", anneal="yes")
    with pytest.raises(ValueError, match="max_range"):
        latent("arborescence", "sst", max_range=-1.0)


@pytest.mark.parametrize("method", ["imle", "ste", "sst", "reinforce"])
def test_nan_beside_forbidden_entries_is_named_nan(method: str) -> None:
    # NaN counted as a forbidden entry: "the -inf entries leave no k_subset".
    with pytest.raises(ValueError, match="contains NaN"):
        latent("k_subset", method, k=2)(torch.tensor([1.0, math.nan, -math.inf]))
    with pytest.raises(TypeError, match="lengths must be integers"):
        latent("spanning_tree", method)(torch.randn(2, 4, 4), lengths="3")


def test_bad_tau() -> None:
    with pytest.raises(ValueError, match="tau"):
        latent("spanning_tree", "sst", tau=0.0)


def test_sst_tree_sample() -> None:
    layer = latent("spanning_tree", "sst", tau=1.0, max_range=15.0)
    theta = torch.randn(3, 6, 6, dtype=torch.float64, requires_grad=True)
    z = layer(theta, generator=torch.Generator().manual_seed(1))
    assert isinstance(layer, LatentLayer)
    assert torch.allclose(z, z.transpose(-1, -2))
    assert torch.allclose(z.triu(1).sum((-1, -2)), torch.full((3,), 5.0, dtype=z.dtype))
    loss = layer.attach((z * torch.randn_like(z)).sum((-1, -2)))
    loss.sum().backward()
    assert theta.grad is not None and theta.grad.abs().sum() > 0


def test_st_sst_is_a_tree_forward() -> None:
    for layer in (
        latent("spanning_tree", "st-sst"),
        latent("spanning_tree", "sst", straight_through=True),
    ):
        theta = torch.randn(2, 5, 5)
        z = layer(theta, generator=torch.Generator().manual_seed(2))
        u = theta + layer.structure.gumbel(theta, generator=torch.Generator().manual_seed(2))
        assert torch.equal(z, solvers.max_spanning_tree(u))


def test_aimle_differences_and_state() -> None:
    fwd = latent("spanning_tree", "aimle", difference="forward")
    cen = latent("spanning_tree", "aimle", difference="central")
    assert not fwd.gradient.central and cen.gradient.central
    assert fwd.state_dict().keys() == cen.state_dict().keys()
    assert any("beta" in k or "lam" in k or "nnz" in k for k in cen.state_dict())
    with pytest.raises(ValueError, match="difference"):
        latent("spanning_tree", "aimle", difference="backward")


def test_pathwise_attach_is_identity_and_refuses_baseline() -> None:
    layer = latent("categorical", "gumbel-softmax")
    loss = torch.randn(4)
    assert layer.attach(loss) is loss
    with pytest.raises(ValueError, match="baseline"):
        layer.attach(loss, baseline=torch.zeros(4))


@pytest.mark.parametrize(
    ("structure", "shape", "opts", "count"),
    [
        ("spanning_tree", (3, 6, 6), {}, 10.0),
        ("k_subset", (3, 7), {"k": 2}, 2.0),
        ("categorical", (3, 7), {}, 1.0),
        ("arborescence", (3, 5, 5), {}, 4.0),
        ("edges", (3, 5, 5), {"symmetric": True}, None),
        ("matching", (3, 5, 5), {}, 5.0),
    ],
)
def test_sample_hard(
    structure: str, shape: tuple[int, ...], opts: dict, count: float | None
) -> None:
    method = METHODS[structure][0]
    layer = latent(structure, method, **opts)
    theta = torch.randn(shape)
    z = layer.sample_hard(theta, generator=torch.Generator().manual_seed(0))
    assert z.shape == theta.shape and not z.requires_grad
    assert set(z.unique().tolist()) <= {0.0, 1.0}
    if count is not None:
        assert torch.all(z.flatten(1).sum(-1) == count)
    if structure == "edges":
        assert torch.equal(z, z.transpose(-1, -2))
    plain = layer.sample_hard(theta, noise=False)
    assert torch.equal(plain, map_sample(structure, theta, noise=False, **layer.structure_options))


@pytest.mark.parametrize("lengths", [None, torch.tensor([2, 5, 3])])
def test_sample_hard_binary_tree(lengths: torch.Tensor | None) -> None:
    """The sample of a binary tree is its [*batch, n, n] adjacency (n - 1 edges)."""
    opts = {} if lengths is None else {"lengths": lengths}
    layer = latent("binary_tree", "t-reinforce", **opts)
    theta = torch.randn(3, 5)
    z = layer.sample_hard(theta, generator=torch.Generator().manual_seed(0))
    assert z.shape == (3, 5, 5)
    sizes = torch.full((3,), 5) if lengths is None else lengths
    torch.testing.assert_close(z.sum((-1, -2)), (sizes - 1).to(z.dtype))
    assert torch.equal(layer.sample_hard(theta, noise=False), solvers.binary_tree(theta, **opts))


def test_indep_categorical_channels() -> None:
    layer = latent("edges", "indep", categorical=True, straight_through=True)
    z = layer(torch.randn(2, 4, 4, 2))
    assert z.shape == (2, 4, 4, 2)
    off = ~torch.eye(4, dtype=torch.bool)
    assert torch.all(z.sum(-1)[:, off] == 1.0)


def test_aimle_reference_config_learns_lambda() -> None:
    from structgrad.estimators import AdaptiveTarget

    layer = latent(
        "spanning_tree",
        "aimle",
        difference="forward",
        target=AdaptiveTarget(0.0, step=1e-3),
        noise="sog",
        tau=1.0,
    )
    gen = torch.Generator().manual_seed(0)
    grads = []
    for _ in range(20):
        theta = torch.randn(4, 6, 6, requires_grad=True, generator=gen)
        z = layer(theta, generator=gen)
        (z * torch.randn(z.shape, generator=gen)).sum().backward()
        grads.append(theta.grad.abs().sum())
    assert grads[0] == 0  # λ starts at 0
    assert all(torch.isfinite(g) for g in grads)
    assert float(layer.state_dict()["target.beta"]) > 0  # λ adapts upwards


@pytest.mark.skipif("reinforce" not in METHODS["categorical"], reason="no score functions")
def test_per_graph_loss_on_per_edge_categoricals() -> None:
    layer = latent("categorical", "reinforce", score="trace", baseline=None)
    logits = torch.randn(3, 6, 2, requires_grad=True)
    z = layer(logits)  # [B, E, C]
    loss = (z[..., 1] * torch.arange(6.0)).sum(-1)  # [B]: one loss per graph
    out = layer.attach(loss)
    assert out.shape == (3,) and torch.equal(out, loss)
    out.sum().backward()
    score = z - torch.softmax(logits.detach(), -1)  # ∇ log p of each edge's choice
    assert torch.allclose(logits.grad, loss[:, None, None] * score, atol=1e-6)


@pytest.mark.parametrize(
    ("structure", "method"), [(s, m) for s, m in PAIRS if s in ("categorical", "k_subset")]
)
def test_lengths_on_a_structure_without_them_get_one_message(structure: str, method: str) -> None:
    # Four wordings, one of them "unknown options ['lengths']; accepted: none".
    options = {"k": 2} if structure == "k_subset" else {}
    layer = latent(
        structure, method, **options, **({"event_shape": (4,)} if method == "relax" else {})
    )
    match = re.escape(f"'{method}' of {structure} takes no lengths: mask entries with -inf logits")
    with pytest.raises(ValueError, match=match):
        layer(torch.randn(2, 4), lengths=torch.tensor([2, 3]))
