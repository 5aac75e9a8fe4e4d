"""Run the python code blocks of a README, so that documented examples stay true."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

__all__ = ["python_blocks", "readme_tests", "run_block"]


def python_blocks(readme: str | Path) -> list[str]:
    """The bodies of the fenced ```` ```python ```` blocks of ``readme``."""
    return re.findall(r"```python\n(.*?)```", Path(readme).read_text(), flags=re.S)


def run_block(code: str, readme: str | Path) -> None:
    """Execute one block in a fresh namespace (errors point at the README)."""
    exec(compile(code, str(readme), "exec"), {"__name__": "readme"})


def readme_tests(readme: str | Path) -> tuple[Callable[[], None], Callable[[str], None]]:
    """The two pytest tests of a package README, to bind to ``test_*`` names.

    ``test_readme_has_an_example`` fails if the README has no python block;
    ``test_readme_example_runs`` is parametrised over the blocks and runs each.
    pytest is imported here, so the module imports without it.

    Example::

        test_readme_has_an_example, test_readme_example_runs = readme_tests(README)
    """
    import pytest

    blocks = python_blocks(readme)

    def test_readme_has_an_example() -> None:
        assert blocks, f"{readme} has no ```python block"

    @pytest.mark.parametrize("code", blocks)
    def test_readme_example_runs(code: str) -> None:
        run_block(code, readme)

    return test_readme_has_an_example, test_readme_example_runs
