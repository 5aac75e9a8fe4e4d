"""The four synthetic tasks of L2X (Chen et al. 2018, §5.1), generated from a seed.

Inputs are ten independent standard Gaussians ``x[0..9]`` (``x1..x10`` in the
paper); the label is binary with ``P(y = 1 | x)`` given by:

- ``xor``: ``sigmoid(−x0·x1)`` (relevant: x0, x1; k = 2);
- ``orange_skin``: ``sigmoid(−(Σ_{j<4} xj² − 4))`` (relevant: x0..x3; k = 4);
- ``nonlinear_additive``: ``sigmoid(−(−100 sin(0.2 x0) + |x1| + x2 + exp(−x3) − 2.4))``
  (relevant: x0..x3; k = 4);
- ``switch``: ``x9`` is drawn from the mixture ``N(±3, 1)`` with equal weights;
  in the +3 component the label follows orange skin on x0..x3, in the −3 one
  nonlinear additive on x4..x7 (relevant: {x0..x3, x9} or {x4..x7, x9}; k = 5).

This is the layout of the reference code (``synthetic/make_data.py`` and the
median-rank indices ``[0,1,2,3,9]`` / ``[4,5,6,7,9]`` of ``explain.py``); the
paper's text puts the switch in x1 and the two blocks in x2..x5 / x6..x9, the
same task up to a permutation of the features. The reference swaps the blocks
with a NumPy tuple assignment of two overlapping views, which copies x0..x3
into x4..x7 instead of swapping them (the additive half then carries its
relevant values twice); here the block is really moved, so x0..x3 are pure
noise in the additive half. Branch membership follows the mixture component,
as in the reference (half the samples each, shuffled); the 0.13 % of draws
that land on the wrong side of 0 are redrawn, so the branch is ``x9 > 0`` and
the label is a function of the relevant features alone.

The label probabilities, not sampled labels, are the targets: L2X trains the
predictor with the cross-entropy against ``P(y | x)`` and reports accuracy as
agreement of the predicted class with ``argmax P(y | x)``.

References:
    Chen, Song, Wainwright and Jordan, "Learning to Explain: An
    Information-Theoretic Perspective on Model Interpretation", ICML 2018,
    https://arxiv.org/abs/1802.07814.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

__all__ = ["DEFAULT_K", "TASKS", "SyntheticData", "generate", "label_probability"]

TASKS = ("xor", "orange_skin", "nonlinear_additive", "switch")
#: The number of relevant features, the explanation size of the reference.
DEFAULT_K = {"xor": 2, "orange_skin": 4, "nonlinear_additive": 4, "switch": 5}
NUM_FEATURES = 10
SWITCH = 9  # the switch feature of the switch task


@dataclass(frozen=True)
class SyntheticData:
    """One split of a synthetic task.

    Attributes:
        x: float32 ``[N, 10]`` inputs.
        p: float32 ``[N]`` label probabilities ``P(y = 1 | x)``.
        relevant: bool ``[N, 10]`` ground-truth relevant features per instance.
    """

    x: np.ndarray
    p: np.ndarray
    relevant: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def _orange(x: np.ndarray) -> np.ndarray:
    return expit(-(np.sum(x[:, :4] ** 2, axis=1) - 4.0))


def _additive(x: np.ndarray) -> np.ndarray:
    # The reference writes 1 / (1 + exp(s)); expit(−s) is the same without overflow.
    s = -100.0 * np.sin(0.2 * x[:, 0]) + np.abs(x[:, 1]) + x[:, 2] + np.exp(-x[:, 3]) - 2.4
    return expit(-s)


def label_probability(task: str, x: np.ndarray) -> np.ndarray:
    """``P(y = 1 | x)`` of a task.

    Args:
        task: one of :data:`TASKS`.
        x: ``[N, 10]`` inputs (for ``switch``, the branch is ``x[:, 9] > 0``).

    Returns:
        float64 ``[N]`` probabilities.

    Raises:
        ValueError: for an unknown task.
    """
    x = np.asarray(x, dtype=np.float64)
    if task == "xor":
        return expit(-x[:, 0] * x[:, 1])
    if task == "orange_skin":
        return _orange(x)
    if task == "nonlinear_additive":
        return _additive(x)
    if task == "switch":
        orange = x[:, SWITCH] > 0
        return np.where(orange, _orange(x), _additive(x[:, 4:8]))
    raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")


def relevant_features(task: str, x: np.ndarray) -> np.ndarray:
    """Boolean ``[N, 10]`` mask of the features the label of each instance depends on."""
    mask = np.zeros(x.shape, dtype=bool)
    if task == "xor":
        mask[:, :2] = True
    elif task in ("orange_skin", "nonlinear_additive"):
        mask[:, :4] = True
    elif task == "switch":
        orange = x[:, SWITCH] > 0
        mask[orange, :4] = True
        mask[~orange, 4:8] = True
        mask[:, SWITCH] = True
    else:
        raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    return mask


def generate(task: str, n: int, *, seed: int) -> SyntheticData:
    """Draw ``n`` instances of a task.

    Args:
        task: one of :data:`TASKS`.
        n: number of instances (≥ 1).
        seed: NumPy seed; the same (task, n, seed) gives the same data.

    Returns:
        The split.

    Raises:
        ValueError: for an unknown task or ``n < 1``.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, NUM_FEATURES))
    if task == "switch":
        orange = np.zeros(n, dtype=bool)
        orange[: n // 2] = True
        rng.shuffle(orange)
        # Mixture component by branch; a component's draw lands on its own side of 0
        # except with probability Φ(−3) ≈ 0.13 %, those draws are redrawn.
        shift = np.where(orange, 3.0, -3.0)
        x[:, SWITCH] += shift
        bad = np.sign(x[:, SWITCH]) != np.sign(shift)
        while bad.any():
            x[bad, SWITCH] = rng.standard_normal(int(bad.sum())) + shift[bad]
            bad = np.sign(x[:, SWITCH]) != np.sign(shift)
    p = label_probability(task, x)
    return SyntheticData(
        x=x.astype(np.float32),
        p=p.astype(np.float32),
        relevant=relevant_features(task, x),
    )
