from typing import Any

import numpy as np
from numpy.typing import NDArray

def assignment(scores: NDArray[np.float64], perm: NDArray[np.floating[Any]]) -> None: ...
def crossing(
    scores: NDArray[np.floating[Any]], perm: NDArray[np.floating[Any]], edges: NDArray[np.int64]
) -> None: ...
