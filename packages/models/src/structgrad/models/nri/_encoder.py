"""NRI's factor-graph MLP encoder: trajectories to one logit vector per directed edge."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structgrad.distributions.checks import check_flag, check_int, check_tensor

from ._layout import check_probability, off_diagonal_indices

__all__ = ["MLP", "MLPEncoder"]


class MLP(nn.Module):
    """Linear → ELU → dropout → Linear → ELU → BatchNorm1d (NRI's encoder block).

    Weights are Xavier-normal, biases 0.1; batch norm runs over all leading
    dims flattened (``batch · items``).

    Args:
        n_in: input features.
        n_hid: hidden features.
        n_out: output features.
        dropout: dropout probability after the first layer.
    """

    def __init__(self, n_in: int, n_hid: int, n_out: int, dropout: float = 0.0) -> None:
        super().__init__()
        n_in, n_hid, n_out = (
            check_int(v, k, 1) for k, v in (("n_in", n_in), ("n_hid", n_hid), ("n_out", n_out))
        )
        self.fc1 = nn.Linear(n_in, n_hid)
        self.fc2 = nn.Linear(n_hid, n_out)
        self.bn = nn.BatchNorm1d(n_out)
        self.dropout = check_probability(dropout)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_normal_(fc.weight)
            nn.init.constant_(fc.bias, 0.1)

    def forward(self, x: Tensor) -> Tensor:
        """``[..., n_in]`` → ``[..., n_out]``."""
        x = F.elu(self.fc1(x))
        x = F.dropout(x, self.dropout, training=self.training)
        x = F.elu(self.fc2(x))
        return self.bn(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class MLPEncoder(nn.Module):
    """NRI's MLP encoder q(z | x) with factor-graph message passing.

    ``mlp1`` embeds each node's whole trajectory; ``node2edge`` concatenates
    ``[sender, receiver]``; ``mlp2`` gives edge features (kept as a skip);
    with ``factor=True`` ``edge2node`` sums incoming edges divided by ``n``,
    ``mlp3`` and ``node2edge`` again, concatenated with the skip, ``mlp4``
    (``factor=False``: ``mlp3`` on the edges directly); ``fc_out`` gives the
    logits. ``n_out`` is 1 for spanning trees and top-k, ``edge_types`` (2) for
    independent edges.

    With ``baseline=True`` an NVIL baseline head (Flatten → Linear(E·n_hid →
    n_hid) → ReLU → Linear(n_hid → 1)) reads the final edge features; it needs
    the number of nodes ``n_nodes``.

    Args:
        n_in: features per node = timesteps · dims.
        n_hid: hidden size (256 in the reference).
        n_out: logits per directed edge.
        dropout: dropout probability in the MLP blocks.
        factor: factor-graph (edge → node → edge) message passing.
        baseline: add the NVIL baseline head.
        n_nodes: number of nodes (required with ``baseline``).

    References:
        Kipf et al., "Neural Relational Inference for Interacting Systems",
        ICML 2018, https://arxiv.org/abs/1802.04687.
        Paulus et al., NeurIPS 2020, https://arxiv.org/abs/2006.08063 (NVIL head).
    """

    def __init__(
        self,
        n_in: int,
        n_hid: int = 256,
        n_out: int = 1,
        *,
        dropout: float = 0.0,
        factor: bool = True,
        baseline: bool = False,
        n_nodes: int | None = None,
    ) -> None:
        super().__init__()
        self.factor = check_flag(factor, "factor")
        self.n_in = check_int(n_in, "n_in", 1)
        n_out = check_int(n_out, "n_out", 1)
        self.n_nodes = None if n_nodes is None else check_int(n_nodes, "n_nodes", 2)
        self.mlp1 = MLP(n_in, n_hid, n_hid, dropout)
        self.mlp2 = MLP(2 * n_hid, n_hid, n_hid, dropout)
        self.mlp3 = MLP(n_hid, n_hid, n_hid, dropout)
        self.mlp4 = MLP((3 if factor else 2) * n_hid, n_hid, n_hid, dropout)
        self.fc_out = nn.Linear(n_hid, n_out)
        nn.init.xavier_normal_(self.fc_out.weight)
        nn.init.constant_(self.fc_out.bias, 0.1)
        self.baseline_head: nn.Module | None = None
        if baseline:
            if n_nodes is None or n_nodes < 2:
                raise ValueError("the NVIL baseline head needs n_nodes >= 2")
            self.baseline_head = nn.Sequential(
                nn.Flatten(),
                nn.Linear(n_nodes * (n_nodes - 1) * n_hid, n_hid),
                nn.ReLU(),
                nn.Linear(n_hid, 1),
            )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Edge logits (and the NVIL baseline) from trajectories.

        Args:
            x: ``[B, n, T, dims]`` (or ``[B, n, T·dims]``) node trajectories.

        Returns:
            ``(logits [B, n(n−1), n_out], baseline [B] or None)``, edges in NRI
            order (see :func:`structgrad.models.nri.off_diagonal_indices`).
        """
        check_tensor(x, "x")
        if x.ndim not in (3, 4) or math.prod(x.shape[2:]) != self.n_in or not x.shape[0]:
            raise ValueError(
                f"x must be [B >= 1, n, T, dims] with T·dims = n_in = {self.n_in}, got shape "
                f"{tuple(x.shape)}"
            )
        b, n = x.shape[0], x.shape[1]
        if n < 2 or (self.n_nodes is not None and n != self.n_nodes):
            want = self.n_nodes if self.n_nodes is not None else ">= 2"
            raise ValueError(f"x has {n} nodes, the encoder expects {want}")
        receivers, senders = off_diagonal_indices(n, x.device)
        h = self.mlp1(x.reshape(b, n, -1))  # [B, n, H]
        h = self.mlp2(torch.cat([h[:, senders], h[:, receivers]], dim=-1))  # [B, E, H]
        skip = h
        if self.factor:
            # edge2node: sum of incoming edges, divided by n as in NRI.
            nodes = h.new_zeros(b, n, h.shape[-1]).index_add(1, receivers, h) / n  # [B, n, H]
            nodes = self.mlp3(nodes)
            h = torch.cat([nodes[:, senders], nodes[:, receivers], skip], dim=-1)  # [B, E, 3H]
        else:
            h = torch.cat([self.mlp3(h), skip], dim=-1)  # [B, E, 2H]
        h = self.mlp4(h)
        base = None if self.baseline_head is None else self.baseline_head(h).squeeze(-1)
        return self.fc_out(h), base
