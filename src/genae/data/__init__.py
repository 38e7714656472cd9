"""MNIST loading, batch transforms and in-memory batching."""

from genae.data.mnist import MNIST, DataError, Split, cache_dir, load_mnist
from genae.data.source import DataSource

__all__ = ["MNIST", "DataError", "DataSource", "Split", "cache_dir", "load_mnist"]
