import math

import pytest
from nri_graph_layout.cli import SWEEP


def _rec(method, trial, seed, valid, test, prec):
    return {
        "method": method, "trial": trial, "seed": seed, "lr": 0.01 * (trial + 1), "tau": 2.0,
        "valid_elbo": valid, "test_elbo": test, "test_precision": prec, "test_recall": prec,
        "seconds": 10.0,
    }  # fmt: skip


def test_best_trial_mean_and_standard_error():
    records = [
        _rec("tree-sst", 0, 0, -10.0, -11.0, 0.5),
        _rec("tree-sst", 0, 1, -12.0, -13.0, 0.6),
        _rec("tree-sst", 1, 0, -5.0, -6.0, 0.8),  # best trial: mean valid ELBO -6
        _rec("tree-sst", 1, 1, -7.0, -8.0, 0.9),
        _rec("tree-sst", 1, 2, -6.0, -10.0, 1.0),
        _rec("indep", 0, 0, -20.0, -21.0, 0.2),
        {"method": "indep", "trial": 0, "seed": 1, "lr": 0.01, "tau": 2.0, "error": "boom"},
    ]
    rows, table = SWEEP.summarize(records)
    tree, indep = rows
    assert tree["trial"] == 1 and tree["n"] == 3 and tree["lr"] == 0.02
    assert tree["test_elbo_mean"] == pytest.approx(-8.0)
    # sample std of (-6, -8, -10) is 2, so the standard error is 2 / sqrt(3).
    assert tree["test_elbo_se"] == pytest.approx(2 / math.sqrt(3))
    assert tree["test_precision_mean"] == pytest.approx(0.9)
    assert tree["test_precision_se"] == pytest.approx(0.1 / math.sqrt(3))
    assert indep["n"] == 1 and math.isnan(indep["test_elbo_se"])
    lines = table.splitlines()
    assert lines[0].startswith("| method | lr | τ | seeds | test ELBO")
    assert lines[2].startswith("| tree-sst | 0.02 | 2 | 3 | -8 ± 1.2 | 0.9 ± 0.058 |")
    assert lines[3].startswith("| indep | 0.01 | 2 | 1 | -21 | 0.2 |")


def test_all_failed_method():
    rows, table = SWEEP.summarize([{"method": "tree-nvil", "trial": 0, "seed": 0, "error": "x"}])
    assert rows[0]["n"] == 0 and "failed" in table
