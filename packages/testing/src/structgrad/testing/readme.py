"""Run the python code blocks of a README, so that documented examples stay true."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["python_blocks", "run_block"]


def python_blocks(readme: str | Path) -> list[str]:
    """The bodies of the fenced ```` ```python ```` blocks of ``readme``."""
    return re.findall(r"```python\n(.*?)```", Path(readme).read_text(), flags=re.S)


def run_block(code: str, readme: str | Path) -> None:
    """Execute one block in a fresh namespace (errors point at the README)."""
    exec(compile(code, str(readme), "exec"), {"__name__": "readme"})
