"""Shared fixtures: every solver test runs on both the compiled kernels and their twins."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import structgrad.solvers as solvers
from structgrad.solvers._backend import ENV_VAR
from structgrad.testing import checks

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_sessionstart(session: pytest.Session) -> None:
    # Tests must exercise the installed wheel with its compiled extension
    # (STRUCTGRAD_DEV=1 allows an editable install during development).
    if os.environ.get("STRUCTGRAD_DEV") != "1":
        assert "site-packages" in solvers.__file__, solvers.__file__


@pytest.fixture(params=["compiled", "reference"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test once per backend; the compiled one must really be compiled."""
    if request.param == "reference":
        monkeypatch.setenv(ENV_VAR, "1")
    else:
        monkeypatch.delenv(ENV_VAR, raising=False)
    assert solvers.backend() == request.param
    yield request.param


@pytest.fixture
def assert_twin_agrees(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], Any]], None]:
    """A check that ``call()`` returns the same arrays on the compiled kernels and the twins."""

    def check(call: Callable[[], Any]) -> None:
        monkeypatch.delenv(ENV_VAR, raising=False)
        want = checks.as_arrays(call())
        monkeypatch.setenv(ENV_VAR, "1")
        got = checks.as_arrays(call())
        monkeypatch.delenv(ENV_VAR)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)

    return check
