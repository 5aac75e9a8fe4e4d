"""Build the Cython kernels of structgrad-solvers (metadata lives in pyproject.toml)."""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent
PKG = Path("src") / "structgrad" / "solvers"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
}
if os.environ.get("STRUCTGRAD_CYTHON_DEBUG") == "1":
    DIRECTIVES.update(boundscheck=True, initializedcheck=True)

extensions = [
    Extension(
        f"structgrad.solvers.{pyx.stem}",
        [str(pyx.relative_to(HERE)) if pyx.is_absolute() else str(pyx)],
        extra_compile_args=["-O3"],
    )
    for pyx in sorted((HERE / PKG).glob("_*.pyx"))
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES, include_path=[str(PKG)]))
