"""The remaining public array functions: solver utilities and layout helpers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import structgrad.distributions as D
import structgrad.models.nri as NRI
import structgrad.relaxations as R
import structgrad.solvers as S

from .entries import B, Entry
from .entries import N as SIZE

__all__ = ["MORE_ENTRIES"]


def _sq(name: str, call: Any, **kw: Any) -> Entry:
    return Entry(name, (B, SIZE, SIZE), call, event=2, square=True, **{"min_n": 2, **kw})


def _numpy(x: Any) -> Any:
    """The numpy-only kernels take arrays: a valid tensor is handed over as one.

    Tensors numpy cannot hold (sparse, meta, float8) are handed over as they are.
    """
    if not isinstance(x, torch.Tensor) or x.layout != torch.strided or x.is_meta:
        return x
    if x.is_floating_point() and x.element_size() == 1:
        return x
    return np.ascontiguousarray(x.detach().numpy())


def _with_roots(fn: Any) -> Any:
    def call(x: Any) -> Any:
        roots = torch.zeros(x.shape[:-1], dtype=x.dtype) if isinstance(x, torch.Tensor) else x
        return fn(x, roots)

    return call


def _inverse(x: Any) -> Any:
    """The inverses the solver reports as found (``info == 0``); singular ones are flagged."""
    inverse, info = S.batched_inverse(x)
    inverse, info = torch.as_tensor(inverse), torch.as_tensor(info)
    return torch.where((info == 0)[..., None, None], inverse, torch.zeros_like(inverse))


MORE_ENTRIES: list[Entry] = [
    # rows [B, n] only (no unbatched form): two dims
    Entry("solvers.top_k_rows", (B, SIZE), lambda x: S.top_k_rows(_numpy(x), 2), 2, True),
    _sq("solvers.batched_inverse", _inverse, arrays=True, min_n=1, finite=True),
    _sq("solvers.wilson_arborescences", lambda x: S.wilson_arborescences(x).parents, arrays=True),
    _sq("distributions.to_upper", D.to_upper, min_n=0, shape_only=True),
    Entry("distributions.from_upper", (B, 10), D.from_upper, shape_only=True),
    Entry("distributions.gumbel_like", (B, SIZE), D.gumbel_like, event=0, shape_only=True),
    _sq(
        "distributions.multi_root_arborescence_marginals",
        _with_roots(D.multi_root_arborescence_marginals),
        min_n=1,
        reads_diagonal=False,
    ),
    _sq(
        "relaxations.multi_root_arborescence_marginals",
        _with_roots(R.multi_root_arborescence_marginals),
        min_n=1,
        reads_diagonal=False,
    ),
    # The NRI helpers run at every training step and never read values (NaN in,
    # NaN out: shape_only); their types, ranks and shapes are checked.
    _sq("models.nri.symmetrize", NRI.symmetrize, min_n=0, shape_only=True),
    _sq("models.nri.matrix_to_edges", NRI.matrix_to_edges, min_n=0, shape_only=True),
    _sq("models.nri.matrix_to_upper", NRI.matrix_to_upper, min_n=0, shape_only=True),
    Entry("models.nri.edges_to_matrix", (B, 20), NRI.edges_to_matrix, shape_only=True),
    Entry(
        "models.nri.upper_to_matrix",
        (B, 10),
        lambda x: NRI.upper_to_matrix(x, SIZE),
        shape_only=True,
    ),
    Entry(
        "models.nri.as_edge_types", (B, 20), lambda x: NRI.as_edge_types(x, 2), 0, shape_only=True
    ),
    Entry(
        "models.nri.kl_gumbel",
        (B, 20, 1),
        lambda x: NRI.kl_gumbel(x, SIZE),
        2,
        min_n=0,
        shape_only=True,
    ),
    Entry(
        "models.nri.kl_categorical_uniform",
        (B, 20, 2),
        lambda x: NRI.kl_categorical_uniform(x, SIZE),
        2,
        shape_only=True,
    ),
    Entry(
        "models.nri.nll_gaussian",
        (B, SIZE, 4, 2),
        lambda x: NRI.nll_gaussian(x, torch.zeros_like(x) if isinstance(x, torch.Tensor) else x),
        3,
        min_n=0,
        shape_only=True,
    ),
]
