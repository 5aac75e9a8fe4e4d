"""Atomic writes and checkpoints.

Every file is written to a temporary file in the destination folder, flushed
and fsynced, then moved over the destination with ``os.replace`` (atomic on
POSIX and Windows when both paths are on one file system). A crash at any
point leaves either the old file or the new one, never a partial file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it back at once
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _atomic_handle(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Yield a binary handle whose content replaces ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; give it the mode open() would (0666 & ~umask).
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_with(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], object]) -> None:
    """Call ``writer(handle)`` on a temporary file, then move it over ``path``.

    Args:
        path: destination file; its folder is created if missing.
        writer: writes the whole content to the binary handle (what it returns is ignored).
    """
    with _atomic_handle(path) as handle:
        writer(handle)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_with(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_save_npz(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray | np.generic]
) -> None:
    """Save arrays as an uncompressed ``.npz`` atomically (no pickled objects).

    Args:
        path: destination file (keep the ``.npz`` suffix).
        arrays: name → array (or NumPy scalar); object arrays are refused.

    Raises:
        ValueError: if an array has ``dtype=object`` (it would need pickle).
    """
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise ValueError(f"array {name!r} has dtype object, which needs pickle")
    named: Mapping[str, Any] = arrays  # Any: the stub matches ** keys to allow_pickle: bool
    atomic_write_with(path, lambda handle: np.savez(handle, **named))


_ZIP_MAGIC = b"PK\x03\x04"  # an .npz is a zip archive (an empty one: PK\x05\x06)


def load_npz(path: str | os.PathLike[str], *, expected: str) -> dict[str, np.ndarray]:
    """Every array of a ``.npz``, read without pickle, or a one-line error.

    Args:
        path: the file.
        expected: what the file should be, for the message (e.g. "an .npz
            written by `generate`").

    Raises:
        CLIError: ``<path> is not a structgrad data file (expected ...)`` when
            the file is missing, not an ``.npz`` (a README, a pickle, a truncated
            archive) or holds pickled objects, which are never loaded.
    """
    from structgrad_app_common.cli import CLIError

    p = Path(path)
    if not p.is_file():
        raise CLIError(f"data file {str(p)!r} not found (expected {expected})")
    bad = f"{str(p)!r} is not a structgrad data file (expected {expected})"
    with p.open("rb") as handle:
        magic = handle.read(4)
    if magic not in (_ZIP_MAGIC, b"PK\x05\x06"):
        raise CLIError(bad)
    try:
        with np.load(p, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as err:
        if "pickle" in str(err):
            raise CLIError(f"{bad}: it holds pickled objects, which are never loaded") from None
        raise CLIError(f"{bad}: {' '.join(str(err).split())}") from None
    except Exception as err:  # a truncated or corrupt archive
        reason = " ".join(str(err).split()) or type(err).__name__
        raise CLIError(f"{bad}: {reason}") from None


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """``torch.save`` a checkpoint atomically.

    Args:
        path: destination file.
        state: tensors, state dicts and plain Python values (what
            ``torch.load(weights_only=True)`` accepts back).
    """
    import torch

    atomic_write_with(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` on the CPU.

    Uses ``torch.load(weights_only=True)``: only tensors and plain containers
    are unpickled, never arbitrary objects.

    Raises:
        CLIError: if the file is not such a checkpoint (truncated, another
            format, or a pickle that needs more than tensors and containers).
    """
    import pickle
    import zipfile

    import torch

    from .cli import CLIError

    foreign = CLIError(
        f"cannot read checkpoint {str(path)!r}: not a checkpoint of these apps (only "
        "tensors and plain containers are loaded, never other pickled objects)"
    )
    try:
        # save_checkpoint writes torch's zip format: anything else (a bare pickle,
        # text) is refused before torch reads it (and warns, or fails obscurely).
        if os.path.isfile(path) and not zipfile.is_zipfile(path):
            raise foreign
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # Not torch's text: it advises weights_only=False, which runs the file's code.
        raise foreign from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise CLIError(f"cannot read checkpoint {str(path)!r}: {first_line(err)}") from None
    if not isinstance(state, dict):
        raise CLIError(f"checkpoint {str(path)!r} holds {type(state).__name__}, not a dict")
    return state
