"""Score-function estimators on the recursive Gumbel-max trick: score kind × baseline.

:class:`ScoreFunction` is the one REINFORCE layer: the score of the trace
(T-REINFORCE) or of the noise (E-REINFORCE), times a baseline (none, an EMA,
NVIL's learned one, leave-one-out); :data:`PRESETS` names the combinations.
:class:`RELAX` replaces the baseline by a critic evaluated on the conditional
utilities. Every layer draws with ``layer.draw`` (or ``forward``) and turns the
per-sample loss into the loss to backpropagate with ``attach``.
"""

from ._baselines import MovingAverage as MovingAverage
from ._draw import Draw as Draw
from ._draw import ScoreLayer as ScoreLayer
from ._reinforce import PRESETS as PRESETS
from ._reinforce import ScoreFunction as ScoreFunction
from ._reinforce import e_reinforce as e_reinforce
from ._reinforce import e_reinforce_plus as e_reinforce_plus
from ._reinforce import reinforce as reinforce
from ._reinforce import t_reinforce as t_reinforce
from ._reinforce import t_reinforce_plus as t_reinforce_plus
from ._relax import RELAX as RELAX
from ._relax import UtilityCritic as UtilityCritic
from ._relax import relax as relax

__all__ = [
    "PRESETS",
    "RELAX",
    "Draw",
    "MovingAverage",
    "ScoreFunction",
    "ScoreLayer",
    "UtilityCritic",
    "e_reinforce",
    "e_reinforce_plus",
    "reinforce",
    "relax",
    "t_reinforce",
    "t_reinforce_plus",
]
