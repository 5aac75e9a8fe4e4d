"""Gradient estimators through discrete structures, one subpackage per family.

- :mod:`~structgrad.estimators.perturbation`: one perturb-and-MAP layer around
  any MAP solver, with the presets IMLE, AIMLE, blackbox differentiation,
  straight-through and the perturbed optimizer (and the Fenchel-Young loss);
- :mod:`~structgrad.estimators.recursive`: the recursive Gumbel-max trick
  (sampling with traces, trace log-probabilities, ``U | T``);
- :mod:`~structgrad.estimators.score`: the score-function estimators built on
  it (REINFORCE with EMA / NVIL / leave-one-out baselines, E- and T-REINFORCE,
  RELAX).

Every name below is re-exported from its family; import either way.
"""

from importlib.metadata import version as _version

from .perturbation import AIMLE as AIMLE
from .perturbation import IMLE as IMLE
from .perturbation import PERTURBATION_STRUCTURES as PERTURBATION_STRUCTURES
from .perturbation import AdaptiveTarget as AdaptiveTarget
from .perturbation import Blackbox as Blackbox
from .perturbation import BoundSolver as BoundSolver
from .perturbation import FenchelYoungLoss as FenchelYoungLoss
from .perturbation import FiniteDifference as FiniteDifference
from .perturbation import Gumbel as Gumbel
from .perturbation import Identity as Identity
from .perturbation import NoiseDistribution as NoiseDistribution
from .perturbation import NoiseScore as NoiseScore
from .perturbation import Normal as Normal
from .perturbation import PerturbedOptimizer as PerturbedOptimizer
from .perturbation import SolverLayer as SolverLayer
from .perturbation import StraightThrough as StraightThrough
from .perturbation import SumOfGamma as SumOfGamma
from .perturbation import Target as Target
from .perturbation import aimle as aimle
from .perturbation import bind_solver as bind_solver
from .perturbation import blackbox as blackbox
from .perturbation import imle as imle
from .perturbation import perturbed as perturbed
from .perturbation import straight_through as straight_through
from .recursive import RECURSIVE_STRUCTURES as RECURSIVE_STRUCTURES
from .recursive import CategoricalTrace as CategoricalTrace
from .recursive import RecursiveSample as RecursiveSample
from .recursive import conditional_utilities as conditional_utilities
from .recursive import sample_with_trace as sample_with_trace
from .recursive import trace_log_prob as trace_log_prob
from .recursive import utility_log_prob as utility_log_prob
from .score import RELAX as RELAX
from .score import Draw as Draw
from .score import MovingAverage as MovingAverage
from .score import ScoreFunction as ScoreFunction
from .score import ScoreLayer as ScoreLayer
from .score import UtilityCritic as UtilityCritic
from .score import e_reinforce as e_reinforce
from .score import e_reinforce_plus as e_reinforce_plus
from .score import reinforce as reinforce
from .score import relax as relax
from .score import t_reinforce as t_reinforce
from .score import t_reinforce_plus as t_reinforce_plus

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
    "Draw",
    "FenchelYoungLoss",
    "FiniteDifference",
    "Gumbel",
    "Identity",
    "MovingAverage",
    "NoiseDistribution",
    "NoiseScore",
    "Normal",
    "PerturbedOptimizer",
    "RecursiveSample",
    "ScoreFunction",
    "ScoreLayer",
    "SolverLayer",
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
