"""Mini-batches drawn from in-memory tensors: one permutation per epoch, no DataLoader workers.

For data-parallel training each process takes its own contiguous share of every global batch, so
W processes with batch B/W each see exactly the images one process sees with batch B.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from genae.errors import UserError


def epoch_batches(n: int, batch_size: int, *, generator: torch.Generator | None, shuffle: bool = True,
                  rank: int = 0, world_size: int = 1) -> Iterator[torch.Tensor]:
    """Index tensors of this process's share of each global batch of `batch_size` (last one smaller),
    views of one permutation drawn on the host by `generator` (the same order on every device).

    A last global batch with fewer images than processes is dropped (a share would be empty).
    """
    if batch_size < 1:
        raise UserError(f"batch size must be >= 1, got {batch_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    return (order[start:start + batch_size].tensor_split(world_size)[rank]
            for start in range(0, n, batch_size) if min(batch_size, n - start) >= world_size)


def on_device(batches: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """The same index tensors on `device`, copied there at once: a step then reads its indices
    without a copy of its own."""
    if not batches:
        return []
    return list(torch.cat(batches).to(device).split([len(b) for b in batches]))


def n_batches(n: int, batch_size: int) -> int:
    return -(-n // batch_size)
