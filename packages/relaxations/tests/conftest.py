import pytest

import structgrad.relaxations as relaxations


def pytest_sessionstart(session: pytest.Session) -> None:
    # Tests must exercise the installed distribution, not the source tree.
    assert "site-packages" in relaxations.__file__, relaxations.__file__
