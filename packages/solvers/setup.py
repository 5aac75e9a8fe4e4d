"""Build the Cython kernels of structgrad-solvers (metadata lives in pyproject.toml).

Without a working C compiler the build falls back to the pure-Python twins of
the kernels (``_*_ref.py``, always installed): it prints one warning and
installs the package without the extension modules, and
``structgrad.solvers.backend()`` then reports ``"reference"``. Set
``STRUCTGRAD_SOLVERS_REQUIRE_COMPILED=1`` to make a failed compilation an error
instead (release wheels are built that way).
"""

import os
import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
PKG = Path("src") / "structgrad" / "solvers"
REQUIRE_COMPILED = os.environ.get("STRUCTGRAD_SOLVERS_REQUIRE_COMPILED") == "1"

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

FALLBACK_WARNING = (
    "WARNING: structgrad-solvers: no working C compiler ({reason}); installing the "
    "pure-Python kernels, about 20-250x slower; structgrad.solvers.backend() reports "
    "'reference'. For the compiled kernels install a C compiler (gcc or clang; MSVC "
    "Build Tools on Windows) and reinstall with --no-cache-dir."
)


class OptionalBuildExt(build_ext):
    """``build_ext`` that falls back to no extension modules if compiling fails."""

    def run(self) -> None:
        self._fallback_reason = None
        try:
            super().run()
        except Exception as exc:  # no compiler at all: setuptools fails before any build
            self._fall_back(exc)
        if self._fallback_reason is not None:
            # All or nothing: drop kernels compiled before the failure, so that
            # backend() and the kernels in use agree.
            for ext in self.extensions:
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
            self.extensions = []
            print(FALLBACK_WARNING.format(reason=self._fallback_reason), file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        if self._fallback_reason is not None:
            return
        try:
            super().build_extension(ext)
        except Exception as exc:  # CompileError, LinkError, a compiler that is not there
            self._fall_back(exc)

    def get_outputs(self) -> list[str]:
        return [] if getattr(self, "_fallback_reason", None) else super().get_outputs()

    def _fall_back(self, exc: Exception) -> None:
        if REQUIRE_COMPILED:
            raise exc
        if self._fallback_reason is None:
            self._fallback_reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")


extensions = [
    Extension(
        f"structgrad.solvers.{pyx.stem}",
        [str(pyx.relative_to(HERE)) if pyx.is_absolute() else str(pyx)],
        extra_compile_args=["-O3"],
    )
    for pyx in sorted((HERE / PKG).glob("_*.pyx"))
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES, include_path=[str(PKG)]),
    cmdclass={"build_ext": OptionalBuildExt},
)
