import gzip

import numpy as np
import pytest
from dvae import data as data_mod
from structgrad_app_common import CLIError


def _idx(images: np.ndarray) -> bytes:
    n, rows, cols = images.shape
    header = np.array([0x00000803, n, rows, cols], dtype=">u4").tobytes()
    return header + images.astype(np.uint8).tobytes()


def _images(n, side=28, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side), dtype=np.uint8)


def test_digits_are_binarised_and_split():
    ds = data_mod.load(None)
    assert ds.side == 8 and ds.dim == 64 and ds.binarised
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (1300, 200, 297)
    for split in (ds.train, ds.valid, ds.test):
        assert split.dtype == np.float32 and set(np.unique(split)) <= {0.0, 1.0}
    assert "binarised" in ds.describe() and "8x8" in ds.describe()
    # The split is fixed: it does not depend on any training seed.
    np.testing.assert_array_equal(ds.test, data_mod.load_digits().test)
    assert len(data_mod.load(None, valid_size=0).train) == 1500


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder(tmp_path, gz):
    train, test = _images(5), _images(3, seed=1)
    for stem, arr in (("train-images-idx3-ubyte", train), ("t10k-images-idx3-ubyte", test)):
        raw = _idx(arr)
        (tmp_path / (stem + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
    ds = data_mod.load(str(tmp_path), valid_size=1)
    assert ds.side == 28 and not ds.binarised
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (4, 1, 3)
    np.testing.assert_allclose(ds.test, test.reshape(3, -1) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.valid[0], train[4].reshape(-1) / 255.0, rtol=1e-6)


@pytest.mark.parametrize("shape", [(4, 28, 28), (4, 784)])
def test_npz_uint8_and_float(tmp_path, shape):
    x = _images(4).reshape(shape)
    path = tmp_path / "m.npz"
    np.savez(path, x_train=x, x_test=x[:2])
    ds = data_mod.load(str(path))
    assert ds.train.shape == (4, 784) and ds.test.shape == (2, 784) and len(ds.valid) == 0
    np.savez(path, x_train=(x > 127).astype(np.float64), x_test=(x[:2] > 127).astype(np.float32))
    ds = data_mod.load(str(path))
    assert ds.binarised and ds.train.dtype == np.float32


def _bad(path, needle, **kw):
    with pytest.raises(CLIError) as err:
        data_mod.load(str(path), **kw)
    msg = str(err.value)
    assert needle in msg and "\n" not in msg, msg


def test_malformed_files(tmp_path):
    _bad(tmp_path / "missing.npz", "no such file")
    _bad(tmp_path, "no train-images-idx3-ubyte")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx(_images(3))[:-5])
    _bad(tmp_path, "truncated")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + b"\x00" * 20)
    _bad(tmp_path, "magic")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"abc")
    _bad(tmp_path, "not an IDX")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx(np.zeros((5, 0, 0), np.uint8)))
    _bad(tmp_path, "expected non-empty square images, got 5x0x0")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx(_images(3)))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bgarbage")
    _bad(tmp_path, "cannot read")
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(_images(2, side=8))))
    _bad(tmp_path, "pixels")
    _bad(tmp_path / "t10k-images-idx3-ubyte.gz", "not a structgrad data file")  # gzip, not npz

    npz = tmp_path / "m.npz"
    np.savez(npz, x_train=_images(2))
    _bad(npz, "lacks x_test")
    np.savez(npz, x_train=_images(2), x_test=np.zeros((2, 5, 7)))
    _bad(npz, "x_test must have shape")
    np.savez(npz, x_train=np.zeros((0, 28, 28), np.uint8), x_test=_images(2))
    _bad(npz, "x_train must have shape")  # an empty [0, 28, 28] failed to reshape
    np.savez(npz, x_train=_images(2), x_test=np.full((2, 784), 2.0))
    _bad(npz, "[0, 1]")
    np.savez(npz, x_train=_images(2).astype(np.int64), x_test=_images(2))
    _bad(npz, "uint8 or float")
    np.savez(npz, x_train=np.array([{"a": 1}], dtype=object), x_test=_images(2))
    _bad(npz, "not a structgrad data file")
    (tmp_path / "text.npz").write_text("not a zip")
    _bad(tmp_path / "text.npz", "is not a structgrad data file")
    np.savez(npz, x_train=_images(3), x_test=_images(2))
    _bad(npz, "--valid-size", valid_size=3)


def test_corrupt_gzip_is_one_line(tmp_path):
    # A damaged deflate block raised zlib.error (not an OSError) past the CLIError.
    raw = bytearray(gzip.compress(_idx(_images(3))))
    raw[10] ^= 0xFF
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(bytes(raw))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx(_images(2)))
    _bad(tmp_path, "cannot read")
    _bad(tmp_path, "train-images-idx3-ubyte.gz")
