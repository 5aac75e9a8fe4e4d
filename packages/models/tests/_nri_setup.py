"""A tiny NRI model wired to any (structure, method) of the factory."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from structgrad.models import latent, nri

N_NODES, STEPS, DIMS, BATCH, HIDDEN = 5, 4, 2, 4, 16


def options_for(structure: str, method: str) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if structure == "k_subset":
        opts["k"] = N_NODES - 1
    if method in ("sst", "st-sst", "gumbel-softmax", "st", "indep"):
        opts["tau"] = 0.5
    if method == "aimle":
        opts["difference"] = "central"
    if method == "relax":
        shapes = {
            "categorical": (2,),
            "k_subset": (N_NODES * (N_NODES - 1) // 2,),
            "binary_tree": (N_NODES,),
        }
        opts["event_shape"] = shapes.get(structure, (N_NODES, N_NODES))
    return opts


def n_out(structure: str) -> int:
    return 2 if structure == "categorical" else 1


def to_structure(structure: str, logits: Tensor) -> Tensor:
    """Encoder logits [B, E, C] to the layer's scores."""
    if structure == "categorical":
        return logits  # [B, E, 2]: one categorical over edge types per edge
    m = nri.edges_to_matrix(logits[..., 0])  # [B, n, n]
    if structure == "k_subset":
        return nri.matrix_to_upper(nri.symmetrize(m))  # [B, n(n-1)/2]
    if structure == "spanning_tree":
        return nri.symmetrize(m)
    if structure == "binary_tree":
        return m.sum(-1)  # [B, n]: one score per node of the sequence
    return m  # arborescence, matching, edges


def to_rel_type(structure: str, z: Tensor) -> Tensor:
    """A sample of the layer to the decoder's [*, E, 2] edge-type weights."""
    if structure == "categorical":
        return z
    if structure == "k_subset":
        z = nri.upper_to_matrix(z, N_NODES)
    return nri.as_edge_types(nri.matrix_to_edges(z), 2)


def train_step(structure: str, method: str, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """One optimisation step of a tiny NRI model; returns the loss and the gradients."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    nvil = method == "nvil"
    encoder = nri.MLPEncoder(
        STEPS * DIMS, HIDDEN, n_out(structure), baseline=nvil, n_nodes=N_NODES
    ).to(dtype)
    decoder = nri.MLPDecoder(DIMS, 2, HIDDEN, HIDDEN, HIDDEN).to(dtype)
    layer = latent(structure, method, **options_for(structure, method)).to(dtype)
    params = [*encoder.parameters(), *decoder.parameters(), *layer.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    x = torch.randn(BATCH, N_NODES, STEPS, DIMS, generator=gen, dtype=dtype)

    logits, baseline = encoder(x)  # [B, E, C], [B] or None
    z = layer(to_structure(structure, logits), generator=gen)
    rel = to_rel_type(structure, z)  # [B, E, 2] or [K, B, E, 2]
    lead = rel.shape[:-2]
    xs = x.expand(*lead[:-1], *x.shape).reshape(-1, *x.shape[1:])
    pred = decoder(xs, rel.reshape(-1, *rel.shape[-2:]), pred_steps=2)
    nll = nri.nll_gaussian(pred, xs[:, :, 1:], var=1.0).reshape(lead)  # [B] or [K, B]
    kl = nri.kl_gumbel(logits, N_NODES)  # [B]
    loss = layer.attach(nll, baseline=baseline).mean() + kl.mean()
    opt.zero_grad()
    loss.backward()
    grads = [p.grad for p in params if p.grad is not None]
    opt.step()
    return {"loss": loss.detach(), "grads": grads, "z": z, "layer": layer, "params": params}
