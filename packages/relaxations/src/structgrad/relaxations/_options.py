"""Old and unknown option names of the fixed-signature relaxations: a ValueError.

Python refuses an unexpected keyword with a bare ``TypeError`` (and, where the
old name stood for a required ``tau``, one about the missing ``tau``); the
layers built from options (:class:`SSTLayer`, the estimators) say instead that
``temperature`` is now called ``tau``, or list the options they take
(:func:`structgrad.distributions.checks.check_options`). :func:`checks_options`
gives the functions with a fixed signature the same errors.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from structgrad.distributions.checks import RENAMED, check_options

__all__ = ["checks_options"]

P = ParamSpec("P")
R = TypeVar("R")

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def checks_options(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` refusing keywords it does not take with :func:`check_options`'s ``ValueError``.

    The names ``fn`` takes are read once, here. Where ``fn`` takes ``**options``
    of its own, which it checks itself, only the old names of its named
    parameters (``temperature`` for ``tau``) are refused before the call. A
    method's owner is named by its class (``GumbelSoftmaxLayer``, for its
    ``__init__``), a nested function by both (``cvx_relaxation.relax``).

    Args:
        fn: a function or method with a fixed signature.

    Returns:
        ``fn`` wrapped (same signature, name and docstring); a call with the
        names it takes costs one set look-up per keyword.
    """
    params = inspect.signature(fn).parameters.values()
    names = frozenset(p.name for p in params if p.kind in _NAMED and p.name != "self")
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    owner = fn.__qualname__.replace(".<locals>", "").removesuffix(".__init__")

    @functools.wraps(fn)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        for name in kwargs:
            if name not in names and (not open_ended or RENAMED.get(name) in names):
                check_options(owner, [name] if open_ended else kwargs, names)  # raises
        return fn(*args, **kwargs)

    return checked
