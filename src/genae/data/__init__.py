"""MNIST loading, batch transforms and in-memory batching."""

from genae.data.mnist import MNIST, DataError, Split, cache_dir, load_mnist

__all__ = ["MNIST", "DataError", "Split", "cache_dir", "load_mnist"]
