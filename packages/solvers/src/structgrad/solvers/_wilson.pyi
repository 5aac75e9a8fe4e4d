"""Type stub of the compiled Wilson sampler kernel (see ``_wilson.pyx``)."""

from typing import Any

import numpy as np
from numpy.typing import NDArray

def wilson(
    logw: NDArray[np.floating[Any]],
    inside: NDArray[np.uint8],
    root: int,
    seed: int,
    max_steps: int,
    parents: NDArray[np.int64],
    ok: NDArray[np.uint8],
) -> None:
    """Fill ``parents`` [count, B, n] and ``ok`` [count, B] from ``logw`` [B, n, n]."""
