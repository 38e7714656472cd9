"""Mini-batches drawn from in-memory tensors: one permutation per epoch, no DataLoader workers.

For data-parallel training each process takes its own contiguous share of every global batch, so
W processes with batch B/W each see exactly the images one process sees with batch B.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def epoch_batches(n: int, batch_size: int, *, generator: torch.Generator | None, shuffle: bool = True,
                  rank: int = 0, world_size: int = 1) -> Iterator[torch.Tensor]:
    """Index tensors of this process's share of each global batch of `batch_size` (last one smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        global_batch = order[start:start + batch_size]
        yield global_batch.tensor_split(world_size)[rank]


def n_batches(n: int, batch_size: int) -> int:
    return -(-n // batch_size)
