import math

import pytest
import torch

from structgrad.testing import conformance, traces


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


EXACT = torch.tensor([[0.5, -1.0, 0.0], [2.0, 0.25, -0.75]], dtype=torch.float64)


def _noisy(bias: float, scale: float = 1.0) -> conformance.Draw:
    def draw(logits: torch.Tensor, m: int, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn((m, *logits.shape), generator=generator, dtype=torch.float64)
        return scale * EXACT + bias + noise

    return draw


def test_unbiased_noise_passes() -> None:
    report = conformance.evaluate(
        _noisy(0.0), torch.zeros(2, 3), EXACT, n_draws=20_000, generator=_gen(0), chunk=3_000
    )
    conformance.assert_unbiased(report)
    assert report.n_draws == 20_000 and report.cosine > 0.999
    # Unit noise: per-entry variance 1, standard error 1 / sqrt(n).
    assert report.total_variance == pytest.approx(6.0, rel=0.05)
    torch.testing.assert_close(
        report.stderr, torch.full((2, 3), 20_000**-0.5, dtype=torch.float64), rtol=0.05, atol=0
    )
    row = report.as_row()
    assert set(row) == {"cosine", "rel. bias", "total var.", "max |z|", "draws", "ms/draw"}
    assert row["draws"] == 20_000 and row["max |z|"] == report.max_z < 4.0


def test_biased_estimator_fails_with_a_clear_message() -> None:
    report = conformance.evaluate(
        _noisy(0.1, scale=0.8), torch.zeros(2, 3), EXACT, n_draws=20_000, generator=_gen(1)
    )
    assert report.cosine < 0.999 and report.relative_bias > 0.1
    with pytest.raises(AssertionError, match=r"entry \(\d, \d\) has z = .* standard error"):
        conformance.assert_unbiased(report)


def test_chunks_do_not_change_the_statistics() -> None:
    pool = 3.0 + torch.randn((5_000, 2, 3), generator=_gen(2), dtype=torch.float64)

    def replay(logits: torch.Tensor, m: int, generator: list[int]) -> torch.Tensor:
        generator[0] += m  # the "generator" is a cursor into the pool
        return pool[generator[0] - m : generator[0]]

    reports = [
        conformance.evaluate(
            replay, torch.zeros(2, 3), EXACT, n_draws=5_000, generator=[0], chunk=c
        )
        for c in (5_000, 7, 1_000)
    ]
    torch.testing.assert_close(reports[0].mean, pool.mean(0), rtol=1e-12, atol=0)
    torch.testing.assert_close(reports[0].stderr, pool.std(0) / 5_000**0.5, rtol=1e-10, atol=0)
    for r in reports[1:]:
        torch.testing.assert_close(r.mean, reports[0].mean, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(r.stderr, reports[0].stderr, rtol=1e-10, atol=1e-12)


def test_zero_standard_error_entries() -> None:
    exact = EXACT.clone()

    def deterministic(logits: torch.Tensor, m: int, generator: torch.Generator) -> torch.Tensor:
        return exact.expand(m, 2, 3).clone()

    # Exact in every draw (standard error 0): no z-score, passes.
    report = conformance.evaluate(deterministic, torch.zeros(2, 3), EXACT, n_draws=10)
    assert report.max_z == 0.0 and report.cosine == pytest.approx(1.0)
    conformance.assert_unbiased(report)
    # Off by 1e-3 at one entry, deterministically: a huge z at that entry (the
    # rounding floor, eps^(3/4), is all that stands for the error).
    exact[1, 2] += 1e-3
    report = conformance.evaluate(deterministic, torch.zeros(2, 3), EXACT, n_draws=10)
    assert report.max_z > 1e6 and report.worst == (1, 2)
    with pytest.raises(AssertionError, match=r"entry \(1, 2\)"):
        conformance.assert_unbiased(report)


def test_bad_draws() -> None:
    def wrong(logits: torch.Tensor, m: int, generator: torch.Generator) -> torch.Tensor:
        return torch.zeros(m, 3)

    with pytest.raises(ValueError, match="shape"):
        conformance.evaluate(wrong, torch.zeros(2, 3), EXACT, n_draws=10)

    def nan(logits: torch.Tensor, m: int, generator: torch.Generator) -> torch.Tensor:
        return torch.full((m, 2, 3), math.nan)

    with pytest.raises(ValueError, match="non-finite"):
        conformance.evaluate(nan, torch.zeros(2, 3), EXACT, n_draws=10)


TABLE = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0], dtype=torch.float64)


def _reinforce(logits: torch.Tensor, m: int, generator: torch.Generator) -> torch.Tensor:
    """Score-function estimator of ∇ E[TABLE[x]], x ~ softmax(logits), in plain torch."""
    probs = logits.softmax(-1)
    x = torch.multinomial(probs, m, replacement=True, generator=generator)  # [m]
    score = torch.nn.functional.one_hot(x, logits.shape[-1]).to(probs) - probs  # ∇ log p(x)
    return TABLE[x, None] * score


def test_reinforce_for_a_categorical_passes() -> None:
    theta = torch.randn(5, generator=_gen(3), dtype=torch.float64)
    _, exact = traces.exact_gradient("categorical", theta, TABLE)
    report = conformance.evaluate(_reinforce, theta, exact, n_draws=40_000, generator=_gen(4))
    conformance.assert_unbiased(report)
    assert report.cosine > 0.99


def _plackett_luce(logits: torch.Tensor, m: int, generator: torch.Generator) -> torch.Tensor:
    """Score-function estimator of ∇ E[f(top-3 mask)], the mask from θ + Gumbel."""
    n = logits.shape[-1]
    u = torch.rand((m, n), generator=generator, dtype=logits.dtype)
    order = (logits - (-u.log()).log()).topk(3, -1).indices  # [m, 3], Gumbel top-k
    mask = torch.zeros(m, n, dtype=logits.dtype).scatter(1, order, 1.0)
    value = torch.sin(mask @ TABLE) + mask[:, 0] * mask[:, 1]  # [m]
    # ∇ log p(order) = Σ_t [onehot(o_t) − softmax(θ over the items still left at t)].
    left, score = torch.ones(m, n, dtype=torch.bool), torch.zeros(m, n, dtype=logits.dtype)
    for t in range(3):
        p = torch.where(left, logits, -math.inf).softmax(-1)
        score += torch.nn.functional.one_hot(order[:, t], n).to(score) - p
        left = left.scatter(1, order[:, t : t + 1], False)
    return value[:, None] * score


def test_plackett_luce_reinforce_for_a_k_subset_passes() -> None:
    theta = torch.randn(5, generator=_gen(5), dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x @ TABLE) + x[:, 0] * x[:, 1]

    _, exact = traces.exact_gradient("k_subset", theta, f, k=3)
    report = conformance.evaluate(_plackett_luce, theta, exact, n_draws=40_000, generator=_gen(6))
    conformance.assert_unbiased(report)
    assert report.cosine > 0.98


def test_readme_examples_run() -> None:
    from pathlib import Path

    from structgrad.testing import readme

    path = Path(__file__).parents[1] / "README.md"
    blocks = readme.python_blocks(path)
    assert len(blocks) == 2
    for code in blocks:
        readme.run_block(code, path)


@pytest.mark.parametrize("seed", range(4))
def test_float32_draws_get_a_z_score_from_their_standard_error(seed: int) -> None:
    # sqrt(eps) = 3.5e-4 used to be the "negligible" threshold: an unbiased
    # float32 estimator with a smaller standard error got z = ±inf.
    exact = torch.tensor([1.0, -1.0, 0.5, 0.2], dtype=torch.float64)

    def draw(logits: torch.Tensor, m: int, g: torch.Generator) -> torch.Tensor:
        return (exact + 0.03 * torch.randn(m, 4, generator=g, dtype=torch.float64)).float()

    gen = torch.Generator().manual_seed(seed)
    report = conformance.evaluate(draw, torch.zeros(4), exact, n_draws=10_000, generator=gen)
    assert report.max_z < 5
    conformance.assert_unbiased(report)

    def biased(logits: torch.Tensor, m: int, g: torch.Generator) -> torch.Tensor:
        return (exact + 2e-4 + 1e-5 * torch.randn(m, 4, generator=g, dtype=torch.float64)).float()

    report = conformance.evaluate(biased, torch.zeros(4), exact, n_draws=1000, generator=gen)
    with pytest.raises(AssertionError):
        conformance.assert_unbiased(report)


def test_each_entry_gets_a_rounding_floor_of_its_own_size() -> None:
    # One floor from the largest entry (1e4 · 6.5e-6 = 0.065) waved through a
    # float32 bias of 0.05 on an entry of 0.01 (some 15,000 standard errors).
    exact = torch.tensor([1e4, 0.01, -0.02], dtype=torch.float64)

    def draw(bias: float) -> conformance.Draw:
        def f(logits: torch.Tensor, m: int, g: torch.Generator) -> torch.Tensor:
            noise = 1e-4 * torch.randn(m, 3, generator=g, dtype=torch.float64)
            return (exact + torch.tensor([0.0, bias, 0.0], dtype=torch.float64) + noise).float()

        return f

    gen = torch.Generator().manual_seed(0)
    report = conformance.evaluate(draw(0.05), torch.zeros(3), exact, n_draws=1000, generator=gen)
    assert report.worst == (1,) and report.max_z > 1e3
    with pytest.raises(AssertionError, match=r"entry \(1,\)"):
        conformance.assert_unbiased(report)
    # the large entry keeps a floor of its own size (its float32 rounding is ~5e-4)
    report = conformance.evaluate(draw(0.0), torch.zeros(3), exact, n_draws=1000, generator=gen)
    assert report.tolerance[0] > 0.06 and report.tolerance[1] < 1e-5
    conformance.assert_unbiased(report)
