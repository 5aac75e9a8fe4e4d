"""The ``argparse`` types of the shared flags: checked numbers, ranges, joblib backends.

Each type turns a flag's text into its value or raises
``argparse.ArgumentTypeError``, which the parser reports as a one-line usage
error (exit code 2). The flags themselves are added by
:mod:`~structgrad_app_common.flags`, which re-exports these types.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from structgrad_app_common.parallel import LOCAL_BACKENDS

__all__ = [
    "float_pair",
    "joblib_backend",
    "jobs_int",
    "nonnegative_float",
    "positive_float",
    "positive_int",
    "positive_range",
    "seed_int",
]


def jobs_int(text: str) -> int:
    """``argparse`` type of ``--n-jobs``: an integer ``>= 1``, or joblib's negative counts.

    Raises:
        argparse.ArgumentTypeError: for a non-integer or 0.
    """
    value = int_value(text)
    if value == 0:
        raise argparse.ArgumentTypeError(
            "must be >= 1, or joblib's -1 (all cores), -2 (all but one), ..., got 0"
        )
    return value


def int_value(text: str) -> int:
    """``text`` as an integer (``argparse.ArgumentTypeError`` otherwise)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """``argparse`` type: an integer ``>= 1``.

    Raises:
        argparse.ArgumentTypeError: for a non-integer or a value below 1.
    """
    value = int_value(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seed_int(text: str) -> int:
    """``argparse`` type of a seed: an integer in ``[0, 2**63)`` (torch's and numpy's range).

    Raises:
        argparse.ArgumentTypeError: for a non-integer or a value outside the range.
    """
    value = int_value(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be a seed in [0, 2**63), got {value}")
    return value


def _checked_float(text: str, ok: Callable[[float], bool], wanted: str) -> float:
    """``float(text)`` if ``ok`` accepts it, else an ``ArgumentTypeError`` saying ``wanted``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not ok(value):  # NaN fails every test below
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """``argparse`` type: a finite number ``> 0`` (learning rates, variances)."""
    return _checked_float(text, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def nonnegative_float(text: str) -> float:
    """``argparse`` type: a finite number ``>= 0``."""
    return _checked_float(text, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")


def positive_range(text: str) -> float:
    """``argparse`` type: a number ``> 0``, ``inf`` allowed (a clipping range)."""
    return _checked_float(text, lambda v: v > 0, "> 0 (or inf)")


def float_pair(text: str) -> tuple[float, float]:
    """``argparse`` type: ``LOW,HIGH`` as two floats (a search range).

    Raises:
        argparse.ArgumentTypeError: unless the text is two comma-separated floats.
    """
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}") from None
    return low, high


def joblib_backend(name: str, *, scheduler: bool = False) -> str:
    """``argparse`` type of ``--backend``: one of the local joblib backends.

    Args:
        name: the flag's value.
        scheduler: the command also has ``--scheduler`` (named in the messages).

    Raises:
        argparse.ArgumentTypeError: for another name; ``dask`` and ``ray`` (once
            accepted, never set up) say what to use instead.
    """
    if name in LOCAL_BACKENDS:
        return name
    local = ", ".join(LOCAL_BACKENDS)
    cluster = (
        "run on a Dask cluster with --scheduler ADDRESS (or DASK_SCHEDULER_ADDRESS)"
        if scheduler
        else "this command runs on this machine only"
    )
    if name in ("dask", "ray"):
        raise argparse.ArgumentTypeError(
            f"{name!r} is no longer a backend: {cluster}; local joblib backends: {local}"
        )
    more = "; or --scheduler ADDRESS for a Dask cluster" if scheduler else ""
    raise argparse.ArgumentTypeError(f"unknown joblib backend {name!r}; choose {local}{more}")
