"""Shared fixtures: small fake MNIST sources (IDX files, Keras mnist.npz) written into tmp_path.

The loader insists on the real sizes (60,000 training and 10,000 test images of 28×28 uint8), so
the arrays are full-size but cheap: zeros with a few distinctive pixels and labels, so a test can
tell which rows ended up in which split:

* training labels 0..8 (i % 9) for rows 0..49,999 and 9 for rows 50,000..59,999 (the validation cut);
* training pixel [0, 0] of row 0 is 255 (checks the 255 → 1.0 scaling);
* training pixel [27, 27] is 255 on the last 10,000 rows only (the validation rows);
* test pixel [14, 14] is 51 (0.2 after scaling) everywhere, test labels i % 10.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Tests never read or write the user's cache ($GENAE_DATA): no cached MNIST, no cached judge."""
    import os

    before = os.environ.get("GENAE_DATA")
    os.environ["GENAE_DATA"] = str(tmp_path_factory.mktemp("genae-cache"))
    yield
    if before is None:
        os.environ.pop("GENAE_DATA", None)
    else:
        os.environ["GENAE_DATA"] = before


N_TRAIN, N_TEST, N_VALID = 60_000, 10_000, 10_000
VALID_START = N_TRAIN - N_VALID

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def fake_mnist_arrays(n_train: int = N_TRAIN, n_test: int = N_TEST) -> dict[str, np.ndarray]:
    """Keras-style arrays x_train, y_train, x_test, y_test (uint8) with the marks described above."""
    x_train = np.zeros((n_train, 28, 28), dtype=np.uint8)
    x_train[0, 0, 0] = 255
    x_train[VALID_START:, 27, 27] = 255
    y_train = (np.arange(n_train) % 9).astype(np.uint8)
    y_train[VALID_START:] = 9
    x_test = np.zeros((n_test, 28, 28), dtype=np.uint8)
    x_test[:, 14, 14] = 51
    y_test = (np.arange(n_test) % 10).astype(np.uint8)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x00 0x00 0x08 ndim, big-endian dims, then the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool | None = None) -> Path:
    """Write one IDX file; gzipped when gz is True (or, if gz is None, when the name ends in .gz)."""
    path = Path(path)
    data = idx_bytes(array)
    if gz is None:
        gz = path.suffix == ".gz"
    path.write_bytes(gzip.compress(data, compresslevel=1) if gz else data)
    return path


def write_idx_dir(directory: Path, arrays: dict[str, np.ndarray] | None = None, *, gz: bool = False) -> Path:
    """The four standard IDX files in `directory` (names get .gz when gz)."""
    arrays = fake_mnist_arrays() if arrays is None else arrays
    directory.mkdir(parents=True, exist_ok=True)
    keys = {"train_images": "x_train", "train_labels": "y_train",
            "test_images": "x_test", "test_labels": "y_test"}
    for key, stem in IDX_NAMES.items():
        write_idx(directory / (stem + ".gz" if gz else stem), arrays[keys[key]], gz=gz)
    return directory


def write_npz(path: Path, arrays: dict[str, np.ndarray] | None = None, *, compressed: bool = False) -> Path:
    arrays = fake_mnist_arrays() if arrays is None else arrays
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # a file object: np.savez would otherwise append .npz to odd names
        (np.savez_compressed if compressed else np.savez)(f, **arrays)
    return path


@pytest.fixture(scope="session")
def mnist_arrays() -> dict[str, np.ndarray]:
    """The fake arrays, made once per session and read-only (copy before changing them)."""
    arrays = fake_mnist_arrays()
    for a in arrays.values():
        a.setflags(write=False)
    return arrays


@pytest.fixture
def idx_dir(tmp_path, mnist_arrays) -> Path:
    """A directory holding the four uncompressed standard IDX files."""
    return write_idx_dir(tmp_path / "idx", mnist_arrays)


@pytest.fixture
def idx_gz_dir(tmp_path, mnist_arrays) -> Path:
    """A directory holding the four standard IDX files gzipped (name.gz)."""
    return write_idx_dir(tmp_path / "idx_gz", mnist_arrays, gz=True)


@pytest.fixture
def npz_file(tmp_path, mnist_arrays) -> Path:
    """A Keras-style mnist.npz (x_train, y_train, x_test, y_test; uint8) in its own directory."""
    return write_npz(tmp_path / "npz" / "mnist.npz", mnist_arrays)
