import os
import sys

import pytest
import torch

import structgrad.distributions as distributions

sys.path.insert(0, os.path.dirname(__file__))  # the brute-force oracles (brute.py)


def pytest_sessionstart(session: pytest.Session) -> None:
    # Tests must exercise the installed distribution, not the source tree
    # (STRUCTGRAD_DEV=1 allows an editable install during development).
    if os.environ.get("STRUCTGRAD_DEV") != "1":
        assert "site-packages" in distributions.__file__, distributions.__file__


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test draws its random instances from a fixed seed."""
    torch.manual_seed(0)
