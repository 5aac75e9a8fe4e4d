"""Gradient estimators through discrete structures.

Perturbation-based layers around any MAP solver (IMLE, AIMLE, straight-through,
perturbed optimizers, blackbox differentiation), the recursive Gumbel-max trick
(sampling with traces, trace log-probabilities, ``E | T``) and the
score-function estimators built on it (REINFORCE with EMA / NVIL / leave-one-out
baselines, E- and T-REINFORCE, RELAX).
"""

from importlib.metadata import version as _version

from ._aimle import AIMLE as AIMLE
from ._aimle import aimle as aimle
from ._baselines import MovingAverage as MovingAverage
from ._bind import PERTURBATION_STRUCTURES as PERTURBATION_STRUCTURES
from ._bind import bind_solver as bind_solver
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
from ._recursive import RECURSIVE_STRUCTURES as RECURSIVE_STRUCTURES
from ._recursive import CategoricalTrace as CategoricalTrace
from ._recursive import RecursiveSample as RecursiveSample
from ._recursive import conditional_utilities as conditional_utilities
from ._recursive import sample_with_trace as sample_with_trace
from ._recursive import trace_log_prob as trace_log_prob
from ._recursive import utility_log_prob as utility_log_prob
from ._relax import RELAX as RELAX
from ._relax import UtilityCritic as UtilityCritic
from ._relax import relax as relax
from ._score import ScoreFunction as ScoreFunction
from ._score import e_reinforce as e_reinforce
from ._score import e_reinforce_plus as e_reinforce_plus
from ._score import reinforce as reinforce
from ._score import t_reinforce as t_reinforce
from ._score import t_reinforce_plus as t_reinforce_plus
from ._st import StraightThrough as StraightThrough
from ._st import straight_through as straight_through
from ._targets import AdaptiveTarget as AdaptiveTarget
from ._targets import Target as Target
from ._wrap import BoundSolver as BoundSolver

__version__ = _version("structgrad-estimators")

__all__ = [
    "AIMLE",
    "IMLE",
    "PERTURBATION_STRUCTURES",
    "RECURSIVE_STRUCTURES",
    "RELAX",
    "AdaptiveTarget",
    "Blackbox",
    "BoundSolver",
    "CategoricalTrace",
    "FenchelYoungLoss",
    "Gumbel",
    "MovingAverage",
    "NoiseDistribution",
    "Normal",
    "PerturbedOptimizer",
    "RecursiveSample",
    "ScoreFunction",
    "StraightThrough",
    "SumOfGamma",
    "Target",
    "UtilityCritic",
    "__version__",
    "aimle",
    "bind_solver",
    "blackbox",
    "conditional_utilities",
    "e_reinforce",
    "e_reinforce_plus",
    "imle",
    "perturbed",
    "reinforce",
    "relax",
    "sample_with_trace",
    "straight_through",
    "t_reinforce",
    "t_reinforce_plus",
    "trace_log_prob",
    "utility_log_prob",
]
