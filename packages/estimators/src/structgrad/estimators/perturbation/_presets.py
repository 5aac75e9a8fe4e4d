"""The perturbation-based estimators as presets of :class:`SolverLayer`.

Each preset is a noise default and a backward rule built from the preset's own
options; everything else (``noise``, ``tau``, ``samples``, ``reduce`` and the
solver options ``k``, ``root``, ``minimize``, ``event_dims``) is the layer's.

=================== ============= ==================================================
preset              noise         backward rule (its options)
=================== ============= ==================================================
``imle``            Gumbel        finite difference, ``Target(λ=1)`` (``target``,
                                  ``tau_target``, ``difference``, ``marginal_samples``)
``aimle``           Gumbel        the same with ``AdaptiveTarget()``
``blackbox``        none          forward difference, ``Target(lam, scale=True)`` (``lam``)
``straight_through`` none         identity
``perturbed``       Normal        noise-score Jacobian, mean of ``samples=10`` (``baseline``)
=================== ============= ==================================================

Each works as a call (``imle("k_subset", k=5)``) or, like torch-adaptive-imle,
as a decorator over a batched solver (``@aimle(target=AdaptiveTarget())``).
The capitalised names (``IMLE``, ``AIMLE``, ...) are the same presets.

References:
    Niepert, Minervini, Franceschi, "Implicit MLE", NeurIPS 2021,
    https://arxiv.org/abs/2106.01798.
    Minervini, Franceschi, Niepert, "Adaptive Perturbation-Based Gradient
    Estimation for Discrete Latent Variable Models", AAAI 2023,
    https://arxiv.org/abs/2209.04862.
    Vlastelica, Paulus, Musil, Martius, Rolínek, "Differentiation of Blackbox
    Combinatorial Solvers", ICLR 2020, https://arxiv.org/abs/1912.02175.
    Bengio, Léonard, Courville, "Estimating or Propagating Gradients Through
    Stochastic Neurons", 2013, https://arxiv.org/abs/1308.3432.
    Berthet, Blondel, Teboul, Cuturi, Vert, Bach, "Learning with
    Differentiable Perturbed Optimizers", NeurIPS 2020, https://arxiv.org/abs/2002.08676.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from structgrad.distributions import structure
from structgrad.distributions.checks import RENAMED, check_options

from ._core import FiniteDifference, GradientRule, Identity, NoiseScore
from ._layer import SolverLayer
from ._solver import Solver
from ._targets import AdaptiveTarget, Target

__all__ = [
    "AIMLE",
    "IMLE",
    "PRESETS",
    "Blackbox",
    "PerturbedOptimizer",
    "Preset",
    "StraightThrough",
    "aimle",
    "blackbox",
    "imle",
    "perturbed",
    "straight_through",
]

#: Options of every preset: the layer's and the solver binding's.
LAYER_OPTIONS = ("noise", "tau", "samples", "reduce")
SOLVER_OPTIONS = ("k", "root", "minimize", "event_dims")
_DIFFERENCES = ("forward", "central")


def _finite_difference(
    default_target: Callable[[], Target],
    *,
    target: Target | None = None,
    tau_target: float | None = None,
    difference: str = "forward",
    marginal_samples: int = 1,
) -> FiniteDifference:
    if target is None:
        target = default_target()
    if not isinstance(target, Target):
        raise ValueError(f"target must be a Target or AdaptiveTarget, got {target!r}")
    if difference not in _DIFFERENCES:
        raise ValueError(f"difference must be one of {_DIFFERENCES}, got {difference!r}")
    tt = None if tau_target is None else float(tau_target)
    return FiniteDifference(target, difference == "central", tt, marginal_samples)


def _blackbox_rule(*, lam: float = 10.0) -> FiniteDifference:
    # Vlastelica et al.'s interpolation in maximisation form: IMLE without noise,
    # scaled by 1/λ: (MAP(θ) − MAP(θ − λ dL/dz)) / λ. Target checks λ > 0.
    return FiniteDifference(Target(lam, alpha=1.0, scale=True))


@dataclass(frozen=True)
class Preset:
    """A named configuration of :class:`SolverLayer`.

    Attributes:
        name: the preset's name (the method name in ``structgrad.models.METHODS``).
        rule: builds the backward rule from the preset's own options.
        rule_options: the names ``rule`` takes.
        defaults: layer defaults that differ from :class:`SolverLayer`'s.
    """

    name: str
    rule: Callable[..., GradientRule]
    rule_options: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def options(self) -> tuple[str, ...]:
        """Every option name the preset accepts (for some solver)."""
        return (*LAYER_OPTIONS, *self.rule_options, *SOLVER_OPTIONS)

    def accepted(self, solver: str | Solver) -> tuple[str, ...]:
        """The option names the preset accepts around ``solver``.

        A structure name takes its own ``k`` / ``root`` (its event dims are
        fixed); a callable takes ``event_dims``; both take ``minimize``.
        """
        if not isinstance(solver, str):
            return tuple(o for o in self.options if o not in ("k", "root"))
        try:
            own = structure(solver).option_names
        except ValueError:  # an unknown name: bind_solver says so
            own = SOLVER_OPTIONS
        skip = {o for o in ("k", "root", "event_dims") if o not in own}
        return tuple(o for o in self.options if o not in skip)

    def build(self, solver: str | Solver, options: dict[str, Any]) -> SolverLayer:
        """The layer for ``solver`` with ``options``.

        Raises:
            ValueError: for an option the preset does not take (an old name such as
                ``temperature`` says its new one), or a bad value.
        """
        label = solver if isinstance(solver, str) else getattr(solver, "__name__", "solver")
        opts = {**self.defaults, **options}
        # Without noise tau scales nothing here (IMLE's also sets the target's);
        # an old name of tau (temperature, sigma) gets the same answer.
        given = [k for k in options if k == "tau" or RENAMED.get(k) == "tau"]
        if self.name in _NOISE_ONLY_TAU and given and opts.get("noise") is None:
            raise ValueError(
                f"{self.name}({label!r}): {given[0]} scales the noise and this layer has none "
                "(noise=None): pass noise= (e.g. 'gumbel') with tau, or drop it"
            )
        # (solver options the solver does not take get bind_solver's own message)
        mine = {k: v for k, v in options.items() if k not in SOLVER_OPTIONS}
        check_options(f"{self.name}({label!r})", mine, self.accepted(solver))
        rule = self.rule(**{k: opts.pop(k) for k in self.rule_options if k in opts})
        solver_options = {k: opts.pop(k) for k in SOLVER_OPTIONS if k in opts}
        layer = SolverLayer(solver, gradient=rule, solver_options=solver_options, **opts)
        layer.method = self.name.replace("_", "-") if self.name != "straight_through" else "ste"
        return layer

    def __call__(self, solver: str | Solver | None = None, **options: Any) -> Any:
        """The layer, or (``solver=None``) a decorator that builds it around a function."""
        if solver is not None:
            return self.build(solver, options)

        def decorate(fn: Solver) -> SolverLayer:
            solver = _Decorated(fn)
            layer = self.build(solver, options)
            # The layer stands in for the decorated function: keep its name and doc.
            functools.update_wrapper(layer, solver, updated=())
            return layer

        return decorate


class _Decorated:
    """The function under a decorator's layer, pickled by the name the layer took.

    The layer replaces the function at its module-level name, so pickle could
    not find the function by that name (``torch.save`` of a model holding the
    layer failed); this one is found again through the layer. Anything else
    (a local function, a partial) pickles, or fails to, as itself.
    """

    def __init__(self, fn: Solver) -> None:
        self._solver = fn
        # Name and doc only: the callable's own attributes stay on it.
        functools.update_wrapper(self, fn, updated=())
        if not hasattr(fn, "__name__"):  # a callable object or a partial: its type's
            self.__name__ = type(fn).__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._solver(*args, **kwargs)

    def __deepcopy__(self, memo: dict[int, Any]) -> _Decorated:
        if isinstance(self._solver, types.FunctionType | types.BuiltinFunctionType):
            return self  # a function is copied by reference
        return _Decorated(copy.deepcopy(self._solver, memo))  # a stateful callable is not

    def __reduce__(self) -> tuple[Any, ...]:
        module = getattr(self._solver, "__module__", None)
        name = getattr(self._solver, "__qualname__", None)
        with contextlib.suppress(Exception):  # not found by its name: pickled as itself
            if _decorated_solver(module, name) is self:  # type: ignore[arg-type]
                return (_decorated_solver, (module, name))
        return (_Decorated, (self._solver,))


def _decorated_solver(module: str, name: str) -> Any:
    """The solver under the module-level ``module.name``: a decorator's layer, or a function."""
    found: Any = importlib.import_module(module)
    for part in name.split("."):
        found = getattr(found, part)
    return found.solver.fn if isinstance(found, SolverLayer) else found


_FD_OPTIONS = ("target", "tau_target", "difference", "marginal_samples")
#: The presets whose tau only scales the noise.
_NOISE_ONLY_TAU = ("blackbox", "straight_through")

#: The perturbation-based presets by name.
PRESETS: dict[str, Preset] = {
    "imle": Preset("imle", functools.partial(_finite_difference, Target), _FD_OPTIONS),
    "aimle": Preset("aimle", functools.partial(_finite_difference, AdaptiveTarget), _FD_OPTIONS),
    "blackbox": Preset("blackbox", _blackbox_rule, ("lam",), {"noise": None}),
    "straight_through": Preset("straight_through", Identity, (), {"noise": None}),
    "perturbed": Preset(
        "perturbed",
        NoiseScore,
        ("baseline",),
        {"noise": "normal", "samples": 10, "reduce": "mean"},
    ),
}

imle = PRESETS["imle"]
aimle = PRESETS["aimle"]
blackbox = PRESETS["blackbox"]
straight_through = PRESETS["straight_through"]
perturbed = PRESETS["perturbed"]

# The class-style names of earlier versions: the same presets.
IMLE = imle
AIMLE = aimle
Blackbox = blackbox
StraightThrough = straight_through
PerturbedOptimizer = perturbed
