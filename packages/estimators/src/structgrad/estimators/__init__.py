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

# --- recursive Gumbel-max: traces, log-probabilities, E | T ---
from ._recursive import RECURSIVE_STRUCTURES as RECURSIVE_STRUCTURES
from ._recursive import CategoricalTrace as CategoricalTrace
from ._recursive import RecursiveSample as RecursiveSample
from ._recursive import conditional_utilities as conditional_utilities
from ._recursive import sample_with_trace as sample_with_trace
from ._recursive import trace_log_prob as trace_log_prob
from ._recursive import utility_log_prob as utility_log_prob

_RECURSIVE = [
    "RECURSIVE_STRUCTURES",
    "CategoricalTrace",
    "RecursiveSample",
    "conditional_utilities",
    "sample_with_trace",
    "trace_log_prob",
    "utility_log_prob",
]
# --- end recursive ---

# --- score-function estimators (part 2) ---
from ._baselines import MovingAverage as MovingAverage  # noqa: E402
from ._relax import RELAX as RELAX  # noqa: E402
from ._relax import UtilityCritic as UtilityCritic  # noqa: E402
from ._relax import relax as relax  # noqa: E402
from ._score import ScoreFunction as ScoreFunction  # noqa: E402
from ._score import e_reinforce as e_reinforce  # noqa: E402
from ._score import e_reinforce_plus as e_reinforce_plus  # noqa: E402
from ._score import reinforce as reinforce  # noqa: E402
from ._score import t_reinforce as t_reinforce  # noqa: E402
from ._score import t_reinforce_plus as t_reinforce_plus  # noqa: E402

_PART2: list[str] = [
    "RELAX",
    "MovingAverage",
    "ScoreFunction",
    "UtilityCritic",
    "e_reinforce",
    "e_reinforce_plus",
    "reinforce",
    "relax",
    "t_reinforce",
    "t_reinforce_plus",
]
# --- end part 2 ---

__version__ = _version("structgrad-estimators")

__all__ = ["__version__", *_PART1, *_RECURSIVE, *_PART2]
