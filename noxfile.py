"""The one test harness of the structgrad monorepo.

Every package is tested in a fresh virtual environment holding only that
package, the siblings it declares (installed from their local paths,
non-editable) and its ``test`` extra; third-party versions come from
``constraints/py311.txt`` (which pins the CPU torch wheel on disk).

``nox`` with no arguments runs what CI needs; ``nox -l`` lists every session.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import tomllib
import zipfile
from functools import cache
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES_DIR = ROOT / "packages"
CONSTRAINTS = str(ROOT / "constraints" / "py311.txt")
PYTHON = "3.11"
# Lowest layer first; the order in which packages are tested.
PACKAGES = ["solvers", "distributions", "testing", "relaxations", "estimators", "models"]
SIBLING_PREFIX = "structgrad-"

nox.options.sessions = [
    "lint",
    "versions",
    "architecture",
    "typecheck",
    "tests",
    "fuzz",
    "apps",
    "docs",
    "build",
]
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].strip().lower()


@cache
def _pyproject(pkg: str) -> dict:
    """The pyproject of a package (``solvers``) or of an app folder (``apps/toys``)."""
    folder = ROOT / pkg if pkg.startswith("apps/") else PACKAGES_DIR / pkg
    with open(folder / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _dist_to_pkg() -> dict[str, str]:
    return {_pyproject(pkg)["project"]["name"].lower(): pkg for pkg in PACKAGES}


def _app_folders() -> list[str]:
    return sorted(f"apps/{p.parent.name}" for p in (ROOT / "apps").glob("*/pyproject.toml"))


def _app_modules(folder: str) -> list[str]:
    """The import packages of an app folder (``apps/toys`` → ``["toys"]``), from its ``src``."""
    return sorted(p.parent.name for p in (ROOT / folder / "src").glob("*/__init__.py"))


def _sibling_requirements(pkg: str, *, with_test: bool) -> list[str]:
    project = _pyproject(pkg)["project"]
    reqs = list(project.get("dependencies", []))
    if with_test:
        reqs += project.get("optional-dependencies", {}).get("test", [])
    return [r for r in reqs if _requirement_name(r).startswith(SIBLING_PREFIX)]


def _sibling_closure(pkg: str) -> list[str]:
    """Every sibling ``pkg`` needs for its tests, dependencies first."""
    names = _dist_to_pkg()
    order: list[str] = []

    def visit(p: str, with_test: bool) -> None:
        for req in _sibling_requirements(p, with_test=with_test):
            sib = names[_requirement_name(req)]
            if sib != pkg and sib not in order:
                visit(sib, with_test=False)
                order.append(sib)

    visit(pkg, with_test=True)
    return order


def _install(session: nox.Session, *targets: str) -> None:
    session.install("-c", CONSTRAINTS, *targets)


def _install_package(session: nox.Session, pkg: str, *, extra: str = "test") -> None:
    siblings = [str(PACKAGES_DIR / s) for s in _sibling_closure(pkg)]
    target = str(PACKAGES_DIR / pkg) + (f"[{extra}]" if extra else "")
    _install(session, *siblings, target)
    _guard_direct_urls(session)


def _release(session: nox.Session) -> None:
    """Delete the session's virtualenv once its commands have passed.

    Each environment holds its own torch (about 1 GB); CI builds nine of them on
    a disk shared with other machines, so a passed session gives its space back.
    A failed session keeps its environment for inspection; set
    ``STRUCTGRAD_KEEP_VENVS=1`` to keep every one.
    """
    location = getattr(session.virtualenv, "location", None)
    if location and not os.environ.get("STRUCTGRAD_KEEP_VENVS"):
        shutil.rmtree(location, ignore_errors=True)


def _guard_direct_urls(session: nox.Session) -> None:
    """Fail unless every installed structgrad distribution came from this checkout."""
    session.run("python", str(ROOT / "tools" / "check_installed.py"), silent=True)


@nox.session(python=PYTHON)
@nox.parametrize("pkg", PACKAGES)
def tests(session: nox.Session, pkg: str) -> None:
    """Run one package's tests against its installed (built) distribution."""
    _install_package(session, pkg)
    session.chdir(PACKAGES_DIR / pkg)
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs, env=env)
    _release(session)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff (lint and format) over the tree, cython-lint over the kernels."""
    _install(session, "ruff", "cython-lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    pyx = sorted(str(p) for p in PACKAGES_DIR.glob("*/src/**/*.p[yx][xd]"))
    if pyx:
        session.run("cython-lint", "--max-line-length", "100", *pyx)
    # The prepared GPU script must skip cleanly where there is no GPU (here: no torch).
    out = _tmp(session) / "gpu_check"
    session.run("bash", str(ROOT / "tools" / "gpu_check.sh"), env={"OUT": str(out)}, external=True)
    summary = (out / "summary.txt").read_text()
    if summary.strip() != "skipped: no CUDA device":
        session.error(f"tools/gpu_check.sh did not skip without CUDA: {summary!r}")
    _release(session)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Mypy on each installed package and app, with the root configuration.

    Installs the library packages and every app folder (``apps/common``
    included) from their local paths, non-editable, with the constraints file;
    then checks ``structgrad.<pkg>`` for each package and the import package of
    each app (``structgrad_app_common``, ``dvae``, ``l2x``, ...; the apps ship
    ``py.typed``).
    """
    folders = _app_folders()
    libraries = [str(PACKAGES_DIR / p) for p in PACKAGES]
    # pytest: structgrad.testing.readme and structgrad_app_common.testing import it lazily.
    _install(session, *libraries, *(str(ROOT / a) for a in folders), "mypy", "pytest")
    _guard_direct_urls(session)
    config = str(ROOT / "pyproject.toml")
    session.chdir(session.create_tmp())  # import the installed packages, not the sources
    for pkg in PACKAGES:
        session.run("mypy", "--config-file", config, "-p", f"structgrad.{pkg}")
    for folder in folders:
        for module in _app_modules(folder):
            session.run("mypy", "--config-file", config, "-p", module)
    _release(session)


@nox.session(python=PYTHON)
def architecture(session: nox.Session) -> None:
    """No package imports a higher layer (import-linter contracts in pyproject.toml)."""
    _install(session, "import-linter")
    src = os.pathsep.join(str(PACKAGES_DIR / p / "src") for p in PACKAGES)
    # import-linter reads sources statically, so the packages need not be built.
    session.run("lint-imports", str(ROOT / "pyproject.toml"), env={"PYTHONPATH": src})
    _release(session)


@nox.session(python=False)
def versions(session: nox.Session) -> None:
    """Every sibling range admits the sibling's current version."""
    from packaging.requirements import Requirement

    everything = [*PACKAGES, *_app_folders()]
    current = {
        _pyproject(p)["project"]["name"].lower(): _pyproject(p)["project"]["version"]
        for p in everything
    }
    rows, bad = [], []
    for pkg in everything:
        project = _pyproject(pkg)["project"]
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
    _install_package(session, pkg, extra="bench")
    session.chdir(PACKAGES_DIR / pkg)
    default_threads = os.environ.get("OMP_NUM_THREADS")
    for threads in ("1", default_threads):
        label = threads or "default"
        session.log(f"OMP_NUM_THREADS={label}")
        env = {"OMP_NUM_THREADS": threads} if threads else {}
        for script in sorted((PACKAGES_DIR / pkg / "bench").glob("*.py")):
            session.run("python", str(script), *session.posargs, env=env)
    _release(session)


APPS_DIR = ROOT / "apps"
# Every app folder under apps/ (apps/common is the shared plumbing, tested first).
APPS = ["nri_graph_layout", "toys", "shootout", "l2x", "dvae"]
APP_LIBRARIES = ["solvers", "distributions", "testing", "relaxations", "estimators", "models"]


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Every public entry point x every bad input (tests/fuzz): clean errors or finite results."""
    libraries = [str(PACKAGES_DIR / p) for p in APP_LIBRARIES]
    _install(session, *libraries, "pytest", "hypothesis")
    _guard_direct_urls(session)
    session.chdir(ROOT / "tests")
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    session.run("pytest", "-p", "no:cacheprovider", "fuzz", *session.posargs, env=env)
    _release(session)


@nox.session(python=PYTHON)
def apps(session: nox.Session) -> None:
    """The apps' tests (smoke runs included) against the installed, built packages.

    Installs the library packages, ``apps/common`` and every app from their
    local paths, non-editable, with the constraints file.
    """
    libraries = [str(PACKAGES_DIR / p) for p in APP_LIBRARIES]
    apps_ = [f"{APPS_DIR / a}[test]" for a in ("common", *APPS)]
    _install(session, *libraries, *apps_)
    _guard_direct_urls(session)
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "MPLBACKEND": "Agg"}
    for app in ("common", *APPS):
        session.chdir(APPS_DIR / app)
        session.run("pytest", "-p", "no:cacheprovider", *session.posargs, env=env)
    _release(session)


@nox.session(python=PYTHON)
def quickstart(session: nox.Session) -> None:
    """The main job: a small NRI graph-layout run of spanning-tree SST vs independent edges."""
    libraries = [str(PACKAGES_DIR / p) for p in APP_LIBRARIES]
    apps_ = [str(APPS_DIR / a) for a in ("common", "nri_graph_layout")]
    _install(session, *libraries, *apps_)
    _guard_direct_urls(session)
    out = str(ROOT / "runs" / "quickstart")
    session.run("python", "-m", "nri_graph_layout", "quickstart", "--out", out, *session.posargs)
    _release(session)
    print(_recreate_message(kept=bool(os.environ.get("STRUCTGRAD_KEEP_VENVS"))), flush=True)


def _recreate_message(*, kept: bool = False) -> str:
    """How to get a ready environment back once the session's venv is gone.

    The install command is the README's "an app" block (``root-app``), which
    ``nox -s install_check`` tests.
    """
    block = _install_blocks()["root-app"][1] or ""
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
    _install(session, *libraries, str(APPS_DIR / "common"), str(APPS_DIR / "shootout"))
    _guard_direct_urls(session)
    out = str(ROOT / "runs" / "shootout")
    session.run(
        "python", "-m", "shootout", "--jobs", "2", "--out", out, "--overwrite", *session.posargs
    )
    _release(session)


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
    _install(session, *libraries, *DOCS_REQUIREMENTS)
    _guard_direct_urls(session)
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
    _release(session)


# --- installability: the README install blocks, wheels and sdists, other Pythons ---

# An install block is a ```bash fence right after this marker (an optional
# ``: name`` names it); ``nox -s install_check`` runs each in a fresh venv.
INSTALL_MARKER = re.compile(
    r"<!-- install-check(?::\s*([\w.-]+))?\s*-->\n(```bash\n(.*?)```)?", re.S
)
INSTALL_READMES = [ROOT / "README.md", *(PACKAGES_DIR / p / "README.md" for p in PACKAGES)]


def _install_blocks() -> dict[str, tuple[Path, str | None]]:
    """Every marked install block, by id: the README it is in and its body.

    The body is None where a marker is not followed by a ```bash fence (the
    session fails on it).
    """
    blocks: dict[str, tuple[Path, str | None]] = {}
    for readme in INSTALL_READMES:
        label = "root" if readme.parent == ROOT else readme.parent.name
        for i, match in enumerate(INSTALL_MARKER.finditer(readme.read_text()), 1):
            name = match.group(1) or ("" if i == 1 else str(i))
            blocks[f"{label}-{name}" if name else label] = (readme, match.group(3))
    return blocks


def _import_names(block: str) -> list[str]:
    """The top-level modules of the local packages and apps a block installs."""
    names = []
    for kind, folder in re.findall(r"\./(packages|apps)/([\w-]+)", block):
        if kind == "packages":
            names.append(f"structgrad.{folder}")
        else:
            src = ROOT / "apps" / folder / "src"
            names += sorted(
                p.name for p in src.iterdir() if p.is_dir() and (p / "__init__.py").exists()
            )
    return names


@nox.session(python=PYTHON)
@nox.parametrize("block", list(_install_blocks()))
def install_check(session: nox.Session, block: str) -> None:
    """One marked install block of a README, verbatim, in a fresh venv; then its imports.

    The blocks are the ```bash fences right after ``<!-- install-check -->`` in
    README.md and packages/*/README.md; each runs from the repository root as a
    bash script (``set -euo pipefail``) with the session's venv first on PATH,
    so ``python -m pip`` is that venv's pip. ``nox -s install_check`` runs them all.
    """
    readme, body = _install_blocks()[block]
    if not body or not body.strip():
        session.error(f"{readme.relative_to(ROOT)}: {block} has no ```bash fence after its marker")
    names = _import_names(body)
    if not names:
        session.error(f"{readme.relative_to(ROOT)}: {block} installs no ./packages or ./apps path")
    session.chdir(ROOT)
    session.log(f"{readme.relative_to(ROOT)}, block {block}:\n{body}")
    session.run("bash", "-euo", "pipefail", "-c", body, external=True)
    _guard_direct_urls(session)
    session.chdir(session.create_tmp())  # import the installed packages, not the sources
    session.run("python", "-c", f"import {', '.join(names)}; print('imported', {names!r})")
    _release(session)


DIST_DIR = ROOT / "dist"
FALLBACK_WARNING = "structgrad-solvers: no working C compiler"
CIBW_IDENTIFIERS = {
    "linux": {f"cp3{v}-{p}_x86_64" for v in (10, 11, 12, 13) for p in ("manylinux", "musllinux")},
    "macos": {f"cp3{v}-macosx_{a}" for v in (10, 11, 12, 13) for a in ("x86_64", "arm64")},
    "windows": {f"cp3{v}-win_amd64" for v in (10, 11, 12, 13)},
}


def _tmp(session: nox.Session) -> Path:
    """The session's tmp folder, absolute.

    Call it first thing: ``create_tmp`` makes its folder relative to the
    current directory, which ``session.chdir`` moves.
    """
    return Path(session.create_tmp()).resolve()


def _fresh_venv(session: nox.Session, location: Path) -> Path:
    """A new ``python -m venv`` at ``location`` (its bin folder)."""
    shutil.rmtree(location, ignore_errors=True)
    session.run("python", "-m", "venv", str(location), silent=True)
    return location / "bin"


def _no_compiler_env(bin_dir: Path) -> dict[str, str]:
    """PATH with only a venv's bin folder (no cc, no gcc) and CC/CXX that always fail."""
    fail = shutil.which("false") or "/bin/false"
    return {"PATH": str(bin_dir), "CC": fail, "CXX": fail, "LDSHARED": fail}


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
    tmp = _tmp(session)
    _install(session, "build", "twine", "cibuildwheel")
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
    bin_dir = _fresh_venv(session, tmp / "wheel-venv")
    env = _no_compiler_env(bin_dir)
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
    cibw = _pyproject("solvers")["tool"]["cibuildwheel"]
    session.chdir(tmp)
    # As cibuildwheel runs it: the wheel's venv first on PATH (nox puts its own first).
    test_command = f'PATH="{bin_dir}:$PATH"; {cibw["test-command"]}'
    session.run("bash", "-c", test_command, env=env, external=True)

    # 3. The sdist with a failing compiler: the pure-Python fallback, one warning.
    bin_dir = _fresh_venv(session, tmp / "sdist-venv")
    env = {**_no_compiler_env(bin_dir), "PIP_CONSTRAINT": CONSTRAINTS}
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
    _release(session)


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
    project = _pyproject(pkg)["project"]
    third_party = [
        r
        for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]
        if not _requirement_name(r).startswith(SIBLING_PREFIX)
    ]
    if not with_torch and any(_requirement_name(r) == "torch" for r in project["dependencies"]):
        session.skip(
            f"blocked here: {pkg} needs torch, whose CPU wheel on disk is for Python {PYTHON} "
            "only (STRUCTGRAD_MATRIX_TORCH=1 fetches PyPI's CUDA build, several GB)"
        )
    if not with_torch:
        third_party = [r for r in third_party if _requirement_name(r) != "torch"]
    tmp = _tmp(session) / f"py{version}-{pkg}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    unpinned = MATRIX_UNPINNED.get(version, set())
    constraints = tmp / "constraints.txt"
    constraints.write_text(
        "".join(
            line + "\n"
            for line in Path(CONSTRAINTS).read_text().splitlines()
            if not line.strip() or line.lstrip().startswith("#")
            or _requirement_name(line) not in unpinned
        )
    )  # fmt: skip
    session.run(python, "-m", "venv", str(tmp / "venv"), external=True)
    venv_python = str(tmp / "venv" / "bin" / "python")
    siblings = [str(PACKAGES_DIR / s) for s in _sibling_closure(pkg)]
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
