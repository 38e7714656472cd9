"""Small synthetic MNIST-shaped data for tests: learnable, made in memory, no download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genae.data.mnist import MNIST, Split


def digit_like(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n images N×1×28×28 in [0, 1]: class c is a bright bar at a class-dependent place, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.1
    for c in range(10):
        rows = slice(2 + 2 * c, 6 + 2 * c)
        x[y == c, :, rows, 4:24] = 0.9
    return x.clamp(0, 1), y


def synthetic_mnist(n: int = 256, seed: int = 0) -> MNIST:
    parts = [Split(*digit_like(n, seed + i)) for i in range(3)]
    return MNIST(*parts, source="synthetic")


def write_npz(path: Path, seed: int = 0) -> Path:
    """A Keras-style mnist.npz of the full sizes (60k/10k) with digit-like uint8 images."""
    x_train, y_train = digit_like(60_000, seed)
    x_test, y_test = digit_like(10_000, seed + 1)
    to_u8 = lambda x: (x[:, 0] * 255).round().to(torch.uint8).numpy()  # noqa: E731
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=to_u8(x_train), y_train=y_train.numpy(), x_test=to_u8(x_test), y_test=y_test.numpy())
    return path
