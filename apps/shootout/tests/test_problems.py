import pytest
import torch
from shootout import problems as P


@pytest.mark.parametrize("structure", P.STRUCTURES)
def test_problem_is_seeded_and_f_is_nonlinear(structure):
    a, b = P.make_problem(structure, 3), P.make_problem(structure, 3)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.a, b.a)
    assert not torch.equal(a.logits, P.make_problem(structure, 4).logits)
    shape = (a.n,) if a.structure_ndim == 1 else (a.n, a.n)
    x, y = torch.rand(2, *shape, dtype=torch.float64)
    # Not linear: f(x + y) != f(x) + f(y) - f(0).
    zero = torch.zeros(shape, dtype=torch.float64)
    assert abs(float(a.f(x + y) - a.f(x) - a.f(y) + a.f(zero))) > 1e-9


def test_unknown_structure():
    with pytest.raises(ValueError, match="unknown structure 'grid'"):
        P.make_problem("grid")


def test_pam_reference_matches_exact_where_the_laws_coincide():
    # Kruskal on θ + G is the recursive-Gumbel law: the Monte Carlo identity must
    # agree with trace enumeration within its own standard error.
    problem = P.make_problem("spanning_tree", 0)
    exact = P.rg_reference(problem)
    mc = P.pam_reference(problem, 200_000, generator=torch.Generator().manual_seed(0))
    z = (mc.grad - exact.grad).abs() / mc.stderr.clamp(min=1e-12)
    assert float(z[problem.read_mask()].max()) < 5.0
    assert float(mc.grad[~problem.read_mask()].abs().max()) == 0.0


def test_pam_law_differs_from_rg_for_arborescence():
    problem = P.make_problem("arborescence", 0)
    rg = P.reference(problem, "rg", samples=10, seed=0)
    pam = P.reference(problem, "pam", samples=200_000, seed=0)
    assert pam.law == "pam" and pam.samples == 200_000 and rg.samples == 0
    z = (pam.grad - rg.grad).abs() / pam.stderr.clamp(min=1e-12)
    assert float(z.max()) > 5.0  # measurably different gradients
