"""Perturbation-based estimators: one perturb-and-MAP layer, five presets.

:class:`SolverLayer` draws ``MAP(θ + τε)`` through a structure's solver or a
user's batched solver; its backward is a rule (:class:`FiniteDifference`,
:class:`Identity`, :class:`NoiseScore`). IMLE, AIMLE, blackbox
differentiation, straight-through and the perturbed optimizer are presets of
it (:data:`PRESETS`); the Fenchel-Young loss uses the perturbed optimizer's draws.
"""

from ._bind import PERTURBATION_STRUCTURES as PERTURBATION_STRUCTURES
from ._bind import bind_solver as bind_solver
from ._core import FiniteDifference as FiniteDifference
from ._core import Identity as Identity
from ._core import NoiseScore as NoiseScore
from ._fenchel_young import FenchelYoungLoss as FenchelYoungLoss
from ._layer import SolverLayer as SolverLayer
from ._noise import Gumbel as Gumbel
from ._noise import NoiseDistribution as NoiseDistribution
from ._noise import Normal as Normal
from ._noise import SumOfGamma as SumOfGamma
from ._presets import AIMLE as AIMLE
from ._presets import IMLE as IMLE
from ._presets import PRESETS as PRESETS
from ._presets import Blackbox as Blackbox
from ._presets import PerturbedOptimizer as PerturbedOptimizer
from ._presets import Preset as Preset
from ._presets import StraightThrough as StraightThrough
from ._presets import aimle as aimle
from ._presets import blackbox as blackbox
from ._presets import imle as imle
from ._presets import perturbed as perturbed
from ._presets import straight_through as straight_through
from ._solver import BoundSolver as BoundSolver
from ._targets import AdaptiveTarget as AdaptiveTarget
from ._targets import Target as Target

__all__ = [
    "AIMLE",
    "IMLE",
    "PERTURBATION_STRUCTURES",
    "PRESETS",
    "AdaptiveTarget",
    "Blackbox",
    "BoundSolver",
    "FenchelYoungLoss",
    "FiniteDifference",
    "Gumbel",
    "Identity",
    "NoiseDistribution",
    "NoiseScore",
    "Normal",
    "PerturbedOptimizer",
    "Preset",
    "SolverLayer",
    "StraightThrough",
    "SumOfGamma",
    "Target",
    "aimle",
    "bind_solver",
    "blackbox",
    "imle",
    "perturbed",
    "straight_through",
]
