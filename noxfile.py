"""The one test harness of the structgrad monorepo.

Every package is tested in a fresh virtual environment holding only that
package, the siblings it declares (installed from their local paths,
non-editable) and its ``test`` extra; third-party versions come from
``constraints/py311.txt`` (which pins the CPU torch wheel on disk).

``nox`` with no arguments runs what CI needs; ``nox -l`` lists every session.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

# The sessions live in tools/noxlib (one module per kind); importing them registers them.
sys.path.insert(0, str(Path(__file__).parent / "tools"))
import noxlib.apps
import noxlib.checks
import noxlib.install
import noxlib.matrix
import noxlib.packaging  # noqa: F401

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
