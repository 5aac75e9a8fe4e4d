"""Independent edges: the NRI baseline latent graph (one binary concrete per edge).

References:
    Kipf, Fetaya, Wang, Welling and Zemel, "Neural Relational Inference for
    Interacting Systems", ICML 2018, https://arxiv.org/abs/1802.04687.
    Paulus et al., NeurIPS 2020, https://arxiv.org/abs/2006.08063 (the
    independent-edges baseline of the graph-layout experiment).
"""

from __future__ import annotations

import torch
from torch import Tensor

from structgrad.distributions.checks import as_tau, check_flag, check_square, check_tensor

from ._gumbel import gumbel_softmax
from ._options import checks_options

__all__ = ["independent_edges"]


@checks_options
def independent_edges(
    logits: Tensor,
    tau: float | Tensor,
    *,
    symmetric: bool = False,
    categorical: bool = False,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Relaxed sample of a graph whose edges are independent categorical variables.

    Two forms, as in the NRI / SST code:

    * ``logits`` ``[..., n, n]``: one log-odds per directed pair; each edge is a
      binary concrete (a two-way Gumbel-softmax over ``(0, logit)``), and the
      result is ``[..., n, n]``.
    * ``categorical=True``, ``logits`` ``[..., n, n, C]``: ``C`` edge types per directed pair, a
      ``C``-way Gumbel-softmax each; the result is ``[..., n, n, C]`` (the NRI
      layout with channel 0 for "no edge").

    The diagonal is always 0. With ``symmetric=True`` the logits of ``(i, j)``
    and ``(j, i)`` are averaged and one noise sample per unordered pair is used,
    so the sample is symmetric (the reference's ``is_edgesymmetric``).

    Args:
        logits: ``[..., n, n]`` (or ``[..., n, n, C]`` if ``categorical``) edge logits.
        tau: temperature > 0.
        symmetric: symmetrise logits and share noise across the two directions.
        categorical: the last dimension holds ``C`` edge-type logits.
        hard: straight-through one-hot samples.
        generator: optional ``torch.Generator``.

    Returns:
        A tensor shaped like ``logits``.
    """
    check_tensor(logits, "logits")
    symmetric, hard = check_flag(symmetric, "symmetric"), check_flag(hard, "hard")
    if check_flag(categorical, "categorical") and logits.dim() < 3:
        raise ValueError(f"categorical logits must be [..., n, n, C], got {tuple(logits.shape)}")
    # A binary edge is a two-way choice between "no edge" (logit 0) and "edge".
    channels = logits if categorical else torch.stack([torch.zeros_like(logits), logits], -1)
    if not categorical:  # tau is shaped for the logits: give it the channel dim too
        tau = as_tau(tau, logits).unsqueeze(-1)
    n = check_square(channels[..., 0], "logits")
    if symmetric:
        channels = 0.5 * (channels + channels.transpose(-2, -3))
    sample = gumbel_softmax(channels, tau, hard=hard, dim=-1, generator=generator)
    if symmetric:
        upper = torch.ones(n, n, dtype=torch.bool, device=logits.device).triu(1)
        upper = upper.unsqueeze(-1)
        sample = torch.where(upper, sample, sample.transpose(-2, -3))
    off = ~torch.eye(n, dtype=torch.bool, device=logits.device)
    if not categorical:
        return sample[..., 1] * off
    return sample * off.unsqueeze(-1)
