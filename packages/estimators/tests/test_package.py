import importlib.metadata

import structgrad.estimators as pkg


def test_version_matches_metadata() -> None:
    assert pkg.__version__ == importlib.metadata.version("structgrad-estimators")


def test_installed_not_source_tree() -> None:
    assert "site-packages" in pkg.__file__
