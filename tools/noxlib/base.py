"""Paths, constants and the install helpers every nox session shares."""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from functools import cache
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parents[2]
PACKAGES_DIR = ROOT / "packages"
CONSTRAINTS = str(ROOT / "constraints" / "py311.txt")
PYTHON = "3.11"
# Lowest layer first; the order in which packages are tested.
PACKAGES = ["solvers", "distributions", "testing", "relaxations", "estimators", "models"]
SIBLING_PREFIX = "structgrad-"
APPS_DIR = ROOT / "apps"
# Every app folder under apps/ (apps/common is the shared plumbing, tested first).
APPS = ["nri_graph_layout", "toys", "shootout", "l2x", "dvae"]
APP_LIBRARIES = ["solvers", "distributions", "testing", "relaxations", "estimators", "models"]


def requirement_name(requirement: str) -> str:
    """The distribution name of a requirement string, lower case."""
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].strip().lower()


@cache
def pyproject(pkg: str) -> dict:
    """The pyproject of a package (``solvers``) or of an app folder (``apps/toys``)."""
    folder = ROOT / pkg if pkg.startswith("apps/") else PACKAGES_DIR / pkg
    with open(folder / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def dist_to_pkg() -> dict[str, str]:
    """Distribution name (``structgrad-solvers``) → package folder (``solvers``)."""
    return {pyproject(pkg)["project"]["name"].lower(): pkg for pkg in PACKAGES}


def app_folders() -> list[str]:
    """Every app folder (``apps/toys``), sorted."""
    return sorted(f"apps/{p.parent.name}" for p in (ROOT / "apps").glob("*/pyproject.toml"))


def app_modules(folder: str) -> list[str]:
    """The import packages of an app folder (``apps/toys`` → ``["toys"]``), from its ``src``."""
    return sorted(p.parent.name for p in (ROOT / folder / "src").glob("*/__init__.py"))


def sibling_requirements(pkg: str, *, with_test: bool) -> list[str]:
    """The structgrad requirements of a package (and of its ``test`` extra)."""
    project = pyproject(pkg)["project"]
    reqs = list(project.get("dependencies", []))
    if with_test:
        reqs += project.get("optional-dependencies", {}).get("test", [])
    return [r for r in reqs if requirement_name(r).startswith(SIBLING_PREFIX)]


def sibling_closure(pkg: str) -> list[str]:
    """Every sibling ``pkg`` needs for its tests, dependencies first."""
    names = dist_to_pkg()
    order: list[str] = []

    def visit(p: str, with_test: bool) -> None:
        for req in sibling_requirements(p, with_test=with_test):
            sib = names[requirement_name(req)]
            if sib != pkg and sib not in order:
                visit(sib, with_test=False)
                order.append(sib)

    visit(pkg, with_test=True)
    return order


def install(session: nox.Session, *targets: str) -> None:
    """``pip install`` under the constraints file."""
    session.install("-c", CONSTRAINTS, *targets)


def install_package(session: nox.Session, pkg: str, *, extra: str = "test") -> None:
    """A package with its extra and the siblings it needs, from this checkout."""
    siblings = [str(PACKAGES_DIR / s) for s in sibling_closure(pkg)]
    target = str(PACKAGES_DIR / pkg) + (f"[{extra}]" if extra else "")
    install(session, *siblings, target)
    guard_direct_urls(session)


def release(session: nox.Session) -> None:
    """Delete the session's virtualenv once its commands have passed.

    Each environment holds its own torch (about 1 GB); CI builds nine of them on
    a disk shared with other machines, so a passed session gives its space back.
    A failed session keeps its environment for inspection; set
    ``STRUCTGRAD_KEEP_VENVS=1`` to keep every one.
    """
    location = getattr(session.virtualenv, "location", None)
    if location and not os.environ.get("STRUCTGRAD_KEEP_VENVS"):
        shutil.rmtree(location, ignore_errors=True)


def guard_direct_urls(session: nox.Session) -> None:
    """Fail unless every installed structgrad distribution came from this checkout."""
    session.run("python", str(ROOT / "tools" / "check_installed.py"), silent=True)


def tmp_dir(session: nox.Session) -> Path:
    """The session's tmp folder, absolute.

    Call it first thing: ``create_tmp`` makes its folder relative to the
    current directory, which ``session.chdir`` moves.
    """
    return Path(session.create_tmp()).resolve()


def fresh_venv(session: nox.Session, location: Path) -> Path:
    """A new ``python -m venv`` at ``location`` (its bin folder)."""
    shutil.rmtree(location, ignore_errors=True)
    session.run("python", "-m", "venv", str(location), silent=True)
    return location / "bin"


def no_compiler_env(bin_dir: Path) -> dict[str, str]:
    """PATH with only a venv's bin folder (no cc, no gcc) and CC/CXX that always fail."""
    fail = shutil.which("false") or "/bin/false"
    return {"PATH": str(bin_dir), "CC": fail, "CXX": fail, "LDSHARED": fail}
