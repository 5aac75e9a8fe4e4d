"""Choice between the compiled kernels and their pure-Python twins.

Setting ``STRUCTGRAD_SOLVERS_PURE_PYTHON=1`` forces the twins; it is read at
every call, so tests can switch backends with ``monkeypatch.setenv``. If a
compiled module cannot be imported the twin is used as well, and
:func:`backend` reports it, so a test suite can insist on the compiled path.
"""

from __future__ import annotations

import importlib
import os
from functools import cache
from types import ModuleType

ENV_VAR = "STRUCTGRAD_SOLVERS_PURE_PYTHON"
COMPILED_MODULES = (
    "_kruskal",
    "_sequence",
    "_edmonds",
    "_assignment",
    "_gridpath",
    "_linalg",
    "_wilson",
)


def _forced_reference() -> bool:
    return os.environ.get(ENV_VAR, "").strip().lower() not in ("", "0", "false", "no")


@cache
def _compiled(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"structgrad.solvers.{name}")
    except ImportError:
        return None


def kernel(compiled: str, reference: str) -> ModuleType:
    """The module whose kernels should run now: compiled unless forced or missing.

    Args:
        compiled: name of the Cython module inside ``structgrad.solvers``.
        reference: name of its pure-Python twin inside ``structgrad.solvers``.
    """
    if not _forced_reference():
        module = _compiled(compiled)
        if module is not None:
            return module
    return importlib.import_module(f"structgrad.solvers.{reference}")


def backend() -> str:
    """``"reference"`` when the pure-Python twins are in use, else ``"compiled"``.

    The twins are in use when ``STRUCTGRAD_SOLVERS_PURE_PYTHON`` asks for them or
    when a compiled kernel is missing. An install without a working C compiler
    leaves every compiled kernel out (``setup.py`` prints one warning and
    installs the pure-Python twins, the same results about 20-250x slower), so
    there this reports ``"reference"``; reinstall with a C compiler (and
    ``--no-cache-dir``) for ``"compiled"``.
    """
    if _forced_reference():
        return "reference"
    compiled = all(_compiled(name) is not None for name in COMPILED_MODULES)
    return "compiled" if compiled else "reference"
