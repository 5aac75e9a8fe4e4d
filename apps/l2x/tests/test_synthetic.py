import numpy as np
import pytest
from l2x import synthetic as S
from l2x.metrics import median_rank, precision, subset_precision


@pytest.mark.parametrize("task", S.TASKS)
def test_labels_depend_only_on_relevant_features(task):
    d = S.generate(task, 2000, seed=1)
    assert d.x.shape == (2000, 10) and d.x.dtype == np.float32 and d.p.shape == (2000,)
    assert ((d.p >= 0) & (d.p <= 1)).all() and 0.05 < d.p.mean() < 0.95
    assert (d.relevant.sum(axis=1) == S.DEFAULT_K[task]).all()
    rng = np.random.default_rng(0)
    x = d.x.astype(np.float64)
    # Redraw every irrelevant feature (the switch keeps its sign): the label is unchanged.
    noise = rng.standard_normal(x.shape)
    x2 = np.where(d.relevant, x, noise)
    np.testing.assert_allclose(S.label_probability(task, x2), d.p, rtol=1e-5, atol=1e-6)
    # Redrawing one relevant feature does change it, for every relevant feature.
    for j in range(10):
        rows = d.relevant[:, j]
        if not rows.any() or (task == "switch" and j == S.SWITCH):
            continue
        x3 = x.copy()
        x3[rows, j] = noise[rows, j]
        changed = np.abs(S.label_probability(task, x3)[rows] - d.p[rows]) > 1e-3
        assert changed.mean() > 0.15, (task, j)


def test_formulas_and_switch_layout():
    x = np.zeros((2, 10))
    x[:, :2] = [[1.0, 2.0], [-1.0, 2.0]]
    np.testing.assert_allclose(S.label_probability("xor", x), 1 / (1 + np.exp([2.0, -2.0])))
    np.testing.assert_allclose(S.label_probability("orange_skin", x), 1 / (1 + np.exp([1.0, 1.0])))
    d = S.generate("switch", 1000, seed=3)
    orange = d.x[:, S.SWITCH] > 0
    assert orange.sum() == 500
    assert d.relevant[orange][:, :4].all() and not d.relevant[orange][:, 4:9].any()
    assert d.relevant[~orange][:, 4:8].all() and not d.relevant[~orange][:, :4].any()
    # The branches follow the mixture means +-3.
    assert abs(d.x[orange, S.SWITCH].mean() - 3) < 0.2
    assert abs(d.x[~orange, S.SWITCH].mean() + 3) < 0.2


def test_seeded():
    a, b = S.generate("xor", 50, seed=7), S.generate("xor", 50, seed=7)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, S.generate("xor", 50, seed=8).x)
    with pytest.raises(ValueError, match="unknown task"):
        S.generate("spiral", 10, seed=0)


def test_metrics_by_hand():
    relevant = np.zeros((2, 6), dtype=bool)
    relevant[:, :2] = True
    logits = np.array([[5.0, 4, 3, 2, 1, 0], [0.0, 5, 4, 3, 2, 1]])
    # Ranks of features 0, 1: (1, 2) -> 1.5 and (6, 1) -> 3.5.
    assert median_rank(logits, relevant) == pytest.approx(2.5)
    sel = np.array([[1, 1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0]])
    assert precision(sel, relevant) == pytest.approx(0.75)
    tokens = np.array([[0, 1, 1, 1], [1, 1, 1, 1]], dtype=bool)
    spans = np.array([[0, 1, 0, 0], [0, 0, 1, 1]], dtype=bool)
    sel = np.array([[1, 1, 1, 0], [0, 0, 1, 0]])
    # Review 0: 2 selected tokens (padding ignored), 1 correct; review 1: 1 selected, 1 correct.
    assert subset_precision(sel, tokens, spans, k=2) == pytest.approx(2 / 4)
