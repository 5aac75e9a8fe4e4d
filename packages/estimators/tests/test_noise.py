import math

import pytest
import torch

from structgrad.estimators import Gumbel, Normal, SumOfGamma
from structgrad.estimators.perturbation._noise import resolve_noise

EULER = 0.5772156649015329
F64 = {"dtype": torch.float64, "device": torch.device("cpu")}


def moments(x: torch.Tensor) -> tuple[float, float, float]:
    m = x.mean()
    c = x - m
    var = (c**2).mean()
    return float(m), float(var), float((c**3).mean() / var**1.5)


def test_gumbel_moments():
    x = Gumbel().sample((400_000,), generator=torch.Generator().manual_seed(0), **F64)
    mean, var, skew = moments(x)
    assert mean == pytest.approx(EULER, abs=0.01)
    assert var == pytest.approx(math.pi**2 / 6, abs=0.02)
    assert skew == pytest.approx(1.1395, abs=0.05)
    y = Gumbel(loc=2.0, scale=0.5).sample((400_000,), generator=torch.Generator(), **F64)
    assert float(y.mean()) == pytest.approx(2.0 + 0.5 * EULER, abs=0.01)


@pytest.mark.parametrize("k", [1.0, 5.0, 50.0])
def test_sum_of_gamma_sum_of_k_draws_matches_finite_terms_law(k):
    # the sum of k draws is Σ_{i≤s} E_i / i − log s: mean H_s − log s, variance Σ 1/i²
    s, n = 10, 20_000
    kk = int(k)
    x = SumOfGamma(k, terms=s).sample((n, kk), generator=torch.Generator().manual_seed(1), **F64)
    total = x.sum(-1)
    harmonic = sum(1 / i for i in range(1, s + 1))
    mean, var, _ = moments(total)
    assert mean == pytest.approx(harmonic - math.log(s), abs=0.03)
    assert var == pytest.approx(sum(1 / i**2 for i in range(1, s + 1)), abs=0.05)
    # one draw has mean (H_s − log s)/k
    assert float(x.mean()) == pytest.approx((harmonic - math.log(s)) / k, abs=0.03 / math.sqrt(k))


@pytest.mark.parametrize("k", [1.0, 10.0])
def test_sum_of_gamma_with_many_terms_matches_gumbel(k):
    # s = 200 terms: H_s − log s = 0.5797, Σ 1/i² = 1.6399 (Gumbel: 0.5772, 1.6449)
    n, kk = 20_000, int(k)
    x = SumOfGamma(k, terms=200).sample((n, kk), generator=torch.Generator().manual_seed(2), **F64)
    mean, var, skew = moments(x.sum(-1))
    assert mean == pytest.approx(EULER, abs=0.02)
    assert var == pytest.approx(math.pi**2 / 6, abs=0.05)
    assert skew == pytest.approx(1.1395, abs=0.1)


@pytest.mark.parametrize("noise", [Gumbel(), SumOfGamma(3.0), Normal(2.0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_device_and_generator(noise, dtype):
    dev = torch.device("cpu")
    a = noise.sample((5, 7), dtype=dtype, device=dev, generator=torch.Generator().manual_seed(3))
    b = noise.sample((5, 7), dtype=dtype, device=dev, generator=torch.Generator().manual_seed(3))
    c = noise.sample((5, 7), dtype=dtype, device=dev, generator=torch.Generator().manual_seed(4))
    assert a.dtype == dtype and a.device == dev and a.shape == (5, 7)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_noise_on_cuda():
    dev = torch.device("cuda")
    for noise in [Gumbel(), SumOfGamma(2.0), Normal()]:
        x = noise.sample((3,), dtype=torch.float32, device=dev, generator=None)
        assert x.device.type == "cuda"


def test_gumbel_uniform_extremes_stay_finite(monkeypatch):
    zeros = torch.zeros(4)
    monkeypatch.setattr(torch, "rand", lambda *a, **k: zeros.clone())
    assert torch.isfinite(Gumbel().sample((4,), **F64 | {"dtype": torch.float32})).all()


@pytest.mark.parametrize("noise", [Gumbel(0.3, 2.0), Normal(1.5)])
def test_score_is_minus_grad_log_density(noise):
    eps = torch.linspace(-2, 3, 11, dtype=torch.float64, requires_grad=True)
    if isinstance(noise, Gumbel):
        x = (eps - noise.loc) / noise.scale
        logp = -(x + torch.exp(-x)) - math.log(noise.scale)
    else:
        logp = -0.5 * (eps / noise.std) ** 2
    (grad,) = torch.autograd.grad(logp.sum(), eps)
    assert torch.allclose(noise.score(eps.detach()), -grad)


def test_sum_of_gamma_has_no_score():
    with pytest.raises(ValueError, match="density"):
        SumOfGamma(2.0).score(torch.zeros(3))


def test_resolve_and_bad_parameters():
    assert isinstance(resolve_noise("Gumbel"), Gumbel)
    assert isinstance(resolve_noise("sog"), SumOfGamma)
    assert resolve_noise("none") is None and resolve_noise(None) is None
    with pytest.raises(ValueError, match="unknown noise"):
        resolve_noise("uniform")
    with pytest.raises(ValueError, match="needs k"):
        SumOfGamma().sample((2,), **F64)
    for bad in [lambda: Gumbel(scale=0), lambda: Normal(-1), lambda: SumOfGamma(0.0)]:
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError, match="terms"):
        SumOfGamma(1.0, terms=0)
    assert SumOfGamma(terms=7).with_k(4).k == 4.0


@pytest.mark.parametrize("noise", ["gumbel", "sog", "normal"])
@pytest.mark.parametrize("dynamic", [False, True])
def test_noisy_layers_compile_with_symbolic_sizes(noise: str, dynamic: bool) -> None:
    """The noise is drawn without ``generator=None``, which does not trace with ``dynamic=True``."""
    from structgrad.estimators import imle
    from structgrad.testing.compiled import assert_compiles

    layer = imle("k_subset", k=2, noise=noise)
    assert_compiles(layer, torch.randn(4, 7), dynamic=dynamic)
