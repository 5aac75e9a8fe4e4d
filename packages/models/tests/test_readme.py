"""Every python code block of the package README runs."""

from pathlib import Path

import pytest

from structgrad.testing.readme import python_blocks, run_block

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_has_an_example() -> None:
    assert python_blocks(README)


@pytest.mark.parametrize("code", python_blocks(README))
def test_readme_example_runs(code: str) -> None:
    run_block(code, README)
