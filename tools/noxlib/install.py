"""The install lines of the READMEs, each run in a fresh environment."""

from __future__ import annotations

import re
from pathlib import Path

import nox

from noxlib.base import (
    PACKAGES,
    PACKAGES_DIR,
    PYTHON,
    ROOT,
    guard_direct_urls,
    release,
)

INSTALL_MARKER = re.compile(
    r"<!-- install-check(?::\s*([\w.-]+))?\s*-->\n(```bash\n(.*?)```)?", re.S
)
INSTALL_READMES = [ROOT / "README.md", *(PACKAGES_DIR / p / "README.md" for p in PACKAGES)]


def install_blocks() -> dict[str, tuple[Path, str | None]]:
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
@nox.parametrize("block", list(install_blocks()))
def install_check(session: nox.Session, block: str) -> None:
    """One marked install block of a README, verbatim, in a fresh venv; then its imports.

    The blocks are the ```bash fences right after ``<!-- install-check -->`` in
    README.md and packages/*/README.md; each runs from the repository root as a
    bash script (``set -euo pipefail``) with the session's venv first on PATH,
    so ``python -m pip`` is that venv's pip. ``nox -s install_check`` runs them all.
    """
    readme, body = install_blocks()[block]
    if not body or not body.strip():
        session.error(f"{readme.relative_to(ROOT)}: {block} has no ```bash fence after its marker")
    names = _import_names(body)
    if not names:
        session.error(f"{readme.relative_to(ROOT)}: {block} installs no ./packages or ./apps path")
    session.chdir(ROOT)
    session.log(f"{readme.relative_to(ROOT)}, block {block}:\n{body}")
    session.run("bash", "-euo", "pipefail", "-c", body, external=True)
    guard_direct_urls(session)
    session.chdir(session.create_tmp())  # import the installed packages, not the sources
    session.run("python", "-c", f"import {', '.join(names)}; print('imported', {names!r})")
    release(session)
