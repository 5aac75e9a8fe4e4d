"""Latent-structure layers (one factory for every structure and estimator) and the NRI model.

API summary (stable names)::

    from structgrad.models import latent, METHODS, LatentLayer

    layer = latent("spanning_tree", "sst", tau=1.0, max_range=15.0)  # an nn.Module
    z = layer(logits, lengths=None, generator=None)  # [*batch, n, n] -> sample [*batch, n, n]
    loss = layer.attach(per_sample_loss, z)  # [*batch]; identity if pathwise
    loss.mean().backward()
    layer.pathwise                      # True: gradient through z; False: score function
    layer.method                        # "sst"
    z_hard = layer.sample_hard(logits, generator=None, noise=True)  # perturb-and-MAP, no grad
    map_sample(structure, logits, noise=True, generator=None, **options)  # the same, functional

    METHODS: dict[str, tuple[str, ...]]  # structure -> method names accepted by `latent`
    method_info("imle")  # MethodInfo(name, family, pathwise, tau): flags checked before a build

The layer is the family's own module (``structgrad.relaxations.SSTLayer``,
``structgrad.estimators.SolverLayer``, ``ScoreFunction``, ``RELAX``, ...); every
one follows the contract of :class:`structgrad.distributions.LatentLayer`.
A structure is a name or a :class:`structgrad.distributions.Structure`
(``latent(structure("spanning_tree"), "sst")``), resolved once by
:func:`structgrad.distributions.structure`; which methods it has, its options
and its noise and MAP all come from that Structure. ``edges`` (independent
edges) is the one models-level pseudo-structure.

Score-function methods (``reinforce``, ``nvil``, ``t-reinforce+``, ``relax``)
return detached samples (``[K, *batch, *event]`` with ``samples=K``) and need
``attach``; ``nvil`` takes ``attach(loss, baseline=b)`` with ``b`` ``[*batch]``
from ``nri.MLPEncoder(..., baseline=True)``; ``relax`` needs ``event_shape=``.

Structures and logits: ``spanning_tree`` ``[*batch, n, n]`` (upper triangle read),
``k_subset`` ``[*batch, n]`` (option ``k``), ``categorical`` ``[*batch, n]``,
``edges`` (independent edges) ``[*batch, n, n]`` log-odds or ``[*batch, n, n, C]``
edge-type logits with ``categorical=True``, ``arborescence`` ``[*batch, n, n]``.

The NRI model lives in :mod:`structgrad.models.nri`: ``MLPEncoder``, ``MLPDecoder``,
layout helpers (``edges_to_matrix``, ``matrix_to_edges``, ``symmetrize``,
``matrix_to_upper``, ``upper_to_matrix``, ``as_edge_types``,
``off_diagonal_indices``, ``n_nodes_from_edges``), the objective (``nll_gaussian``, ``kl_gumbel``,
``kl_categorical_uniform``, ``elbo`` → ``ELBOTerms`` with ``.loss`` / ``.elbo``,
``VARIANCE = 5e-5``) and ``edge_metrics`` →
``EdgeMetrics``.

References:
    Paulus, Choi, Tarlow, Krause and Maddison, "Gradient Estimation with
    Stochastic Softmax Tricks", NeurIPS 2020, https://arxiv.org/abs/2006.08063.
    Kipf, Fetaya, Wang, Welling and Zemel, "Neural Relational Inference for
    Interacting Systems", ICML 2018, https://arxiv.org/abs/1802.04687.
"""

from importlib.metadata import version as _version

from structgrad.distributions import LatentLayer as LatentLayer

from ._factory import METHODS as METHODS
from ._factory import latent as latent
from ._map_sample import map_sample as map_sample
from ._registry import MethodInfo as MethodInfo
from ._registry import method_info as method_info

__version__ = _version("structgrad-models")

__all__ = [
    "METHODS",
    "LatentLayer",
    "MethodInfo",
    "__version__",
    "latent",
    "map_sample",
    "method_info",
]
