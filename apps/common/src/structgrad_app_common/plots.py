"""Writing matplotlib figures as PNG files, atomically (Agg backend, no display).

The apps' plots import ``plt`` from here: pyplot with the Agg backend set.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib

matplotlib.use("Agg")  # files only, no display: set once for every app's figures

import matplotlib.pyplot as plt

from structgrad_app_common.checkpoint import atomic_write_with

__all__ = ["one_at_a_time", "plt", "save_figure", "save_panels"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
# pyplot and matplotlib's text layout keep global state: runs in threads
# (joblib's threading backend) draw one figure at a time.
_PLOTTING = threading.RLock()


def one_at_a_time(plot: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate a plotting function so that threads run it one at a time."""

    @functools.wraps(plot)
    def serialized(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _PLOTTING:
            return plot(*args, **kwargs)

    return serialized


def save_figure(
    fig: Any, path: str | os.PathLike[str], *, dpi: int = 110, tight: bool = False
) -> Path:
    """Write ``fig`` as a PNG atomically and close it.

    Args:
        fig: a matplotlib figure.
        path: output PNG (its folder is created).
        dpi: resolution.
        tight: crop to the drawn content (``bbox_inches="tight"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    extra = {"bbox_inches": "tight"} if tight else {}
    atomic_write_with(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi, **extra))
    plt.close(fig)
    return Path(path)


def save_panels(fig: Any, axes: Iterable[Any], path: str | os.PathLike[str], *, title: str) -> Path:
    """Grid every panel, title the figure, lay it out and :func:`save_figure` it."""
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
