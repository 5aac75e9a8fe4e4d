import math

import pytest
import torch

from structgrad.models import nri

DTYPES = [torch.float32, torch.float64]


# --- layouts -----------------------------------------------------------------


def test_off_diagonal_order_is_nri() -> None:
    receivers, senders = nri.off_diagonal_indices(3)
    assert receivers.tolist() == [0, 0, 1, 1, 2, 2]
    assert senders.tolist() == [1, 2, 0, 2, 0, 1]


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_layout_round_trips(n: int) -> None:
    e = torch.randn(4, n * (n - 1))
    m = nri.edges_to_matrix(e)
    assert m.shape == (4, n, n)
    assert torch.all(torch.diagonal(m, dim1=-2, dim2=-1) == 0)
    assert torch.equal(nri.matrix_to_edges(m), e)
    receivers, senders = nri.off_diagonal_indices(n)
    assert torch.equal(m[:, receivers, senders], e)
    c = torch.randn(4, n * (n - 1), 3)
    assert torch.equal(nri.matrix_to_edges(nri.edges_to_matrix(c, channels=True), channels=True), c)
    u = torch.randn(2, n * (n - 1) // 2)
    s = nri.upper_to_matrix(u, n)
    assert torch.equal(s, s.transpose(-1, -2))
    assert torch.equal(nri.matrix_to_upper(s), u)
    assert n == nri.n_nodes_from_edges(n * (n - 1))


def test_symmetrize_and_edge_types() -> None:
    m = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    assert torch.equal(nri.symmetrize(m), torch.tensor([[0.0, 2.0], [2.0, 0.0]]))
    x = torch.tensor([0.0, 1.0, 0.25])
    assert torch.equal(
        nri.as_edge_types(x, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.75, 0.25]])
    )
    assert nri.as_edge_types(x, 1).shape == (3, 1)
    with pytest.raises(ValueError, match="edge_types"):
        nri.as_edge_types(x, 3)


def test_layout_errors() -> None:
    with pytest.raises(ValueError, match="n\\(n-1\\)"):
        nri.edges_to_matrix(torch.zeros(7))
    with pytest.raises(ValueError, match="upper-triangle"):
        nri.upper_to_matrix(torch.zeros(5), 4)


def test_layout_refuses_sparse_meta_and_float8_tensors() -> None:
    # A sparse edge matrix gave a result, a meta or float8 one failed inside an op.
    with pytest.raises(TypeError, match=r"^matrix must be a dense tensor, got layout"):
        nri.matrix_to_edges(torch.eye(3).to_sparse())
    with pytest.raises(TypeError, match="is a meta tensor"):
        nri.matrix_to_edges(torch.zeros(3, 3, device="meta"))
    with pytest.raises(TypeError, match=r"has dtype torch\.float8_e4m3fn"):
        nri.symmetrize(torch.zeros(4, 3, 3).to(torch.float8_e4m3fn))


# --- encoder and decoder -------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factor", [True, False])
def test_encoder_shapes_and_gradients(dtype: torch.dtype, factor: bool) -> None:
    torch.manual_seed(0)
    b, n, t, d = 3, 5, 4, 2
    enc = nri.MLPEncoder(t * d, 16, 2, factor=factor, baseline=True, n_nodes=n).to(dtype)
    x = torch.randn(b, n, t, d, dtype=dtype, requires_grad=True)
    logits, base = enc(x)
    assert logits.shape == (b, n * (n - 1), 2) and logits.dtype == dtype
    assert base is not None and base.shape == (b,)
    (logits.square().sum() + base.sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())
    enc.eval()
    assert enc(x)[0].shape == (b, n * (n - 1), 2)


def test_encoder_init_and_no_baseline() -> None:
    enc = nri.MLPEncoder(8, 16, 1)
    assert enc(torch.randn(2, 4, 8))[1] is None
    assert torch.all(enc.mlp1.fc1.bias == 0.1) and torch.all(enc.fc_out.bias == 0.1)
    with pytest.raises(ValueError, match="n_nodes"):
        nri.MLPEncoder(8, 16, 1, baseline=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pred_steps", [1, 2, 5])
def test_decoder_shapes_and_gradients(dtype: torch.dtype, pred_steps: int) -> None:
    torch.manual_seed(0)
    b, n, t, d = 2, 4, 6, 2
    dec = nri.MLPDecoder(d, 2, 8, 8, 8, dropout=0.1).to(dtype)
    x = torch.randn(b, n, t, d, dtype=dtype, requires_grad=True)
    rel = torch.rand(b, n * (n - 1), 2, dtype=dtype, requires_grad=True)
    out = dec(x, rel, pred_steps=pred_steps)
    assert out.shape == (b, n, t - 1, d) and out.dtype == dtype
    out.square().sum().backward()
    assert rel.grad is not None and torch.isfinite(rel.grad).all() and rel.grad.abs().sum() > 0
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_decoder_rollout_restarts_from_ground_truth() -> None:
    torch.manual_seed(0)
    b, n, t, d = 2, 3, 7, 2
    dec = nri.MLPDecoder(d, 2, 8, 8, 8).eval()
    x = torch.randn(b, n, t, d)
    rel = torch.rand(b, n * (n - 1), 2)
    # Teacher forcing: frame t+1 is one step from the true frame t.
    tf = dec(x, rel, pred_steps=1)
    for s in range(t - 1):
        one = dec.step(x[:, :, s].unsqueeze(1), rel.unsqueeze(1))[:, 0]
        assert torch.allclose(tf[:, :, s], one, atol=1e-6)
    # Rollout of P = 3: restarts at frames 0 and 3; other frames are never read.
    y = x.clone()
    y[:, :, [1, 2, 4, 5, 6]] += 1.0
    assert torch.allclose(dec(x, rel, pred_steps=3), dec(y, rel, pred_steps=3))
    two = dec.step(dec.step(x[:, :, :1].transpose(1, 2), rel.unsqueeze(1)), rel.unsqueeze(1))
    assert torch.allclose(dec(x, rel, pred_steps=3)[:, :, 1], two[:, 0], atol=1e-6)
    # P = T - 1: one rollout from frame 0 (no wasted rollout from the last frame).
    full = dec(x, rel, pred_steps=t - 1)
    state = x[:, :, :1].transpose(1, 2)
    for s in range(t - 1):
        state = dec.step(state, rel.unsqueeze(1))
        assert torch.allclose(full[:, :, s], state[:, 0], atol=1e-6)
    z = x.clone()
    z[:, :, 1:] += 1.0
    assert torch.equal(dec(z, rel, pred_steps=t - 1), full)


def test_decoder_skip_first_ignores_no_edge_channel() -> None:
    torch.manual_seed(0)
    dec = nri.MLPDecoder(2, 2, 8, 8, 8, skip_first=True)
    x = torch.randn(1, 3, 4, 2)
    rel = torch.rand(1, 6, 2)
    other = rel.clone()
    other[..., 0] = torch.rand(1, 6)
    assert torch.allclose(dec(x, rel), dec(x, other))
    with pytest.raises(ValueError, match="edge types"):
        dec(x, torch.rand(1, 6, 3))


# --- objective -------------------------------------------------------------------


def test_nll_gaussian_by_hand() -> None:
    pred = torch.zeros(2, 3, 4, 2)
    target = torch.zeros(2, 3, 4, 2)
    target[0, 1, 2, 0] = 1.0
    target[1] = 0.5
    nll = nri.nll_gaussian(pred, target, var=5e-5)
    assert torch.allclose(nll, torch.tensor([1.0 / (2 * 5e-5) / 3, 24 * 0.25 / (2 * 5e-5) / 3]))
    assert nri.VARIANCE == 5e-5


def _gumbel_kl_quadrature(theta: float) -> float:
    u = torch.linspace(-20.0, 40.0, 400_001, dtype=torch.float64)

    def logp(mu: float) -> torch.Tensor:
        return -(u - mu) - torch.exp(-(u - mu))

    p = logp(theta).exp()
    return float(torch.trapezoid(p * (logp(theta) - logp(0.0)), u))


@pytest.mark.parametrize("theta", [-2.0, -0.3, 0.0, 0.7, 3.0])
def test_kl_gumbel_is_the_analytic_gumbel_kl(theta: float) -> None:
    logits = torch.full((1, 1), theta, dtype=torch.float64)
    kl = nri.kl_gumbel(logits, n_nodes=1)
    assert kl.item() == pytest.approx(theta + math.exp(-theta) - 1.0, abs=1e-12)
    assert kl.item() == pytest.approx(_gumbel_kl_quadrature(theta), abs=1e-6)


def test_kl_gumbel_sums_all_entries_over_n() -> None:
    logits = torch.tensor([[[0.0], [1.0]], [[2.0], [-1.0]]])
    want = torch.tensor([math.exp(-1.0), 1 + math.exp(-2.0) + math.exp(1.0) - 2.0]) / 4
    assert torch.allclose(nri.kl_gumbel(logits, 4), want)


def test_kl_gumbel_is_finite_and_accurate_for_far_logits_in_float32() -> None:
    # Issue 12: e^{-θ} in float32 overflowed at θ = -89 (the KL went inf/NaN) and
    # the sum of 90 entries lost digits; the float64 sum is exact.
    logits = torch.tensor([[-80.0, 450.0, 1e-4, -1e-4]])
    kl = nri.kl_gumbel(logits, 1)
    want = sum(t + math.expm1(-t) for t in (-80.0, 450.0, 1e-4, -1e-4))
    assert kl.dtype == torch.float32 and torch.isfinite(kl).all()
    assert kl.item() == pytest.approx(want, rel=1e-6)


def test_kl_gumbel_keeps_each_edges_gradient_past_the_dtype_range() -> None:
    # One logit at -100 in float32 put the per-graph KL past float32's range;
    # its clamp then passed no gradient to any edge of the graph.
    x = torch.tensor([[-100.0, 0.5, 2.0], [-10.0, 0.5, 2.0]], requires_grad=True)
    kl = nri.kl_gumbel(x, 3)
    kl.sum().backward()
    assert kl[0] == torch.finfo(torch.float32).max  # (its value: the largest)
    want = [-math.expm1(-t) / 3 for t in (0.5, 2.0)]
    torch.testing.assert_close(x.grad[:, 1:], torch.tensor([want, want]))
    # the far entry's own gradient is held finite (e^{100} does not fit float32)
    assert torch.isfinite(x.grad).all() and x.grad[0, 0] < -1e31
    # ±inf locations get none, and leave the others theirs
    y = torch.tensor([[-math.inf, 0.5, 2.0], [math.inf, 0.5, 2.0]], requires_grad=True)
    nri.kl_gumbel(y, 3).sum().backward()
    assert y.grad[:, 0].eq(0).all() and torch.allclose(y.grad[:, 1:], x.grad[:, 1:])
    # held entries stay finite under a scaled loss (a β·KL weight), and their
    # float64 terms do not overflow the sum of the gradient path (it was NaN)
    z = torch.full((1, 6), -100.0, requires_grad=True)
    (1e4 * nri.kl_gumbel(z, 1)).sum().backward()
    assert torch.isfinite(z.grad).all() and (z.grad < 0).all()
    w = torch.full((1, 6), -708.0, dtype=torch.float64, requires_grad=True)
    kl = nri.kl_gumbel(w, 3)
    kl.sum().backward()
    assert torch.isfinite(kl).all() and torch.isfinite(w.grad).all()


def test_kl_categorical_uniform_by_hand() -> None:
    logits = torch.log(torch.tensor([[[0.25, 0.75], [0.5, 0.5]]]))
    want = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert torch.allclose(nri.kl_categorical_uniform(logits, 2), torch.tensor([want / 2]))
    binary = torch.log(torch.tensor([[3.0, 1.0]]))  # log-odds of p = 0.75 and 0.5
    assert torch.allclose(
        nri.kl_categorical_uniform(binary, 2, binary=True), torch.tensor([want / 2])
    )


def test_elbo_terms() -> None:
    pred, target = torch.zeros(2, 3, 4, 2), torch.ones(2, 3, 4, 2)
    logits = torch.zeros(2, 6, 1)
    terms = nri.elbo(pred, target, logits, var=0.5)
    assert torch.allclose(terms.nll, torch.full((2,), 8.0))
    assert torch.allclose(terms.kl, torch.zeros(2))
    assert torch.allclose(terms.loss, -terms.elbo)
    cat = nri.elbo(pred, target, torch.zeros(2, 6, 2), kl="categorical")
    assert torch.allclose(cat.kl, torch.zeros(2), atol=1e-7)
    assert nri.elbo(pred, target, logits, kl="binary").kl.shape == (2,)
    with pytest.raises(ValueError, match="kl must be"):
        nri.elbo(pred, target, logits, kl="normal")


# --- edge metrics ----------------------------------------------------------------


def test_edge_metrics_by_hand() -> None:
    target = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    sample = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0, 0.0]])
    m = nri.edge_metrics(sample, target)
    # "edge" channel: TP 1, FP 1, FN 1, TN 3; "no edge" channel: TP 1, FP 3.
    assert m.channel == 1
    assert (m.accuracy, m.precision, m.recall) == pytest.approx((4 / 6, 0.5, 0.5))


def test_edge_metrics_picks_the_best_channel() -> None:
    target = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    flipped = torch.tensor([[0.0, 1.0, 1.0, 1.0]])  # the "off" channel finds the edge
    m = nri.edge_metrics(flipped, target)
    assert m.channel == 0
    assert (m.accuracy, m.precision, m.recall) == pytest.approx((1.0, 1.0, 1.0))
    onehot = torch.stack([1 - flipped, flipped], dim=-1)
    assert nri.edge_metrics(onehot, target, channels=True) == m
    # A fixed channel: the "edge" channel of the flipped sample finds nothing.
    edge = nri.edge_metrics(flipped, target, channel=1)
    assert edge.channel == 1 and (edge.precision, edge.recall) == pytest.approx((0.0, 0.0))
    with pytest.raises(ValueError, match="channel"):
        nri.edge_metrics(flipped, target, channel=2)


def test_edge_metrics_mean_of_ratios_over_samples_and_graphs() -> None:
    target = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])  # [B=2, E=4]
    samples = torch.tensor(
        [
            [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]],
            [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
        ]
    )  # [S=2, B=2, E=4]
    m = nri.edge_metrics(samples, target)
    assert m.channel == 1
    # precisions 1, 1/2, 1, (none: skipped); recalls 1, 1, 1/2, 0
    assert m.precision == pytest.approx((1 + 0.5 + 1) / 3)
    assert m.recall == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert m.accuracy == pytest.approx((1 + 0.75 + 0.75 + 0.75) / 4)


def test_kl_categorical_uniform_with_a_masked_edge_type() -> None:
    # 0 · log 0 = 0: a -inf logit gave 0 · -inf = NaN.
    want = torch.tensor([math.log(2.0) / 2])
    got = nri.kl_categorical_uniform(torch.tensor([[[0.0, -math.inf]]]), 2)
    torch.testing.assert_close(got, want)
    got = nri.kl_categorical_uniform(torch.tensor([[-math.inf]]), 2, binary=True)
    torch.testing.assert_close(got, want)


def test_edge_metrics_takes_bool_samples() -> None:
    target = torch.tensor([[1.0, 0.0, 1.0]])
    samples = torch.tensor([[True, False, False]])
    assert nri.edge_metrics(samples, target) == nri.edge_metrics(samples.float(), target)


def test_empty_batches_and_mismatched_logits_are_named() -> None:
    with pytest.raises(ValueError, match="B >= 1"):
        nri.MLPEncoder(4, 8)(torch.randn(0, 3, 2, 2))
    with pytest.raises(ValueError, match="B >= 1"):
        nri.MLPDecoder(2, 2, 8, 8, 8)(torch.randn(0, 3, 4, 2), torch.rand(0, 6, 2))
    pred = torch.randn(2, 3, 3, 2)
    with pytest.raises(ValueError, match="for the B = 2 graphs"):
        nri.elbo(pred, pred, torch.randn(1, 6, 1))


def test_boolean_settings_must_be_booleans() -> None:
    with pytest.raises(TypeError, match="factor must be True or False"):
        nri.MLPEncoder(8, 16, 2, factor="no")
