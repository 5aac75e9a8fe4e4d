"""A run whose model diverged: the errors that say so, and the model it finishes with.

A learning rate far too large can leave the parameters finite but so large
that the next forward pass overflows: structgrad's layers then refuse the
scores (NaN, ``+inf``, or ``-inf`` ones that forbid every structure) with
:class:`structgrad.solvers.InvalidScoresError`. The apps' data are checked, so
in a training step or an evaluation that error means the run diverged: the
loop stops it as for a non-finite loss and finishes with weights that work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from structgrad_app_common.checkpoint import load_checkpoint

__all__ = ["DIVERGED", "diverged_errors", "fall_back", "snapshot"]

#: How a stop reason for diverged scores starts.
DIVERGED = "scores diverged"


def diverged_errors() -> tuple[type[Exception], ...]:
    """The exception types that mean the model's outputs diverged (none without structgrad)."""
    try:
        from structgrad.solvers import InvalidScoresError
    except ImportError:  # a trainer without structgrad's layers
        return ()
    return (InvalidScoresError,)


def snapshot(model: Any) -> dict[str, Any]:
    """A copy of ``model``'s weights (the state a diverged run falls back to)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fall_back(model: Any, out: Path, initial: dict[str, Any]) -> None:
    """Load the weights of ``out/best.pt``, else ``out/last.pt``, else ``initial``.

    ``best.pt`` is what an app scores at the end; an app without one (dvae)
    keeps its last evaluated weights in ``last.pt``; ``initial`` are the
    weights this call started from (a divergence before any checkpoint).
    """
    saved = [out / name for name in ("best.pt", "last.pt") if (out / name).exists()]
    model.load_state_dict(load_checkpoint(saved[0])["model"] if saved else initial)
