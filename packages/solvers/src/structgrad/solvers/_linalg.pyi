from typing import Any

import numpy as np
from numpy.typing import NDArray

def inverse(matrices: NDArray[np.floating[Any]], info: NDArray[np.int64]) -> None: ...
