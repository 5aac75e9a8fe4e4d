"""Reference numbers: the reproduction of the recursive Gumbel-max toys (§5.4).

From ``reference/recursive_gumbel.md`` §5.4: the reference repository's README
commands re-run (torch 2.x CPU, dim 10, 15 000 steps, lr 0.01, seed 23,
``num_samples 3`` for plain estimators and RELAX, ``plus_samples 3`` for "+"),
``mean_objective`` of the script's own evaluation (10 samples, 30 for "+").
Per estimator: loss at steps 1k, 2k, 5k, 14.5k and the first evaluation step
within 0.5 of the optimum (``None``: never within 15 000 steps). No reference
numbers exist for the spanning tree (the reference's loss is buggy) nor for
top-k (the IMLE synthetic problem reports plots only, with SGD, not Adam).
"""

from __future__ import annotations

__all__ = ["REFERENCE", "REFERENCE_DIM", "REFERENCE_STEPS"]

#: The problem size the reference numbers are for (other sizes show none).
REFERENCE_DIM = 10

#: Steps of the reference columns (14 500 is the reference's last reported value).
REFERENCE_STEPS = (1000, 2000, 5000, 14500)

#: structure → estimator → (loss at REFERENCE_STEPS..., first step within 0.5).
REFERENCE: dict[str, dict[str, tuple[float, float, float, float, int | None]]] = {
    "arborescence": {
        "e-reinforce": (-2.8, -2.7, -3.3, -8.4, 12000),
        "t-reinforce": (-3.0, -6.8, -8.7, -9.0, 4500),
        "e-reinforce+": (-2.6, -6.6, -8.8, -8.9, 3000),
        "t-reinforce+": (-8.1, -8.7, -9.0, -9.0, 1500),
        "relax": (-8.2, -8.4, -9.0, -9.0, 1500),
    },
    "binary_tree": {
        "e-reinforce": (-5.6, -6.4, -6.7, -9.0, None),
        "t-reinforce": (-5.7, -7.0, -8.5, -9.4, 7500),
        "e-reinforce+": (-8.0, -8.9, -9.8, -10.0, 3000),
        "t-reinforce+": (-8.7, -9.4, -9.9, -10.0, 3000),
        "relax": (-8.0, -9.4, -9.8, -10.0, 2500),
    },
    "matching": {
        "e-reinforce": (-2.4, -5.0, -8.6, -10.0, 11000),
        "t-reinforce": (-5.9, -8.6, -9.2, -10.0, 2500),
        "e-reinforce+": (-3.5, -8.0, -9.6, -9.9, 4000),
        "t-reinforce+": (-8.6, -9.6, -9.9, -10.0, 2000),
        "relax": (-8.4, -9.0, -9.8, -10.0, 1500),
    },
}
