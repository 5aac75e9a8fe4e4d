import os

import pytest
import torch

import structgrad.relaxations as relaxations


def pytest_sessionstart(session: pytest.Session) -> None:
    # Tests must exercise the installed distribution, not the source tree
    # (STRUCTGRAD_DEV=1 allows an editable install during development).
    if os.environ.get("STRUCTGRAD_DEV") != "1":
        assert "site-packages" in relaxations.__file__, relaxations.__file__


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test draws its random instances from a fixed seed."""
    torch.manual_seed(0)
