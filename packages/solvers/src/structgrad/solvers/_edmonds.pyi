import numpy as np
from numpy.typing import NDArray

def edmonds(
    scores: NDArray[np.float64],
    lengths: NDArray[np.int64],
    root: int,
    adj: NDArray[np.float64],
    edges: NDArray[np.int64],
    members: NDArray[np.uint8],
    n_steps: NDArray[np.int64],
    record_trace: bool,
) -> None: ...
