"""The code checks and the packages' tests.

lint, versions, architecture, typecheck, tests and bench.
"""

from __future__ import annotations

import json
import os

import nox

from noxlib.base import (
    PACKAGES,
    PACKAGES_DIR,
    PYTHON,
    ROOT,
    SIBLING_PREFIX,
    app_folders,
    app_modules,
    guard_direct_urls,
    install,
    install_package,
    pyproject,
    release,
    tmp_dir,
)


@nox.session(python=PYTHON)
@nox.parametrize("pkg", PACKAGES)
def tests(session: nox.Session, pkg: str) -> None:
    """Run one package's tests against its installed (built) distribution."""
    install_package(session, pkg)
    session.chdir(PACKAGES_DIR / pkg)
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs, env=env)
    release(session)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff (lint and format) over the tree, cython-lint over the kernels."""
    install(session, "ruff", "cython-lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    pyx = sorted(str(p) for p in PACKAGES_DIR.glob("*/src/**/*.p[yx][xd]"))
    if pyx:
        session.run("cython-lint", "--max-line-length", "100", *pyx)
    # The prepared GPU script must skip cleanly where there is no GPU (here: no torch).
    out = tmp_dir(session) / "gpu_check"
    session.run("bash", str(ROOT / "tools" / "gpu_check.sh"), env={"OUT": str(out)}, external=True)
    summary = (out / "summary.txt").read_text()
    if summary.strip() != "skipped: no CUDA device":
        session.error(f"tools/gpu_check.sh did not skip without CUDA: {summary!r}")
    release(session)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Mypy on each installed package and app, with the root configuration.

    Installs the library packages and every app folder (``apps/common``
    included) from their local paths, non-editable, with the constraints file;
    then checks ``structgrad.<pkg>`` for each package and the import package of
    each app (``structgrad_app_common``, ``dvae``, ``l2x``, ...; the apps ship
    ``py.typed``).
    """
    folders = app_folders()
    libraries = [str(PACKAGES_DIR / p) for p in PACKAGES]
    # pytest: structgrad.testing.readme and structgrad_app_common.testing import it lazily.
    install(session, *libraries, *(str(ROOT / a) for a in folders), "mypy", "pytest")
    guard_direct_urls(session)
    config = str(ROOT / "pyproject.toml")
    session.chdir(session.create_tmp())  # import the installed packages, not the sources
    for pkg in PACKAGES:
        session.run("mypy", "--config-file", config, "-p", f"structgrad.{pkg}")
    for folder in folders:
        for module in app_modules(folder):
            session.run("mypy", "--config-file", config, "-p", module)
    release(session)


@nox.session(python=PYTHON)
def architecture(session: nox.Session) -> None:
    """No package imports a higher layer (import-linter contracts in pyproject.toml)."""
    install(session, "import-linter")
    src = os.pathsep.join(str(PACKAGES_DIR / p / "src") for p in PACKAGES)
    # import-linter reads sources statically, so the packages need not be built.
    session.run("lint-imports", str(ROOT / "pyproject.toml"), env={"PYTHONPATH": src})
    release(session)


@nox.session(python=False)
def versions(session: nox.Session) -> None:
    """Every sibling range admits the sibling's current version."""
    from packaging.requirements import Requirement

    everything = [*PACKAGES, *app_folders()]
    current = {
        pyproject(p)["project"]["name"].lower(): pyproject(p)["project"]["version"]
        for p in everything
    }
    rows, bad = [], []
    for pkg in everything:
        project = pyproject(pkg)["project"]
        reqs = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            reqs += extra
        for raw in reqs:
            req = Requirement(raw)
            if not req.name.lower().startswith(SIBLING_PREFIX):
                continue
            if req.url or not str(req.specifier):
                bad.append(f"{project['name']}: {raw!r} must be a version range, not a path")
                continue
            have = current[req.name.lower()]
            ok = req.specifier.contains(have, prereleases=True)
            rows.append(
                f"{project['name']:<26} {req.name:<26} {req.specifier!s:<14} {have:<8} "
                f"{'ok' if ok else 'MISMATCH'}"
            )
            if not ok:
                bad.append(f"{project['name']} wants {raw!r} but {req.name} is {have}")
    print(
        "\n".join(
            [
                "package                    requires                   range          "
                "current  status",
                *rows,
            ]
        )
    )
    print(json.dumps(dict(sorted(current.items()))))
    if bad:
        session.error("; ".join(bad))


BENCH_PACKAGES = ["solvers", "distributions", "relaxations", "estimators", "models"]


@nox.session(python=PYTHON)
@nox.parametrize("pkg", BENCH_PACKAGES)
def bench(session: nox.Session, pkg: str) -> None:
    """Benchmarks against the peers, printed as ratios measured in one run.

    Each benchmark runs twice: with ``OMP_NUM_THREADS=1`` and with the default
    thread setting (oversubscription can make batched torch code much slower).
    """
    install_package(session, pkg, extra="bench")
    session.chdir(PACKAGES_DIR / pkg)
    default_threads = os.environ.get("OMP_NUM_THREADS")
    for threads in ("1", default_threads):
        label = threads or "default"
        session.log(f"OMP_NUM_THREADS={label}")
        env = {"OMP_NUM_THREADS": threads} if threads else {}
        for script in sorted((PACKAGES_DIR / pkg / "bench").glob("*.py")):
            session.run("python", str(script), *session.posargs, env=env)
    release(session)
