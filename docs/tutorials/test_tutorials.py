"""Run every tutorial (``docs/tutorials/NN_*.py``) as a script; each asserts its own result.

``nox -s docs`` runs this file before building the site; by hand, from the
repository root: ``pytest docs/tutorials``. With ``STRUCTGRAD_TUTORIAL_OUTPUT``
set to a folder, each script's output is saved there as ``NN_name.txt``, and
the site shows it under the tutorial's code (``docs/gen_pages.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TUTORIALS = sorted(HERE.glob("[0-9][0-9]_*.py"))
# Each tutorial runs in seconds on one CPU core; this is a guard against a hang.
TIME_LIMIT_S = 120


def test_every_tutorial_is_in_the_navigation() -> None:
    """The site's navigation (mkdocs.yml) lists a page for each of the three tutorials."""
    assert len(TUTORIALS) == 3, [t.name for t in TUTORIALS]
    nav = (HERE.parent.parent / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [t.name for t in TUTORIALS if f"tutorials/{t.stem}.md" not in nav]
    assert not missing, f"not in mkdocs.yml's nav: {missing}"


@pytest.mark.parametrize("script", TUTORIALS, ids=[t.stem for t in TUTORIALS])
def test_tutorial_runs(script: Path) -> None:
    """The script exits 0: it trained and its own assertions on the result held."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT_S,
        env=env,
        cwd=HERE.parent.parent,
        check=False,
    )
    elapsed = time.perf_counter() - start
    print(proc.stdout)
    if out := os.environ.get("STRUCTGRAD_TUTORIAL_OUTPUT"):
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"{script.stem}.txt").write_text(proc.stdout, encoding="utf-8")
    assert proc.returncode == 0, f"{script.name} failed after {elapsed:.1f} s:\n{proc.stderr}"
