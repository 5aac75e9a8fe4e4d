"""Type stub of the compiled Chu-Liu/Edmonds kernel (see ``_edmonds.pyx``)."""

from typing import Any

import numpy as np
from numpy.typing import NDArray

def edmonds(
    scores: NDArray[np.floating[Any]],
    lengths: NDArray[np.int64],
    root: int,
    out: NDArray[np.floating[Any]],
    edges: NDArray[np.int64],
    members: NDArray[np.uint8],
    n_steps: NDArray[np.int64],
) -> None:
    """Fill ``out`` [B, n, n], ``edges`` [B, S, 2], ``members`` [B, S, n] and ``n_steps`` [B]."""
