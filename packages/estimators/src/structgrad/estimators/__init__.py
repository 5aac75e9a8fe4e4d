"""Gradient estimators through discrete structures.

IMLE, AIMLE, perturbed optimizers and score-function estimators.
"""

from importlib.metadata import version as _version

# --- perturbation-based (part 1) ---
from ._aimle import AIMLE as AIMLE
from ._aimle import aimle as aimle
from ._blackbox import Blackbox as Blackbox
from ._blackbox import blackbox as blackbox
from ._imle import IMLE as IMLE
from ._imle import imle as imle
from ._noise import Gumbel as Gumbel
from ._noise import NoiseDistribution as NoiseDistribution
from ._noise import Normal as Normal
from ._noise import SumOfGamma as SumOfGamma
from ._perturbed import FenchelYoungLoss as FenchelYoungLoss
from ._perturbed import PerturbedOptimizer as PerturbedOptimizer
from ._perturbed import perturbed as perturbed
from ._st import StraightThrough as StraightThrough
from ._st import straight_through as straight_through
from ._targets import AdaptiveTarget as AdaptiveTarget
from ._targets import Target as Target
from ._wrap import PERTURBATION_STRUCTURES as PERTURBATION_STRUCTURES
from ._wrap import BoundSolver as BoundSolver
from ._wrap import bind_solver as bind_solver

_PART1 = [
    "AIMLE",
    "PERTURBATION_STRUCTURES",
    "AdaptiveTarget",
    "Blackbox",
    "BoundSolver",
    "FenchelYoungLoss",
    "Gumbel",
    "IMLE",
    "NoiseDistribution",
    "Normal",
    "PerturbedOptimizer",
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
# --- end part 1 ---

__version__ = _version("structgrad-estimators")

__all__ = ["__version__", *_PART1]
