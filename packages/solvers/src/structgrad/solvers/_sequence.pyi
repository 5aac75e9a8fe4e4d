from typing import Any

import numpy as np
from numpy.typing import NDArray

def top_k(
    scores: NDArray[np.floating[Any]],
    k: int,
    mask: NDArray[np.floating[Any]],
    order: NDArray[np.int64],
) -> None: ...
def binary_tree(
    scores: NDArray[np.floating[Any]],
    lengths: NDArray[np.int64],
    adj: NDArray[np.floating[Any]],
    spans: NDArray[np.int64],
    depth: NDArray[np.int64],
) -> None: ...
