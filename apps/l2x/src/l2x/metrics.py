"""Explanation metrics: median rank and precision (synthetic), subset precision (beer).

- **Median rank** (L2X §5.1): features are ranked by the explainer's logits
  (1 = highest); for every instance the median of the ranks of its relevant
  features is taken, then averaged over instances. Lower is better; a perfect
  explainer scores ``(r + 1) / 2`` with ``r`` relevant features (1.5 for xor,
  2.5 for orange skin and nonlinear additive, 3 for switch). The reference
  ranks the 0/1 evaluation mask with random tie breaking; ranking the logits
  gives the same value whenever the relevant features are all selected.
- **Precision**: ``|selected ∩ relevant| / k`` per instance, averaged (the
  true-positive rate, since ``k`` is the number of relevant features).
- **Subset precision** (BeerAdvocate, ×100 in the papers): over the annotated
  reviews, selected review tokens that fall inside an annotated span, divided
  by ``Σ max(#selected review tokens, k)`` (selected padding does not count).
"""

from __future__ import annotations

import numpy as np

__all__ = ["median_rank", "precision", "selection_frequency", "subset_precision"]


def median_rank(logits: np.ndarray, relevant: np.ndarray) -> float:
    """Mean over instances of the median rank of the relevant features.

    Args:
        logits: ``[N, n]`` explainer scores.
        relevant: bool ``[N, n]`` relevant features (at least one per row).

    Returns:
        The mean median rank.
    """
    ranks = (-logits).argsort(axis=1, kind="stable").argsort(axis=1) + 1  # [N, n], 1 = best
    masked = np.where(relevant, ranks.astype(np.float64), np.nan)
    return float(np.nanmedian(masked, axis=1).mean())


def precision(selection: np.ndarray, relevant: np.ndarray) -> float:
    """Mean fraction of the selected features that are relevant.

    Args:
        selection: 0/1 ``[N, n]`` masks with ``k`` ones each.
        relevant: bool ``[N, n]``.

    Returns:
        ``mean_i |S_i ∩ R_i| / |S_i|``.
    """
    sel = selection > 0.5
    return float(((sel & relevant).sum(axis=1) / np.maximum(sel.sum(axis=1), 1)).mean())


def selection_frequency(selection: np.ndarray) -> np.ndarray:
    """Fraction of instances that select each feature, ``[n]``."""
    return (selection > 0.5).mean(axis=0)


def subset_precision(selection: np.ndarray, tokens: np.ndarray, spans: np.ndarray, k: int) -> float:
    """The BeerAdvocate subset precision of Chen et al. / the I-MLE code (a fraction).

    Args:
        selection: 0/1 ``[M, L]`` selected positions of the annotated reviews.
        tokens: bool ``[M, L]`` positions holding a review token (not padding).
        spans: bool ``[M, L]`` positions inside an annotated span.
        k: subset size.

    Returns:
        ``Σ |S ∩ spans| / Σ max(|S ∩ tokens|, k)``.
    """
    sel = selection > 0.5
    correct = (sel & spans & tokens).sum()
    chosen = np.maximum((sel & tokens).sum(axis=1), k).sum()
    return float(correct / chosen)
