"""The NRI graph-layout model: encoder → latent graph layer → decoder.

Everything model-related comes from ``structgrad.models``; this module only
moves tensors between the layouts (NRI's directed edge order, ``[n, n]``
matrices, upper triangles) as the SST reference does (§2.1, §3.5 of the notes):

- ``tree``: the encoder gives one score per directed pair, symmetrised
  (mean of ``(i, j)`` and ``(j, i)``) into ``[B, n, n]`` for the spanning-tree layer;
- ``topk``: the upper triangle ``[B, n(n−1)/2]`` of the same matrix, ``k = n − 1``;
- ``indep``: two edge-type logits per directed pair ``[B, n, n, 2]``.

The decoder gets two edge types: ``[1 − x, x]`` (``skip_first=False``) as the
reference, or ``[1, x]`` with ``decoder_edges="base"`` (messages along every
pair plus messages along the sampled edges). The KL is the Gumbel KL of the
utilities over all directed entries; with ``kl_shift`` the tree and top-k scores
are first shifted by the constant that minimises it (both laws ignore a
constant shift, so the bound tightens and the model is unchanged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nri_graph_layout.methods import MethodSpec
from structgrad.models import latent
from structgrad.models.nri import (
    MLPDecoder,
    MLPEncoder,
    as_edge_types,
    edges_to_matrix,
    kl_categorical_uniform,
    kl_gumbel,
    matrix_to_edges,
    matrix_to_upper,
    nll_gaussian,
    symmetrize,
    upper_to_matrix,
)

EDGE_TYPES = 2
#: What the decoder's two edge types are: the reference's ``[1 − x, x]``, or an
#: always-on channel and the sampled edges ``[1, x]``.
DECODER_EDGES = ("complement", "base")


@dataclass
class StepOutput:
    """Per-graph terms of one forward pass.

    Attributes:
        loss: ``[B]`` the loss to backpropagate (with the score-function surrogate).
        nll: ``[B]`` Gaussian NLL (mean over samples).
        kl: ``[B]`` KL.
    """

    loss: Tensor
    nll: Tensor
    kl: Tensor


#: The keyword options of :class:`GraphLayoutModel` that a run config sets (same names).
MODEL_OPTIONS = ("encoder_hidden", "decoder_hidden", "var", "kl", "decoder_edges", "kl_shift")


class GraphLayoutModel(nn.Module):
    """NRI encoder, latent graph layer and decoder for one method.

    Args:
        spec: the resolved method.
        n_nodes: vertices per graph.
        timesteps: frames per trajectory.
        encoder_hidden: encoder hidden size.
        decoder_hidden: decoder hidden size (messages and output MLP).
        var: decoder variance.
        kl: ``"gumbel"`` (default) or ``"categorical"`` (indep only).
        decoder_edges: ``"complement"`` (``[1 − x, x]``, the reference) or
            ``"base"`` (``[1, x]``).
        kl_shift: shift tree / top-k scores by the KL-minimising constant.
    """

    def __init__(
        self,
        spec: MethodSpec,
        n_nodes: int,
        timesteps: int,
        *,
        encoder_hidden: int = 256,
        decoder_hidden: int = 256,
        var: float = 5e-5,
        kl: str = "gumbel",
        dims: int = 2,
        decoder_edges: str = "complement",
        kl_shift: bool = False,
    ) -> None:
        super().__init__()
        if decoder_edges not in DECODER_EDGES:
            raise ValueError(f"decoder_edges must be one of {DECODER_EDGES}, got {decoder_edges!r}")
        self.spec = spec
        self.n = n_nodes
        self.var = var
        self.kl = kl
        self.decoder_edges = decoder_edges
        self.kl_shift = bool(kl_shift) and spec.graph != "indep"
        self.encoder = MLPEncoder(
            timesteps * dims,
            encoder_hidden,
            spec.n_out,
            baseline=spec.method == "nvil",
            n_nodes=n_nodes,
        )
        self.decoder = MLPDecoder(dims, EDGE_TYPES, decoder_hidden, decoder_hidden, decoder_hidden)
        self.latent = latent(spec.structure, spec.method, **spec.options)

    # -- layouts -----------------------------------------------------------
    def scores(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Encoder scores in the latent layer's layout.

        Returns:
            ``(layer_input, kl_logits [B, E, n_out], baseline or None)``.
        """
        logits, baseline = self.encoder(x)  # [B, E, n_out]
        if self.spec.graph == "indep":
            mat = edges_to_matrix(logits.transpose(-1, -2)).permute(0, 2, 3, 1)  # [B, n, n, 2]
            if self.spec.options.get("symmetric"):
                mat = 0.5 * (mat + mat.transpose(1, 2))
                logits = matrix_to_edges(mat.permute(0, 3, 1, 2)).transpose(-1, -2)
            return mat, logits, baseline
        mat = symmetrize(edges_to_matrix(logits[..., 0]))  # [B, n, n]
        if self.kl_shift:
            mat = mat + kl_optimal_shift(matrix_to_upper(mat))[:, None, None]
        kl_logits = matrix_to_edges(mat).unsqueeze(-1)  # every directed entry, as the reference
        if self.spec.graph == "topk":
            return matrix_to_upper(mat), kl_logits, baseline
        return mat, kl_logits, baseline

    def to_edges(self, z: Tensor) -> Tensor:
        """A latent sample to edge indicators ``[..., E]`` in NRI order (soft or hard)."""
        if self.spec.graph == "indep":
            return matrix_to_edges(z[..., 1])  # channel 1 = "edge"
        if self.spec.graph == "topk":
            z = upper_to_matrix(z, self.n)
        return matrix_to_edges(z)

    # -- objective ---------------------------------------------------------
    def _nll(self, x: Tensor, edges: Tensor, pred_steps: int) -> Tensor:
        """NLL ``[*lead, B]`` of edge indicators ``[*lead, B, E]`` (``lead``: sample dims)."""
        lead, b = edges.shape[:-2], x.shape[0]
        flat = edges.reshape(-1, edges.shape[-1])  # [K·B, E]
        reps = flat.shape[0] // b
        xs = x.repeat(reps, 1, 1, 1) if reps > 1 else x
        if self.decoder_edges == "base":
            types = torch.stack([torch.ones_like(flat), flat], dim=-1)  # [K·B, E, 2]
        else:
            types = as_edge_types(flat, EDGE_TYPES)
        pred = self.decoder(xs, types, pred_steps)
        return nll_gaussian(pred, xs[:, :, 1:], self.var).reshape(*lead, b)

    def _kl(self, kl_logits: Tensor) -> Tensor:
        if self.kl == "categorical":
            return kl_categorical_uniform(kl_logits, self.n)
        return kl_gumbel(kl_logits, self.n)

    def forward(
        self, x: Tensor, *, pred_steps: int, generator: torch.Generator | None = None
    ) -> StepOutput:
        """Training pass on a batch ``x [B, n, T, dims]``."""
        layer_in, kl_logits, baseline = self.scores(x)
        z = self.latent(layer_in, generator=generator)
        nll = self._nll(x, self.to_edges(z), pred_steps)  # [B], or [K, B] with K samples
        kl = self._kl(kl_logits)
        # attach: identity for pathwise methods, + the zero-valued score-function
        # surrogate otherwise (NVIL also regresses its learned baseline there).
        loss = (
            self.latent.attach(nll, baseline=baseline)
            if baseline is not None
            else (self.latent.attach(nll))
        )
        if loss.ndim > 1:
            loss, nll = loss.mean(0), nll.mean(0)
        return StepOutput(loss=loss + kl, nll=nll.detach(), kl=kl.detach())

    @torch.no_grad()
    def evaluate(
        self, x: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Teacher-forced NLL and KL with a hard sample ``MAP(θ + G)``, as the reference.

        Returns:
            ``(nll [B], kl [B], hard edges [B, E], noise-free MAP edges [B, E])``,
            from one pass of the encoder.
        """
        layer_in, kl_logits, _ = self.scores(x)
        z = self.latent.sample_hard(layer_in, generator=generator)
        edges = self.to_edges(z)
        return self._nll(x, edges, 1), self._kl(kl_logits), edges, self._mode(layer_in)

    @torch.no_grad()
    def map_edges(self, x: Tensor) -> Tensor:
        """The most likely graph (MAP of the scores, no noise) ``[B, E]``."""
        layer_in, _, _ = self.scores(x)
        return self._mode(layer_in)

    def _mode(self, layer_in: Tensor) -> Tensor:
        """Edges ``[B, E]`` of the noise-free MAP of the latent layer's input."""
        return self.to_edges(self.latent.sample_hard(layer_in, noise=False))


def kl_optimal_shift(theta: Tensor) -> Tensor:
    """The constant ``c`` ``[B]`` minimising ``Σ_e KL(Gumbel(θ_e + c) ‖ Gumbel(0))``.

    ``d/dc Σ (θ_e + c + e^{−θ_e − c} − 1) = m − e^{−c} Σ e^{−θ_e} = 0`` gives
    ``c = logsumexp(−θ) − log m`` (log-space: no overflow for any θ).

    Args:
        theta: ``[B, m]`` scores of the ``m`` undirected edges.
    """
    return torch.logsumexp(-theta, dim=-1) - math.log(theta.shape[-1])
