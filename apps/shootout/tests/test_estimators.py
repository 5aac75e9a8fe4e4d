import pytest
import torch
from shootout import estimators as E
from shootout import problems as P
from shootout.run import Config, evaluate_pair, pairs

from structgrad.testing import conformance

SETTINGS = E.Settings(warmup=3, warmup_batch=8)


def test_every_applicable_pair_builds_and_draws():
    for structure, name in pairs(P.STRUCTURES, E.ESTIMATORS):
        problem = P.make_problem(structure, 0)
        layer = E.build(name, problem, SETTINGS)
        assert not layer.training  # warmed up, then frozen
        g = E.make_draw(layer, problem)(problem.logits, 4, torch.Generator().manual_seed(0))
        assert g.shape == (4, *problem.logits.shape)
        assert torch.isfinite(g).all()


def test_binary_tree_has_score_function_estimators_only():
    assert {e for s, e in pairs(["binary_tree"], E.ESTIMATORS)} == set(E.SCORE)
    with pytest.raises(ValueError, match="does not apply"):
        E.build("imle", P.make_problem("binary_tree"), SETTINGS)
    with pytest.raises(ValueError, match="unknown estimator"):
        E.build("magic", P.make_problem("categorical"), SETTINGS)


@pytest.mark.parametrize("name", ["t-reinforce", "t-reinforce+", "reinforce", "relax"])
def test_unbiased_estimators_agree_with_enumeration(name):
    problem = P.make_problem("k_subset", 0)
    ref = P.rg_reference(problem)
    layer = E.build(name, problem, SETTINGS)
    report = conformance.evaluate(
        E.make_draw(layer, problem),
        problem.logits,
        ref.grad,
        n_draws=4000,
        generator=torch.Generator().manual_seed(1),
    )
    conformance.assert_unbiased(report, z=4.5)


def test_frozen_ema_baseline_does_not_move():
    problem = P.make_problem("categorical", 0)
    layer = E.build("reinforce", problem, SETTINGS)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    E.make_draw(layer, problem)(problem.logits, 16, torch.Generator().manual_seed(0))
    after = layer.state_dict()
    assert before and all(torch.equal(before[k], after[k]) for k in before)


def test_default_budget_unbiased_cosine():
    # The default budget on one structure: unbiased estimators point
    # the right way (cosine > 0.9) and their means are within Monte Carlo error.
    config = Config(warmup=50)  # the default budget of draws
    problem = P.make_problem("spanning_tree", config.seed)
    ref = P.rg_reference(problem)
    payload = {"law": "rg", "grad": ref.grad.tolist(), "stderr": ref.stderr.tolist(), "samples": 0}
    for name in ["t-reinforce+", "e-reinforce+", "relax-trained"]:
        row = evaluate_pair("spanning_tree", name, config, payload)
        assert row["cosine"] > 0.9, row
        assert row["max_z"] < 4.5, row
