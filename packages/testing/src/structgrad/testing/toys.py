"""The toy losses of the recursive Gumbel-max experiments, on batched torch samples.

Struminsky et al. (2021, §5) minimise, from logits at zero: −(max out-degree)
of arborescences, −height of binary trees, −(# diagonal pairs) of matchings,
and (the intended loss; the reference code indexes the wrong axis) the number
of spanning-tree edges not incident to vertex 0. Shared by the estimators'
tests and benchmark and by ``apps/toys``. The functions use tensor methods
only, so this module imports without torch.

References:
    Struminsky, Gadetsky, Rakitin, Karpushkin and Vetrov, "Leveraging
    Recursive Gumbel-Max Trick for Approximate Inference in Combinatorial
    Spaces", NeurIPS 2021, https://arxiv.org/abs/2110.15072.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "arborescence_loss",
    "binary_tree_height",
    "binary_tree_loss",
    "matching_loss",
    "spanning_tree_loss",
]


def arborescence_loss(z: Any) -> Any:
    """−(max out-degree) of arborescences ``z [*batch, n, n]`` (``[i, j] = 1``: edge i→j).

    Returns:
        ``[*batch]``; the star from the root scores ``−(n − 1)``.
    """
    return -z.sum(-1).amax(-1)


def binary_tree_height(z: Any) -> Any:
    """Number of levels of binary trees given as ``[*batch, n, n]`` parent→child adjacency.

    The root is the vertex without a parent; the frontier ``f_{t+1} = f_t z``
    walks one level down per step, and the height counts the non-empty levels.

    Returns:
        ``[*batch]`` heights (a chain of ``n`` vertices has height ``n``).
    """
    frontier = (z.sum(-2) == 0).to(z.dtype)  # [*batch, n]: the root
    height = z.new_zeros(z.shape[:-2])
    for _ in range(z.shape[-1]):
        alive = frontier.amax(-1) > 0  # [*batch]
        height = height + alive.to(z.dtype)
        frontier = (frontier.unsqueeze(-2) @ z).squeeze(-2).clamp(max=1.0)
    return height


def binary_tree_loss(z: Any) -> Any:
    """−height of binary trees ``z [*batch, n, n]`` (parent→child); a chain scores ``−n``."""
    return -binary_tree_height(z)


def matching_loss(z: Any) -> Any:
    """−(# matched pairs on the main diagonal) of matchings ``z [*batch, n, n]``."""
    return -z.diagonal(dim1=-2, dim2=-1).sum(-1)


def spanning_tree_loss(z: Any) -> Any:
    """# edges not incident to vertex 0 of spanning trees ``z [*batch, n, n]`` (symmetric).

    ``(n − 1) − deg(0)``: linear in ``z``, so relaxed samples (SST marginals)
    are scored by the same formula. The star around vertex 0 scores 0.
    """
    n = z.shape[-1]
    return (n - 1) - z[..., 0, :].sum(-1)
