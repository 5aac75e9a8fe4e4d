"""The solvers and distributions tests across Python 3.10-3.13."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nox

from noxlib.base import (
    CONSTRAINTS,
    PACKAGES_DIR,
    PYTHON,
    ROOT,
    SIBLING_PREFIX,
    pyproject,
    requirement_name,
    sibling_closure,
    tmp_dir,
)

MATRIX_PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
MATRIX_PACKAGES = ["solvers", "distributions"]
# Pins of constraints/py311.txt whose release needs a newer Python: dropped there,
# so pip takes the newest release that supports it.
MATRIX_UNPINNED = {"3.10": {"numpy", "scipy", "networkx", "hypothesis"}}


def _interpreter(version: str) -> str | None:
    """A working ``python{version}``: on PATH, else pyenv's, else None.

    A pyenv shim is on PATH for every version pyenv knows but fails unless that
    version is selected, so each candidate is run once.
    """
    import glob
    import subprocess

    candidates = [shutil.which(f"python{version}")]
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/python{version}"))
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    check = "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"
    for path in filter(None, candidates):
        try:
            out = subprocess.run([path, "-c", check], capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return path
    return None


@nox.session(python=False)
@nox.parametrize("pkg", MATRIX_PACKAGES)
@nox.parametrize("version", MATRIX_PYTHONS)
def matrix(session: nox.Session, version: str, pkg: str) -> None:
    """One package's tests on another Python (3.10-3.13), where an interpreter exists.

    Looks for ``python{version}`` on PATH, then in pyenv; none: the session is
    skipped ("blocked here: no interpreter"). The CPU torch wheel on disk is for
    Python 3.11 only (PyPI's Linux torch is a CUDA build of several GB), so
    elsewhere torch is left out: the solvers run their tests less the
    torch ones, and a package that needs torch is skipped unless
    ``STRUCTGRAD_MATRIX_TORCH=1`` lets pip fetch PyPI's. The venv is a plain
    ``python -m venv`` in a temporary folder, removed after a pass.
    """
    python = _interpreter(version)
    if python is None:
        session.skip(f"blocked here: no Python {version} interpreter (PATH, pyenv, /usr/bin)")
    with_torch = version == PYTHON or os.environ.get("STRUCTGRAD_MATRIX_TORCH") == "1"
    project = pyproject(pkg)["project"]
    third_party = [
        r
        for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]
        if not requirement_name(r).startswith(SIBLING_PREFIX)
    ]
    if not with_torch and any(requirement_name(r) == "torch" for r in project["dependencies"]):
        session.skip(
            f"blocked here: {pkg} needs torch, whose CPU wheel on disk is for Python {PYTHON} "
            "only (STRUCTGRAD_MATRIX_TORCH=1 fetches PyPI's CUDA build, several GB)"
        )
    if not with_torch:
        third_party = [r for r in third_party if requirement_name(r) != "torch"]
    tmp = tmp_dir(session) / f"py{version}-{pkg}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    unpinned = MATRIX_UNPINNED.get(version, set())
    constraints = tmp / "constraints.txt"
    constraints.write_text(
        "".join(
            line + "\n"
            for line in Path(CONSTRAINTS).read_text().splitlines()
            if not line.strip() or line.lstrip().startswith("#")
            or requirement_name(line) not in unpinned
        )
    )  # fmt: skip
    session.run(python, "-m", "venv", str(tmp / "venv"), external=True)
    venv_python = str(tmp / "venv" / "bin" / "python")
    siblings = [str(PACKAGES_DIR / s) for s in sibling_closure(pkg)]
    session.run(
        venv_python, "-m", "pip", "install", "-c", str(constraints),
        *siblings, str(PACKAGES_DIR / pkg), *third_party, external=True,
    )  # fmt: skip
    session.run(venv_python, str(ROOT / "tools" / "check_installed.py"), external=True)
    args = []
    if not with_torch:  # test modules that import torch at the top, tests that use it
        tests = PACKAGES_DIR / pkg / "tests"
        for module in sorted(tests.glob("test_*.py")):
            if re.search(r"^import torch\b|^from torch\b", module.read_text(), re.M):
                args.append(f"--ignore={module.relative_to(PACKAGES_DIR / pkg)}")
        args += ["-k", "not torch"]
    session.chdir(PACKAGES_DIR / pkg)
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    session.run(
        venv_python, "-m", "pytest", "-p", "no:cacheprovider", *args, *session.posargs,
        env=env, external=True,
    )  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
