from typing import Any

import numpy as np
from numpy.typing import NDArray

def kruskal(
    scores: NDArray[np.floating[Any]],
    lengths: NDArray[np.int64],
    adj: NDArray[np.floating[Any]],
    edges: NDArray[np.int64],
    components: NDArray[np.int64],
    record_trace: bool,
) -> None: ...
