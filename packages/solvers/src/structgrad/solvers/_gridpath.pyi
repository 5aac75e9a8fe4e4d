from typing import Any

import numpy as np
from numpy.typing import NDArray

def dijkstra(costs: NDArray[np.floating[Any]], mask: NDArray[np.floating[Any]]) -> None: ...
