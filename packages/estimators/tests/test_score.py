import importlib.util
import math
import warnings
from pathlib import Path

import pytest
import torch

import structgrad.estimators as E
from structgrad.testing import toys

_spec = importlib.util.spec_from_file_location(
    "_score_helpers", Path(__file__).with_name("_score_helpers.py")
)
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)

ROWS = {"categorical": 20_000, "k_subset": 20_000}
CONFIGS = [
    ("trace", None, None),
    ("noise", None, None),
    ("trace", "ema", None),
    ("noise", "ema", None),
    ("trace", "nvil", None),
    ("noise", "nvil", None),
    ("trace", "loo", 3),
    ("noise", "loo", 3),
    ("trace", None, 2),
]


def _layer(structure, score, baseline, samples, **extra):
    _, options = H.CASES[structure]
    return E.ScoreFunction(
        structure, score=score, baseline=baseline, samples=samples, **options, **extra
    )


# --- unbiasedness against the exact gradient ---


@pytest.mark.parametrize("structure", H.STRUCTURES)
@pytest.mark.parametrize(("score", "baseline", "samples"), CONFIGS)
def test_unbiased(structure, score, baseline, samples):
    theta, _ = H.instance(structure)
    exact = H.exact_gradient(structure, theta, H.CASES[structure][1])
    layer = _layer(structure, score, baseline, samples)
    rows = ROWS.get(structure, 10_000)
    if baseline in ("ema", "nvil"):
        H.estimates(layer, theta, 1000, seed=1)  # a non-trivial moving average
        assert int(layer.ema.steps) == 1
    if baseline == "nvil":
        with torch.no_grad():
            layer.nvil_bias.fill_(0.3)
    est = H.estimates(layer, theta, rows, seed=2)
    H.assert_unbiased(est, exact)


def test_brute_force_agrees_with_the_harness():
    traces = importlib.import_module("structgrad.testing.traces")
    for structure in ("categorical", "k_subset"):
        theta, options = H.instance(structure)
        want = H._brute_force(structure, theta, options)
        got = traces.exact_expectation(structure, theta, H.f, **options)
        assert float(got) == pytest.approx(float(want), rel=1e-10)


# --- variance: the trace score never loses to the noise score ---


TOY = {
    "categorical": lambda x: -(x * torch.arange(x.shape[-1], dtype=x.dtype)).sum(-1),
    "k_subset": lambda x: -x[:, :2].sum(-1),
    "matching": toys.matching_loss,
    "arborescence": toys.arborescence_loss,
    "spanning_tree": toys.spanning_tree_loss,
    "binary_tree": toys.binary_tree_loss,
}
TOY_SIZE = {"categorical": (8,), "k_subset": (8,), "binary_tree": (7,)}


@pytest.mark.parametrize("structure", [s for s in H.STRUCTURES if s in TOY])
def test_trace_score_has_lower_variance(structure):
    event = TOY_SIZE.get(structure, (5, 5))
    options = {"k": 3} if structure == "k_subset" else {}
    theta = torch.zeros(event, dtype=torch.float64)
    var = {}
    for score in ("trace", "noise"):
        layer = E.ScoreFunction(structure, score=score, **options)
        est = H.estimates(layer, theta, 4000, seed=3, loss_fn=TOY[structure])
        var[score] = float(est.var(0).sum())
    assert var["trace"] <= var["noise"], var


# --- the interface ---


def test_attach_value_is_the_loss_and_no_baseline_is_plain_reinforce():
    theta = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    layer = E.t_reinforce("categorical")
    x = layer(theta, generator=torch.Generator().manual_seed(0))
    loss = H.f(x)
    out = layer.attach(loss)
    assert torch.equal(out, loss)
    out.sum().backward()
    index = x.argmax(-1)
    # hand-written REINFORCE: f(x) ∇ log softmax(θ)_x
    want = torch.softmax(theta.detach(), -1)
    want = loss.detach().unsqueeze(-1) * (torch.nn.functional.one_hot(index, 5) - want)
    torch.testing.assert_close(theta.grad, want)


def test_loss_keeps_its_own_graph():
    theta = torch.randn(4, 5, requires_grad=True)
    w = torch.randn(5, requires_grad=True)
    layer = E.e_reinforce("categorical")
    x = layer(theta)
    out = layer.attach((x * w).sum(-1) ** 2)
    out.sum().backward()
    assert w.grad is not None and theta.grad is not None


def test_loo_equals_the_reference_normalisation():
    # mean_k (f_k − mean_{j≠k} f_j) ∇log p_k  ==  1/(K−1) Σ_k (f_k − mean f) ∇log p_k
    k = 4
    theta = torch.randn(3, 6, dtype=torch.float64)
    layer = E.t_reinforce_plus("k_subset", k=2, samples=k)
    th = theta.clone().requires_grad_(True)
    x = layer(th, generator=torch.Generator().manual_seed(5))
    loss = H.f(x.reshape(-1, 6)).reshape(k, 3)
    layer.attach(loss).mean(0).sum().backward()
    draw_layer = E.t_reinforce("k_subset", k=2, samples=k)
    th2 = theta.clone().requires_grad_(True)
    x2 = draw_layer(th2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(x, x2)
    trace = draw_layer.last_draw.trace
    logp = E.trace_log_prob("k_subset", trace, th2.expand(k, 3, 6), k=2)
    centred = loss - loss.mean(0)
    (centred * logp).sum().div(k - 1).backward()
    torch.testing.assert_close(th.grad, th2.grad)


def test_ema_is_read_before_it_is_updated_and_saved():
    layer = E.reinforce("categorical", baseline="ema", ema_decay=0.5)
    theta = torch.zeros(8, 3, requires_grad=True)
    layer(theta)
    layer.attach(torch.full((8,), 2.0)).sum().backward()
    # first call: baseline 0, so the gradient is 2 ∇log p; the average is now 2
    assert theta.grad.abs().sum() > 0
    assert float(layer.ema.value(theta)) == pytest.approx(2.0)
    theta.grad = None
    layer(theta)
    layer.attach(torch.full((8,), 2.0)).sum().backward()
    assert theta.grad.abs().max() < 1e-6  # baseline 2 cancels f = 2 exactly
    other = E.reinforce("categorical", baseline="ema", ema_decay=0.5)
    other.load_state_dict(layer.state_dict())
    assert float(other.ema.value(theta)) == pytest.approx(float(layer.ema.value(theta)))
    assert int(other.ema.steps) == 2
    layer.eval()
    layer(theta)
    layer.attach(torch.full((8,), 5.0))
    assert int(layer.ema.steps) == 2  # no update in eval mode


@pytest.mark.parametrize("score", ["trace", "noise"])
@pytest.mark.parametrize("baseline", ["ema", "nvil"])
def test_an_empty_batch_leaves_the_moving_average_unchanged(score, baseline):
    """The mean of an empty loss is NaN: it must not reach the average (nor count a step)."""

    def step(layer, theta, seed):
        theta = theta.clone().requires_grad_(True)
        x = layer(theta, generator=torch.Generator().manual_seed(seed))
        layer.attach(H.f(x)).sum().backward()
        return theta.grad

    theta = torch.randn(6, 5, dtype=torch.float64)
    warm = E.ScoreFunction("k_subset", k=2, score=score, baseline=baseline)
    fresh = E.ScoreFunction("k_subset", k=2, score=score, baseline=baseline)
    step(warm, theta, 0)  # a non-trivial average first
    state = {k: v.clone() for k, v in warm.state_dict().items()}
    empty = step(warm, theta[:0], 1)
    assert empty.shape == (0, 5)
    for key, value in warm.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert int(warm.ema.steps) == 1 and torch.isfinite(warm.ema.average)
    # ... so the next batch gets the gradient of a layer that never saw the empty one.
    step(fresh, theta, 0)
    after, want = step(warm, theta, 2), step(fresh, theta, 2)
    assert torch.isfinite(after).all() and torch.equal(after, want)
    assert torch.equal(warm.ema.average, fresh.ema.average)
    # The buffer itself, without a layer around it.
    ema = E.MovingAverage(0.9)
    ema.update(torch.zeros(0, 3))
    assert int(ema.steps) == 0 and float(ema.average) == 0.0
    assert float(ema.value(torch.zeros(()))) == 0.0


def test_nvil_trains_the_baseline_and_is_saved():
    layer = E.reinforce("categorical", baseline="nvil", ema_decay=0.0)
    theta = torch.zeros(8, 3, requires_grad=True)
    loss = torch.arange(8.0)
    layer(theta)
    out = layer.attach(loss)
    assert torch.equal(out, loss)
    out.mean().backward()
    # d/db mean (f − ema − b)² at ema = 0, b = 0: −2 mean f
    assert float(layer.nvil_bias.grad) == pytest.approx(-2 * 3.5)
    with torch.no_grad():
        layer.nvil_bias.fill_(1.25)
    other = E.reinforce("categorical", baseline="nvil")
    other.load_state_dict(layer.state_dict())
    assert float(other.nvil_bias.detach()) == 1.25 and int(other.ema.steps) == 1


def test_nvil_input_dependent_baseline_gets_the_regression_gradient():
    layer = E.reinforce("categorical", baseline="nvil")
    theta = torch.zeros(2, 5, 3, requires_grad=True)
    b = torch.zeros(2, 5, requires_grad=True)
    loss = torch.randn(2, 5)
    layer(theta)
    layer.attach(loss, baseline=b).sum().backward()
    torch.testing.assert_close(b.grad, -2 * loss)
    assert layer.nvil_bias.grad is None
    with pytest.raises(ValueError, match="broadcast"):
        layer(theta)
        layer.attach(loss, baseline=torch.zeros(3))


def test_two_batch_dims_and_samples_shapes_and_dtypes():
    for dtype in (torch.float32, torch.float64):
        theta = torch.randn(2, 3, 6, dtype=dtype, requires_grad=True)
        layer = E.e_reinforce_plus("k_subset", k=3, samples=4)
        x = layer(theta)
        assert x.shape == (4, 2, 3, 6) and x.dtype == dtype and not x.requires_grad
        assert (x.sum(-1) == 3).all()
        out = layer.attach(H.f(x.reshape(-1, 6)).reshape(4, 2, 3))
        assert out.shape == (4, 2, 3) and out.dtype == dtype
        out.mean(0).sum().backward()
        assert theta.grad.shape == theta.shape and torch.isfinite(theta.grad).all()


def test_noise_score_keeps_the_noise_of_float32_logits_at_a_large_offset():
    # θ − U in float32 at |θ| = 1e8 (spacing 8) rounded the Gumbel noise away:
    # the mean gradient was [0.001, 0.019, 0.036, 0.053] for [-0.375, ..., 0.375].
    c = torch.tensor([0.0, 1.0, 2.0, 3.0])
    exact = 0.25 * (c - 1.5)  # equal logits: d/dθ_i E[i] = p_i (i − 1.5)
    theta = torch.full((40_000, 4), 1e8, requires_grad=True)
    layer = E.e_reinforce("categorical")
    x = layer(theta, generator=torch.Generator().manual_seed(1))
    layer.attach((x * c).sum(-1)).sum().backward()
    g = theta.grad.double()
    z = (g.mean(0) - exact) / (g.std(0) / math.sqrt(len(g)))
    assert float(z.abs().max()) < 4.5, z


def test_an_empty_subset_reads_nothing_and_gets_no_gradient():
    # k = 0: the algorithm reads no utility; E-REINFORCE scored them all (variance only).
    theta = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    layer = E.e_reinforce("k_subset", k=0)
    x = layer(theta, generator=torch.Generator().manual_seed(0))
    layer.attach(x.sum(-1) + 1.0).sum().backward()
    assert float(x.abs().sum()) == 0 and torch.equal(theta.grad, torch.zeros_like(theta))


def test_generator_reproducibility():
    theta = torch.randn(5, 6, requires_grad=True)
    grads = []
    for _ in range(2):
        layer = E.t_reinforce("k_subset", k=2)
        x = layer(theta, generator=torch.Generator().manual_seed(11))
        layer.attach(H.f(x)).sum().backward()
        grads.append(theta.grad.clone())
        theta.grad = None
    assert torch.equal(grads[0], grads[1])


def test_masked_entries_are_never_drawn_and_get_no_gradient():
    theta = torch.randn(50, 5, dtype=torch.float64)
    theta[:, 1] = -torch.inf
    theta.requires_grad_(True)
    for layer in (E.t_reinforce("categorical"), E.e_reinforce("categorical")):
        x = layer(theta)
        assert (x[:, 1] == 0).all()
        layer.attach(H.f(x)).sum().backward()
        assert torch.isfinite(theta.grad).all() and (theta.grad[:, 1] == 0).all()
        theta.grad = None


@pytest.mark.parametrize("method", [E.reinforce, E.ScoreFunction])
def test_an_inference_mode_pass_keeps_the_state_loadable(method):
    # Buffers replaced under inference_mode were inference tensors, which a
    # later load_state_dict (a resume) could not update in place.
    options = {"baseline": "nvil"} if method is E.ScoreFunction else {}
    layer, fresh = (method("k_subset", k=2, **options) for _ in range(2))
    with torch.inference_mode():
        layer.attach(layer(torch.randn(4, 5)).sum(-1))
    assert int(layer.ema.steps) == 1  # trained state moves, as BatchNorm's does
    assert not any(t.is_inference() for t in layer.state_dict().values())
    layer.load_state_dict(fresh.state_dict())
    assert int(layer.ema.steps) == 0


# --- errors ---


def test_errors():
    with pytest.raises(ValueError, match="supported: categorical"):
        E.ScoreFunction("grid_path")
    with pytest.raises(ValueError, match="samples=K >= 2"):
        E.ScoreFunction("categorical", baseline="loo")
    with pytest.raises(ValueError, match="samples=K >= 2"):
        E.ScoreFunction("categorical", baseline="loo", samples=1)
    with pytest.raises(ValueError, match="score must be"):
        E.ScoreFunction("categorical", score="x")
    with pytest.raises(ValueError, match="baseline must be"):
        E.ScoreFunction("categorical", baseline="batch")
    with pytest.raises(ValueError, match="ema_decay"):
        E.ScoreFunction("categorical", baseline="ema", ema_decay=1.0)
    with pytest.raises(ValueError, match="unknown option"):
        E.ScoreFunction("categorical", k=2)
    # a missing k failed at the first draw only (no call can give it)
    for build in (E.t_reinforce, E.reinforce, E.e_reinforce_plus):
        with pytest.raises(ValueError, match=r"k_subset: missing required options \['k'\]"):
            build("k_subset")
    # option types: these escaped as OverflowError / TypeError from int() and
    # comparisons, or were taken (critic=5) and failed at the first draw
    for bad in (math.inf, [2], "2", 2.5, True):
        with pytest.raises(ValueError, match="samples"):
            E.ScoreFunction("categorical", samples=bad)
    for bad in ("0.9", None, math.nan):
        with pytest.raises(ValueError, match="ema_decay"):
            E.ScoreFunction("categorical", baseline="ema", ema_decay=bad)
    with pytest.raises(TypeError, match="critic must be a module or callable"):
        E.relax("categorical", critic=5)
    layer = E.t_reinforce("categorical", samples=2)
    with pytest.raises(ValueError, match="call the layer"):
        layer.attach(torch.zeros(2, 3))
    theta = torch.zeros(3, 4, requires_grad=True)
    layer(theta)
    with pytest.raises(ValueError, match=r"\[K, \*batch\] = \(2, 3\)"):
        layer.attach(torch.zeros(3))
    with pytest.raises(ValueError, match=r"floating torch.Tensor, got torch.int64$"):
        layer.attach(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"floating torch.Tensor, got list$"):
        layer.attach([0.0, 1.0])
    z = layer.last_draw.sample
    layer.attach(torch.zeros(2, 3), z)  # the sample names its draw
    assert layer.last_draw is None  # attached: the layer keeps nothing of the graph
    with pytest.raises(ValueError, match="each forward's draw is attached once"):
        layer.attach(torch.zeros(2, 3), z)
    z = layer(theta)
    with pytest.raises(ValueError, match="not this layer's last draw"):
        layer.attach(torch.zeros(2, 3), z.clone())
    # an earlier draw, passed explicitly, is attached after a later forward
    first = layer.draw(theta)
    layer(theta)
    assert layer.attach(torch.zeros(2, 3), first).shape == (2, 3)
    with pytest.raises(ValueError, match="only used with baseline='nvil'"):
        E.t_reinforce("categorical").attach(torch.zeros(3), baseline=torch.zeros(3))


def test_attach_takes_the_draw_with_gradients_or_warns():
    # A logging draw under no_grad replaced the training draw: the loss of one
    # was scored against the other's trace, a zero-mean gradient (silently).
    theta = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    w = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    exact = torch.func.grad(lambda t: (t.softmax(-1) * w).sum())(theta)
    layer = E.t_reinforce("categorical")
    gen = torch.Generator().manual_seed(0)
    x = theta.expand(40000, 3).clone().requires_grad_()
    z = layer(x, generator=gen)
    with torch.no_grad():
        logged = layer(x, generator=gen)
        assert layer.attach((w * logged).sum(-1)).shape == (40000,)  # evaluation: its own draw
    layer.attach((w * z).sum(-1)).mean().backward()
    torch.testing.assert_close(x.grad.sum(0), exact, atol=0.015, rtol=0)
    assert layer.last_draw is None
    # Two draws with gradients, then attach(loss): either could be meant; the
    # latest is taken (an evaluation pass with gradients on, then a step), with
    # a warning, once: later steps are not disturbed.
    a, b = (theta.expand(4, 3).clone().requires_grad_() for _ in range(2))
    _, z2 = layer(a), layer(b)
    with pytest.warns(UserWarning, match=r"replaced by a later forward .*attach\(loss, z\)"):
        layer.attach((w * z2).sum(-1)).sum().backward()
    assert a.grad is None and b.grad is not None
    for _ in range(2):
        z = layer(a)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            layer.attach((w * z).sum(-1)).sum().backward()
    _, z2 = layer(a), layer(b)
    with warnings.catch_warnings():  # the sample names its draw: no warning
        warnings.simplefilter("error")
        layer.attach((w * z2).sum(-1), z2).sum().backward()
    with torch.no_grad():  # an evaluation draw never attached does not disturb training
        layer(a)
    z = layer(a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer.attach((w * z).sum(-1)).sum().backward()


def test_gradient_scale_adds_up_over_samples():
    # K samples of a constant-free loss: sum over dim 0 = K x the mean estimate.
    theta = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    layer = E.t_reinforce("categorical", samples=3)
    x = layer(theta, generator=torch.Generator().manual_seed(0))
    loss = -x[..., 0]
    layer.attach(loss).sum().backward()
    p = torch.full((4,), 0.25, dtype=torch.float64)
    want = sum(float(loss[k, 0]) * (x[k, 0] - p) for k in range(3))
    torch.testing.assert_close(theta.grad[0], want)
    assert math.isfinite(float(theta.grad.sum()))


@pytest.mark.parametrize("structure", ["k_subset", *[s for s in H.STRUCTURES if s == "matching"]])
@pytest.mark.parametrize(
    "make",
    [E.t_reinforce, E.e_reinforce, E.t_reinforce_plus, E.e_reinforce_plus, E.reinforce],
)
def test_conformance_harness(structure, make):
    conformance = importlib.import_module("structgrad.testing.conformance")
    traces = importlib.import_module("structgrad.testing.traces")
    theta, options = H.instance(structure)
    _, exact = traces.exact_gradient(structure, theta, H.f, **options)
    layer = make(structure, **options)

    def draw(logits, m, generator):
        return H.estimates(
            layer, logits, m, seed=int(torch.randint(1 << 30, (1,), generator=generator))
        )

    report = conformance.evaluate(
        draw, theta, exact, n_draws=8000, chunk=4000, generator=torch.Generator().manual_seed(9)
    )
    conformance.assert_unbiased(report)


@pytest.mark.parametrize("preset", ["reinforce", "t-reinforce+"])
def test_a_layer_with_a_draw_copies_and_pickles(preset: str) -> None:
    # The last draw holds the caller's graph: deepcopy refused its non-leaf logits.
    import copy
    import io

    encoder = torch.nn.Linear(4, 6)
    layer = E.ScoreFunction("categorical", **E.score.PRESETS[preset])
    z = layer(encoder(torch.randn(3, 4)))
    layer.attach((z * torch.arange(6.0)).sum(-1), z).mean().backward()
    assert layer.last_draw is None  # attached: released
    z = layer(encoder(torch.randn(3, 4)))  # a draw not attached yet
    model = copy.deepcopy(torch.nn.ModuleDict({"encoder": encoder, "latent": layer}))
    assert model["latent"].last_draw is None and layer.last_draw is not None
    torch.save(layer, io.BytesIO())
    z = model["latent"](torch.randn(2, 6))
    assert model["latent"].attach(z.sum(-1), z).shape == (*z.shape[:-1],)


def test_moving_average_keeps_its_dtype_after_a_cast() -> None:
    """Its buffers are replaced on update (see MovingAverage.update), in their own dtype."""
    ema = E.MovingAverage(0.5).float()
    ema.update(torch.tensor([1.0, 3.0], dtype=torch.float64))
    ema.update(torch.tensor([4.0]))
    assert ema.average.dtype == torch.float32 and ema.steps.dtype == torch.int64
    # 0.5 · (0.5 · 0 + 0.5 · 2) + 0.5 · 4 = 2.5, corrected by 1 − 0.5² = 0.75
    assert ema.average.item() == 2.5 and int(ema.steps) == 2
    torch.testing.assert_close(ema.value(torch.zeros(())), torch.tensor(2.5 / 0.75))


@pytest.mark.parametrize("samples", [None, 3])
def test_a_draw_made_under_no_grad_attaches_the_same_gradient(samples):
    # With samples=K the logits were expanded under no_grad: the view was cut
    # off from the caller's logits and attach gave no gradient, silently.
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    grads = []
    for grad_mode in (torch.no_grad, torch.enable_grad):
        layer = E.reinforce("k_subset", k=2, score="trace", samples=samples)  # a fresh EMA
        theta = x.clone().requires_grad_(True)
        with grad_mode():
            z = layer(theta, generator=torch.Generator().manual_seed(1))
        layer.attach((z * torch.arange(5.0)).sum(-1)).sum().backward()
        grads.append(theta.grad)
    assert grads[0] is not None and grads[0].abs().sum() > 0
    assert torch.equal(grads[0], grads[1])
