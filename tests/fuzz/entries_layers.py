"""The estimators', distributions' and models' entry points (see :mod:`entries`)."""

from __future__ import annotations

from typing import Any

import torch

import structgrad.distributions as D
import structgrad.estimators as E
import structgrad.models as M

from .entries import B, Entry, N

__all__ = ["LAYER_ENTRIES"]

#: structure -> (primary shape, structure options)
STRUCTURES: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {
    "categorical": ((B, N), {}),
    "k_subset": ((B, N), {"k": 2}),
    "spanning_tree": ((B, N, N), {}),
    "arborescence": ((B, N, N), {}),
    "matching": ((B, N, N), {}),
}
TRACED = {**STRUCTURES, "binary_tree": ((B, N), {})}


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _entry(name: str, shape: tuple[int, ...], call: Any, **kw: Any) -> Entry:
    square = len(shape) == 3
    min_n = 2 if square and "matching" not in name else 1
    return Entry(name, shape, call, event=len(shape) - 1, min_n=min_n, square=square, **kw)


def _loss(z: torch.Tensor, event: int) -> torch.Tensor:
    """A per-sample loss of a sample: a fixed linear functional over its event dims."""
    w = torch.linspace(-1.0, 1.0, z.shape[-1], dtype=z.dtype)
    return (z * w).flatten(z.ndim - event).sum(-1)


def _layer_call(make: Any, event: int) -> Any:
    """Call a fresh layer (state such as an EMA baseline does not leak between cases)."""

    def call(x: Any) -> Any:
        layer = make()
        z = layer(x, generator=_gen())
        return layer.attach(_loss(z, event), z)

    return call


def _perturbation() -> list[Entry]:
    entries = []
    for preset in ("imle", "aimle", "blackbox", "straight_through", "perturbed"):
        make = getattr(E, preset)
        for name, (shape, opts) in STRUCTURES.items():
            entries.append(
                _entry(
                    f"estimators.{preset}({name})",
                    shape,
                    _layer_call(
                        lambda make=make, name=name, opts=opts: make(name, **opts), len(shape) - 1
                    ),
                    options={
                        "tau=-1": lambda x, make=make, name=name, opts=opts: make(
                            name, tau=-1.0, **opts
                        ),
                        "samples=0": lambda x, make=make, name=name, opts=opts: make(
                            name, samples=0, **opts
                        ),
                    },
                )
            )
        costs = _layer_call(lambda make=make: make("grid_path"), 2)
        entries.append(Entry(f"estimators.{preset}(grid_path)", (B, 4, 4), costs, 2, costs=True))
    for name, (shape, opts) in STRUCTURES.items():
        fy = E.FenchelYoungLoss(name, **opts)
        target = fy.layer.sample_hard(torch.randn(shape), noise=False)
        entries.append(
            _entry(
                f"estimators.FenchelYoungLoss({name})",
                shape,
                lambda x, fy=fy, t=target: fy(x, t),
                paired=True,
            )
        )
    return entries


def _masks_refused(name: str) -> bool:
    """Whether the structure's trace sampler refuses ``-inf`` logits (matchings)."""
    return D.structure(name).trace_ignores_masks is not None


def _score() -> list[Entry]:
    entries = []
    for name, (shape, opts) in TRACED.items():
        event = len(shape) - 1
        sample_event = 2 if name == "binary_tree" else event
        finite = _masks_refused(name)
        for preset in ("reinforce", "e_reinforce", "t_reinforce", "t_reinforce_plus"):
            make = getattr(E, preset)
            layer = _layer_call(
                lambda make=make, name=name, opts=opts: make(name, **opts), sample_event
            )
            entries.append(_entry(f"estimators.{preset}({name})", shape, layer, finite=finite))
        relax = _layer_call(
            lambda name=name, opts=opts, shape=shape: E.relax(name, event_shape=shape[1:], **opts),
            sample_event,
        )
        entries.append(
            _entry(f"estimators.relax({name})", shape, relax, fixed_event=True, finite=finite)
        )
        entries.append(
            _entry(
                f"estimators.sample_with_trace({name})",
                shape,
                lambda x, name=name, opts=opts: (
                    E.sample_with_trace(name, x, generator=_gen(), **opts).sample
                ),
                finite=finite,
            )
        )
        base = E.sample_with_trace(name, torch.randn(shape), generator=_gen(), **opts)
        # the recursive functions read a trace or utilities drawn for the base shape
        paired = {
            "trace_log_prob": lambda x, n, o, b: E.trace_log_prob(n, b.trace, x, **o),
            "conditional_utilities": lambda x, n, o, b: E.conditional_utilities(
                n, b.trace, x, generator=_gen(), **o
            ),
            "utility_log_prob": lambda x, n, o, b: E.utility_log_prob(n, b.utilities, x, **o),
        }
        for fn, call in paired.items():
            entries.append(
                _entry(
                    f"estimators.{fn}({name})",
                    shape,
                    lambda x, call=call, n=name, o=opts, b=base: call(x, n, o, b),
                    paired=True,
                )
            )
    return entries


def _distribution_values(dist: Any, shape: tuple[int, ...]) -> Any:
    values = [dist.log_partition, dist.marginals, dist.entropy()]
    sample = dist.sample((2,))
    values += [sample, dist.log_prob(sample), dist.rsample() if dist.has_rsample else sample]
    return tuple(values)


def _distributions() -> list[Entry]:
    sq = (B, N, N)
    return [
        _entry(
            "distributions.SpanningTree",
            sq,
            lambda x: _distribution_values(D.SpanningTree(x), sq),
        ),
        _entry(
            "distributions.Arborescence",
            sq,
            lambda x: _distribution_values(D.Arborescence(x), sq),
        ),
        _entry(
            "distributions.KSubset",
            (B, N),
            lambda x: _distribution_values(D.KSubset(x, 2), (B, N)),
        ),
        _entry(
            "distributions.PlackettLuce",
            (B, N),
            lambda x: (lambda d: (d.sample((2,)), d.log_prob(d.sample())))(D.PlackettLuce(x)),
        ),
    ]


def _models() -> list[Entry]:
    entries = []
    for name, methods in M.METHODS.items():
        if name == "edges":
            shape: tuple[int, ...] = (B, N, N)
            opts: dict[str, Any] = {}
        else:
            shape, opts = TRACED[name]
        sample_event = 2 if name == "binary_tree" else len(shape) - 1
        for method in methods:
            extra = {"event_shape": shape[1:]} if method == "relax" else {}
            layer = _layer_call(
                lambda name=name, method=method, opts={**opts, **extra}: M.latent(
                    name, method, **opts
                ),
                sample_event,
            )
            fixed = method == "relax"  # the default critic is built for one event shape
            # the score-function layers sample by the structure's trace
            finite = M.method_info(method).family == "score" and _masks_refused(name)
            entries.append(
                _entry(
                    f"models.latent({name}, {method})",
                    shape,
                    layer,
                    fixed_event=fixed,
                    finite=finite,
                )
            )
    return entries


LAYER_ENTRIES: list[Entry] = [*_perturbation(), *_score(), *_distributions(), *_models()]
