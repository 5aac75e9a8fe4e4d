"""Image data: scikit-learn's bundled digits (default) or MNIST from local files.

- ``digits`` (embedded, no download): ``sklearn.datasets.load_digits``, 1797
  images of 8×8 pixels with grey levels 0..16, **binarised** at 8 (pixel > 0.5
  after scaling to [0, 1]). A fixed permutation (seed 0, independent of the
  training seed) splits them into 297 test images, ``valid_size`` validation
  images and the rest for training.
- MNIST from ``--data PATH``: either a folder with the IDX files
  ``train-images-idx3-ubyte`` and ``t10k-images-idx3-ubyte`` (each optionally
  ``.gz``), or a ``.npz`` with uint8 or float arrays ``x_train`` and ``x_test``
  of shape ``[N, 28, 28]`` or ``[N, 784]`` (uint8 is scaled by 1/255; floats must
  lie in [0, 1]). Grey levels are kept in [0, 1], as both references train
  MNIST with ``ToTensor()`` images. The validation images, if any, are the last
  ``valid_size`` training images.

Every problem with a file raises :class:`structgrad_app_common.CLIError` with a
one-line message naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from structgrad_app_common import CLIError, load_npz

__all__ = ["DIGITS_TEST", "Dataset", "load", "load_digits", "load_mnist", "read_idx_images"]

DIGITS_TEST = 297
_IDX_IMAGES = 0x00000803  # magic number: unsigned byte, 3 dimensions
_MNIST_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}


@dataclass(frozen=True)
class Dataset:
    """Flattened images in [0, 1].

    Attributes:
        name: ``"digits"`` or the MNIST source path.
        side: image side (8 or 28); images are ``side × side``.
        binarised: whether pixels are 0/1.
        train: float32 ``[N_train, side²]``.
        valid: float32 ``[N_valid, side²]`` (possibly empty).
        test: float32 ``[N_test, side²]``.
    """

    name: str
    side: int
    binarised: bool
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    @property
    def dim(self) -> int:
        """Pixels per image."""
        return self.side * self.side

    def describe(self, max_train: int | None = None) -> str:
        """One line: source, sizes and pixel values (and how many train images are used)."""
        pixels = "binarised 0/1 pixels" if self.binarised else "grey levels in [0, 1]"
        train = f"{len(self.train)} train"
        if max_train is not None and max_train < len(self.train):
            train += f" (the first {max_train} used)"
        return (
            f"{self.name}: {self.side}x{self.side} images, {pixels}; "
            f"{train} / {len(self.valid)} valid / {len(self.test)} test"
        )


def _split_valid(train: np.ndarray, valid_size: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    if not 0 <= valid_size < len(train):
        raise CLIError(
            f"--valid-size must be in [0, {len(train) - 1}] for {source} "
            f"({len(train)} training images), got {valid_size}"
        )
    cut = len(train) - valid_size
    return train[:cut], train[cut:]


def load_digits(valid_size: int = 200) -> Dataset:
    """The bundled 8×8 digits of scikit-learn, binarised, split train / valid / test.

    Args:
        valid_size: validation images carved from the training part.

    Returns:
        The :class:`Dataset` (1797 images in all; 297 for test).
    """
    from sklearn.datasets import load_digits as sk_digits

    images = sk_digits().images.reshape(-1, 64) / 16.0  # [1797, 64] in [0, 1]
    x = (images > 0.5).astype(np.float32)
    perm = np.random.default_rng(0).permutation(len(x))  # fixed split, not the training seed
    x = x[perm]
    train, valid = _split_valid(x[DIGITS_TEST:], valid_size, "digits")
    return Dataset("digits", 8, True, train, valid, x[:DIGITS_TEST])


def read_idx_images(path: str | Path) -> np.ndarray:
    """Read an IDX3 image file (optionally gzipped) as uint8 ``[N, rows, cols]``.

    Args:
        path: the file.

    Returns:
        The images.

    Raises:
        CLIError: if the file is missing, not IDX3 unsigned-byte images, or truncated.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    # zlib.error: a damaged deflate block (gzip.BadGzipFile, a bad header, is an OSError).
    except (OSError, EOFError, zlib.error) as err:
        raise CLIError(f"cannot read {str(path)!r}: {err}") from None
    if len(raw) < 16:
        raise CLIError(f"{str(path)!r} is not an IDX image file (only {len(raw)} bytes)")
    magic, n, rows, cols = (int(v) for v in np.frombuffer(raw[:16], dtype=">u4"))
    if magic != _IDX_IMAGES:
        raise CLIError(
            f"{str(path)!r} is not an IDX3 unsigned-byte image file "
            f"(magic 0x{magic:08x}, expected 0x{_IDX_IMAGES:08x})"
        )
    if len(raw) != 16 + n * rows * cols:
        raise CLIError(
            f"{str(path)!r} is truncated or padded: header says {n}x{rows}x{cols} images "
            f"({16 + n * rows * cols} bytes), file has {len(raw)} bytes"
        )
    if n == 0 or rows == 0 or rows != cols:
        raise CLIError(f"{str(path)!r}: expected non-empty square images, got {n}x{rows}x{cols}")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def _idx_file(folder: Path, stem: str) -> Path:
    for name in (stem, f"{stem}.gz"):
        if (folder / name).is_file():
            return folder / name
    raise CLIError(f"{str(folder)!r} has no {stem} (or {stem}.gz) IDX file")


def _as_images(arr: np.ndarray, key: str, source: str) -> np.ndarray:
    """Validate one npz array and return float32 ``[N, side²]`` in [0, 1]."""
    if arr.ndim == 3 and arr.shape[1] == arr.shape[2]:
        arr = arr.reshape(len(arr), arr.shape[1] * arr.shape[2])  # (-1 fails on N = 0)
    side = round(np.sqrt(arr.shape[-1])) if arr.ndim == 2 else 0
    if arr.ndim != 2 or side * side != arr.shape[1] or len(arr) == 0:
        raise CLIError(
            f"{source}: {key} must have shape [N, 28, 28] or [N, 784] (square images), "
            f"got {list(arr.shape)}"
        )
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise CLIError(f"{source}: {key} must be uint8 or float, got {arr.dtype}")
    if not (np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1):
        raise CLIError(f"{source}: float {key} must hold finite values in [0, 1]")
    return arr.astype(np.float32)


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    arrays = load_npz(path, expected="an .npz with x_train and x_test, read without pickle")
    missing = [k for k in ("x_train", "x_test") if k not in arrays]
    if missing:
        raise CLIError(f"{str(path)!r} lacks {', '.join(missing)} (has: {', '.join(arrays)})")
    src = repr(str(path))
    train = _as_images(arrays["x_train"], "x_train", src)
    return train, _as_images(arrays["x_test"], "x_test", src)


def load_mnist(path: str | Path, valid_size: int = 0) -> Dataset:
    """MNIST-like images from an IDX folder or a ``.npz`` (see the module docstring).

    Args:
        path: folder of IDX files or ``.npz`` file.
        valid_size: validation images taken from the end of the training set.

    Returns:
        The :class:`Dataset` (grey levels in [0, 1]).

    Raises:
        CLIError: missing or malformed files, mismatched image sizes.
    """
    path = Path(path)
    if path.is_dir():
        images = [read_idx_images(_idx_file(path, _MNIST_FILES[s])) for s in ("train", "test")]
        train, test = (im.reshape(len(im), -1).astype(np.float32) / 255.0 for im in images)
    elif path.is_file():
        train, test = _load_npz(path)
    else:
        raise CLIError(f"--data {str(path)!r}: no such file or folder")
    if train.shape[1] != test.shape[1]:
        raise CLIError(
            f"{str(path)!r}: train images have {train.shape[1]} pixels, test {test.shape[1]}"
        )
    side = round(np.sqrt(train.shape[1]))
    binarised = bool(np.isin(train, (0.0, 1.0)).all() and np.isin(test, (0.0, 1.0)).all())
    train, valid = _split_valid(train, valid_size, repr(str(path)))
    return Dataset(str(path), side, binarised, train, valid, test)


def load(data: str | None, valid_size: int | None = None) -> Dataset:
    """Load the digits (``data=None``) or MNIST from ``data``.

    Args:
        data: ``None`` for the bundled digits, else a path (see :func:`load_mnist`).
        valid_size: validation images (default 200 for digits, 0 for MNIST, which
            keeps the reference's 60000 training images).

    Returns:
        The :class:`Dataset`.
    """
    if data is None:
        return load_digits(200 if valid_size is None else valid_size)
    return load_mnist(data, 0 if valid_size is None else valid_size)
