"""The apps' sessions: fuzz, apps, quickstart, shootout, and the docs."""

from __future__ import annotations

import os

import nox

from noxlib.base import (
    APP_LIBRARIES,
    APPS,
    APPS_DIR,
    PACKAGES_DIR,
    PYTHON,
    ROOT,
    guard_direct_urls,
    install,
    release,
)
from noxlib.install import install_blocks


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Every public entry point x every bad input (tests/fuzz): clean errors or finite results."""
    libraries = [str(PACKAGES_DIR / p) for p in APP_LIBRARIES]
    install(session, *libraries, "pytest", "hypothesis")
    guard_direct_urls(session)
    session.chdir(ROOT / "tests")
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    session.run("pytest", "-p", "no:cacheprovider", "fuzz", *session.posargs, env=env)
    release(session)


@nox.session(python=PYTHON)
def apps(session: nox.Session) -> None:
    """The apps' tests (smoke runs included) against the installed, built packages.

    Installs the library packages, ``apps/common`` and every app from their
    local paths, non-editable, with the constraints file.
    """
    libraries = [str(PACKAGES_DIR / p) for p in APP_LIBRARIES]
    apps_ = [f"{APPS_DIR / a}[test]" for a in ("common", *APPS)]
    install(session, *libraries, *apps_)
    guard_direct_urls(session)
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "MPLBACKEND": "Agg"}
    for app in ("common", *APPS):
        session.chdir(APPS_DIR / app)
        session.run("pytest", "-p", "no:cacheprovider", *session.posargs, env=env)
    release(session)


@nox.session(python=PYTHON)
def quickstart(session: nox.Session) -> None:
    """The main job: a small NRI graph-layout run of spanning-tree SST vs independent edges."""
    libraries = [str(PACKAGES_DIR / p) for p in APP_LIBRARIES]
    apps_ = [str(APPS_DIR / a) for a in ("common", "nri_graph_layout")]
    install(session, *libraries, *apps_)
    guard_direct_urls(session)
    out = str(ROOT / "runs" / "quickstart")
    session.run("python", "-m", "nri_graph_layout", "quickstart", "--out", out, *session.posargs)
    release(session)
    print(_recreate_message(kept=bool(os.environ.get("STRUCTGRAD_KEEP_VENVS"))), flush=True)


def _recreate_message(*, kept: bool = False) -> str:
    """How to get a ready environment back once the session's venv is gone.

    The install command is the README's "an app" block (``root-app``), which
    ``nox -s install_check`` tests.
    """
    block = install_blocks()["root-app"][1] or ""
    install = " ".join(block.replace("\\\n", " ").split())
    state = "kept (STRUCTGRAD_KEEP_VENVS)" if kept else "deleted"
    return (
        f"\nThe session's virtual environment is {state}. A ready environment of your own "
        "(from the repository root):\n\n"
        f"    python -m venv .venv && . .venv/bin/activate && {install}\n\n"
        "then run the app again with other flags, e.g.\n\n"
        "    python -m nri_graph_layout quickstart --seeds 0 1 --out runs/quickstart2\n"
        "    python -m nri_graph_layout train --help\n"
    )


@nox.session(python=PYTHON)
def shootout(session: nox.Session) -> None:
    """Every structure x estimator against exact gradients: the markdown table and heat-maps."""
    libraries = [str(PACKAGES_DIR / p) for p in APP_LIBRARIES]
    install(session, *libraries, str(APPS_DIR / "common"), str(APPS_DIR / "shootout"))
    guard_direct_urls(session)
    out = str(ROOT / "runs" / "shootout")
    session.run(
        "python", "-m", "shootout", "--jobs", "2", "--out", out, "--overwrite", *session.posargs
    )
    release(session)


DOCS_REQUIREMENTS = [
    "mkdocs",
    "mkdocs-material",
    "mkdocstrings[python]",
    "mkdocs-gen-files",
    "ruff",  # mkdocstrings formats the rendered signatures with it
    "pytest",
]


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site: run the tutorials, then ``mkdocs build --strict`` into site/.

    Installs the library packages (non-editable, through the constraints file)
    and the pinned docs tools; the tutorials (``docs/tutorials``) run as
    scripts under pytest, each asserting its own result. The API pages are
    read from the sources (``mkdocs.yml``: mkdocstrings' ``paths``).
    """
    libraries = [str(PACKAGES_DIR / p) for p in APP_LIBRARIES]
    install(session, *libraries, *DOCS_REQUIREMENTS)
    guard_direct_urls(session)
    env = {
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        # mkdocs-material and properdocs print banners about mkdocs' future.
        "NO_MKDOCS_2_WARNING": "1",
        "DISABLE_MKDOCS_2_WARNING": "true",
        # The tutorials' printed output, shown on their pages.
        "STRUCTGRAD_TUTORIAL_OUTPUT": session.create_tmp(),
    }
    session.chdir(ROOT)
    tutorials = str(ROOT / "docs" / "tutorials")
    session.run("pytest", "-p", "no:cacheprovider", tutorials, *session.posargs, env=env)
    site = str(ROOT / "site")
    session.run("mkdocs", "build", "--strict", "--config-file", "mkdocs.yml", "-d", site, env=env)
    release(session)


# --- installability: the README install blocks, wheels and sdists, other Pythons ---

# An install block is a ```bash fence right after this marker (an optional
# ``: name`` names it); ``nox -s install_check`` runs each in a fresh venv.
