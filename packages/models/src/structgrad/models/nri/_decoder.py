"""NRI's interaction-network decoder p(x | z): per-edge-type messages, residual steps."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from structgrad.distributions.checks import check_flag, check_int, check_tensor

from ._layout import check_probability, off_diagonal_indices

__all__ = ["MLPDecoder"]


class MLPDecoder(nn.Module):
    """NRI's MLP decoder: predicts the next state of every node given the edge sample.

    One message MLP per edge type, ``Linear(2·dims → msg_hid) → ReLU → dropout
    → Linear(msg_hid → msg_out) → ReLU`` on ``[sender, receiver]``, weighted by
    that type's edge weight, summed over types and over incoming edges; an
    output MLP on ``[x, messages]`` (``n_hid → n_hid → dims``, ReLU, dropout)
    gives ``Δ`` and the prediction is ``x + Δ``. ``skip_first=True`` drops the
    messages of edge type 0 ("no edge").

    Args:
        n_in_node: dims per node and time step.
        edge_types: number of edge types ``C`` of the edge weights.
        msg_hid: hidden size of the message MLPs.
        msg_out: message size.
        n_hid: hidden size of the output MLP.
        dropout: dropout probability (applied only in training mode).
        skip_first: no messages along edge type 0.
        n_rounds: applications of the one-step update per predicted frame.

    References:
        Kipf et al., "Neural Relational Inference for Interacting Systems",
        ICML 2018, https://arxiv.org/abs/1802.04687.
    """

    def __init__(
        self,
        n_in_node: int,
        edge_types: int = 2,
        msg_hid: int = 256,
        msg_out: int = 256,
        n_hid: int = 256,
        *,
        dropout: float = 0.0,
        skip_first: bool = False,
        n_rounds: int = 1,
    ) -> None:
        super().__init__()
        n_in_node, edge_types, msg_hid, msg_out, n_hid, n_rounds = (
            check_int(v, k, 1)
            for k, v in (
                ("n_in_node", n_in_node),
                ("edge_types", edge_types),
                ("msg_hid", msg_hid),
                ("msg_out", msg_out),
                ("n_hid", n_hid),
                ("n_rounds", n_rounds),
            )
        )
        self.msg_fc1 = nn.ModuleList(nn.Linear(2 * n_in_node, msg_hid) for _ in range(edge_types))
        self.msg_fc2 = nn.ModuleList(nn.Linear(msg_hid, msg_out) for _ in range(edge_types))
        self.out_fc1 = nn.Linear(n_in_node + msg_out, n_hid)
        self.out_fc2 = nn.Linear(n_hid, n_hid)
        self.out_fc3 = nn.Linear(n_hid, n_in_node)
        self.edge_types = edge_types
        self.msg_out = msg_out
        self.dropout = check_probability(dropout)
        self.n_in_node = n_in_node
        self.skip_first = check_flag(skip_first, "skip_first")
        self.n_rounds = int(n_rounds)

    def step(self, x: Tensor, rel_type: Tensor) -> Tensor:
        """One residual update ``x + Δ``.

        Args:
            x: ``[B, S, n, dims]`` states (``S`` start frames).
            rel_type: ``[B, 1 or S, E, C]`` edge-type weights in NRI edge order.

        Returns:
            ``[B, S, n, dims]`` predicted next states.
        """
        n = x.shape[-2]
        receivers, senders = off_diagonal_indices(n, x.device)
        pre = torch.cat([x[..., senders, :], x[..., receivers, :]], dim=-1)  # [B, S, E, 2d]
        msgs = pre.new_zeros((*pre.shape[:-1], self.msg_out))  # [B, S, E, msg_out]
        for k in range(1 if self.skip_first else 0, self.edge_types):
            m = F.relu(self.msg_fc1[k](pre))
            m = F.dropout(m, self.dropout, training=self.training)
            m = F.relu(self.msg_fc2[k](m))
            msgs = msgs + m * rel_type[..., k : k + 1]
        # Sum the messages over each receiver's incoming edges.
        agg = msgs.new_zeros((*x.shape[:-1], self.msg_out)).index_add(-2, receivers, msgs)
        h = torch.cat([x, agg], dim=-1)  # [B, S, n, d + msg_out]
        h = F.dropout(F.relu(self.out_fc1(h)), self.dropout, training=self.training)
        h = F.dropout(F.relu(self.out_fc2(h)), self.dropout, training=self.training)
        return x + self.out_fc3(h)

    def forward(self, x: Tensor, rel_type: Tensor, pred_steps: int = 1) -> Tensor:
        """Predict frames ``1..T−1``, restarting from ground truth every ``pred_steps``.

        Frames ``0, P, 2P, …`` are taken from ``x``; from each, ``P`` steps are
        rolled out autoregressively; the predictions are interleaved back into
        time order. ``pred_steps=1`` is teacher forcing (used for evaluation).

        Args:
            x: ``[B, n, T, dims]`` trajectories.
            rel_type: ``[B, n(n−1), C]`` edge-type weights (hard or relaxed).
            pred_steps: rollout length ``P ≥ 1``.

        Returns:
            ``[B, n, T−1, dims]`` predictions of frames ``1..T−1``.
        """
        pred_steps = check_int(pred_steps, "pred_steps", 1)
        check_tensor(x, "x")
        check_tensor(rel_type, "rel_type")
        if x.ndim != 4 or x.shape[-1] != self.n_in_node or x.shape[1] < 2 or not x.shape[0]:
            raise ValueError(
                f"x must be [B >= 1, n >= 2, T, dims = {self.n_in_node}], got shape "
                f"{tuple(x.shape)}"
            )
        edges = x.shape[1] * (x.shape[1] - 1)
        if rel_type.ndim != 3 or rel_type.shape[:2] != (x.shape[0], edges):
            raise ValueError(
                f"rel_type must be [B, n(n-1), C] = [{x.shape[0]}, {edges}, C], got shape "
                f"{tuple(rel_type.shape)}"
            )
        if rel_type.shape[-1] != self.edge_types:
            raise ValueError(
                f"rel_type has {rel_type.shape[-1]} edge types, the decoder {self.edge_types}"
            )
        b, n, t, d = x.shape
        frames = x.transpose(1, 2)  # [B, T, n, d]
        rel = rel_type.unsqueeze(1)  # [B, 1, E, C]: the same graph at every frame
        # Rollouts start at frames 0, P, 2P, … below T − 1 (a start at T − 1 would
        # only predict frames past the end).
        state = frames[:, : t - 1 : pred_steps]  # [B, G, n, d], G = ceil((T − 1) / P)
        preds = []
        for _ in range(pred_steps):
            for _ in range(self.n_rounds):
                state = self.step(state, rel)
            preds.append(state)
        # preds[i][:, g] predicts frame g·P + i + 1: interleave into time order.
        out = torch.stack(preds, dim=2).reshape(b, -1, n, d)[:, : t - 1]  # [B, T-1, n, d]
        return out.transpose(1, 2)
