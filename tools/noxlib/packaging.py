"""Sdists and wheels: build (with the no-compiler fallback and cibuildwheel)."""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import nox

from noxlib.base import (
    CONSTRAINTS,
    PACKAGES,
    PACKAGES_DIR,
    PYTHON,
    ROOT,
    fresh_venv,
    install,
    no_compiler_env,
    pyproject,
    release,
    tmp_dir,
)

DIST_DIR = ROOT / "dist"
FALLBACK_WARNING = "structgrad-solvers: no working C compiler"
CIBW_IDENTIFIERS = {
    "linux": {f"cp3{v}-{p}_x86_64" for v in (10, 11, 12, 13) for p in ("manylinux", "musllinux")},
    "macos": {f"cp3{v}-macosx_{a}" for v in (10, 11, 12, 13) for a in ("x86_64", "arm64")},
    "windows": {f"cp3{v}-win_amd64" for v in (10, 11, 12, 13)},
}


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Sdist and wheel of every package (dist/), twine check, and the solvers' installs.

    1. ``python -m build`` of every package into dist/ (build dependencies pinned
       by the constraints file), ``twine check --strict``; the solvers sdist
       must carry the .pyx sources and no built or generated file, its wheel
       every compiled kernel.
    2. The solvers wheel (with its ``test`` extra, wheels only) in a fresh venv
       with no C compiler reachable: the solvers tests pass against it, and
       cibuildwheel's ``test-command`` too.
    3. The solvers sdist in a fresh venv whose C compiler fails: the install
       succeeds with ONE fallback warning, ``backend()`` is ``'reference'`` and a
       solve works.
    4. ``cibuildwheel --print-build-identifiers`` for linux, macos and windows
       lists CPython 3.10-3.13 (offline: it only reads the configuration).
    """
    tmp = tmp_dir(session)
    install(session, "build", "twine", "cibuildwheel")
    shutil.rmtree(DIST_DIR, ignore_errors=True)
    # PIP_CONSTRAINT reaches pip inside build's isolated environments (setuptools, Cython).
    build_env = {"PIP_CONSTRAINT": CONSTRAINTS, "STRUCTGRAD_SOLVERS_REQUIRE_COMPILED": "1"}
    for pkg in PACKAGES:
        session.run(
            "python", "-m", "build", "--outdir", str(DIST_DIR), str(PACKAGES_DIR / pkg),
            env=build_env,
        )  # fmt: skip
    artefacts = sorted(str(p) for p in DIST_DIR.iterdir())
    session.run("twine", "check", "--strict", *artefacts)
    sdist, wheel = _check_solvers_artefacts(session)
    testing_wheel = _one(session, "structgrad_testing-*.whl")

    # 2. The wheel, no compiler: the tests (torch from the constraints file's CPU wheel).
    bin_dir = fresh_venv(session, tmp / "wheel-venv")
    env = no_compiler_env(bin_dir)
    python = str(bin_dir / "python")
    session.run(
        python, "-m", "pip", "install", "--only-binary=:all:", "-c", CONSTRAINTS,
        f"{wheel}[test]", testing_wheel, env=env, external=True,
    )  # fmt: skip
    session.chdir(PACKAGES_DIR / "solvers")
    session.run(  # no compiler on PATH; the solvers imported from the wheel, compiled
        python, "-c",
        "import shutil; assert not (shutil.which('gcc') or shutil.which('cc')), 'cc on PATH'; "
        "import structgrad.solvers as s; "
        "assert 'wheel-venv' in s.__file__ and s.backend() == 'compiled', s.__file__",
        env=env, external=True,
    )  # fmt: skip
    test_env = {**env, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    session.run(python, "-m", "pytest", "-p", "no:cacheprovider", "-q", env=test_env, external=True)
    cibw = pyproject("solvers")["tool"]["cibuildwheel"]
    session.chdir(tmp)
    # As cibuildwheel runs it: the wheel's venv first on PATH (nox puts its own first).
    test_command = f'PATH="{bin_dir}:$PATH"; {cibw["test-command"]}'
    session.run("bash", "-c", test_command, env=env, external=True)

    # 3. The sdist with a failing compiler: the pure-Python fallback, one warning.
    bin_dir = fresh_venv(session, tmp / "sdist-venv")
    env = {**no_compiler_env(bin_dir), "PIP_CONSTRAINT": CONSTRAINTS}
    python = str(bin_dir / "python")
    output = session.run(
        python, "-m", "pip", "install", "-v", "--no-cache-dir", "-c", CONSTRAINTS, sdist,
        env=env, external=True, silent=True,
    )  # fmt: skip
    assert isinstance(output, str)
    warnings = [line.strip() for line in output.splitlines() if FALLBACK_WARNING in line]
    if len(warnings) != 1:
        session.error(f"expected one {FALLBACK_WARNING!r} warning in pip's output, got {warnings}")
    session.log(f"the fallback warning: {warnings[0]}")
    session.run(
        python, "-c",
        "import numpy as np, structgrad.solvers as s; "
        "assert s.backend() == 'reference', s.backend(); "
        "tree = s.max_spanning_tree(np.random.default_rng(0).normal(size=(4, 6, 6))); "
        "assert (tree.sum(axis=(1, 2)) == 10).all(); print('backend:', s.backend())",
        env=env, external=True,
    )  # fmt: skip

    # 4. cibuildwheel's build matrix.
    session.chdir(ROOT)
    for platform, want in CIBW_IDENTIFIERS.items():
        listed = session.run(
            "cibuildwheel", "--print-build-identifiers", "--platform", platform,
            str(PACKAGES_DIR / "solvers"), silent=True,
        )  # fmt: skip
        assert isinstance(listed, str)
        got = {line.strip() for line in listed.splitlines() if line.strip()}
        if got != want:
            session.error(f"cibuildwheel {platform}: {sorted(got)} != {sorted(want)}")
        session.log(f"cibuildwheel {platform}: {' '.join(sorted(got))}")
    release(session)


def _one(session: nox.Session, pattern: str) -> str:
    found = sorted(DIST_DIR.glob(pattern))
    if len(found) != 1:
        session.error(f"dist/{pattern}: {[p.name for p in found]}")
    return str(found[0])


def _check_solvers_artefacts(session: nox.Session) -> tuple[str, str]:
    """The solvers sdist (with its .pyx, nothing generated) and wheel (every kernel)."""
    sdist, wheel = (
        _one(session, "structgrad_solvers-*.tar.gz"),
        _one(session, "structgrad_solvers-*.whl"),
    )
    pyx = {
        p.stem for p in (PACKAGES_DIR / "solvers" / "src" / "structgrad" / "solvers").glob("_*.pyx")
    }
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    have = {Path(n).stem for n in names if n.endswith(".pyx")}
    stray = [n for n in names if n.endswith((".so", ".pyd", ".c", ".html"))]
    if have != pyx or stray:
        session.error(f"{sdist}: .pyx {sorted(have)} (want {sorted(pyx)}), stray files {stray}")
    with zipfile.ZipFile(wheel) as whl:
        built = {Path(n).name.split(".")[0] for n in whl.namelist() if n.endswith((".so", ".pyd"))}
    if built != pyx or wheel.endswith("-none-any.whl"):
        session.error(f"{wheel}: compiled kernels {sorted(built)}, want {sorted(pyx)}")
    return sdist, wheel
