"""Labeled subsets for semi-supervised learning: n labels, balanced across the ten classes, drawn
by a seed from the training split only (validation and test stay whole and untouched).

    idx = balanced_subset(data.train.y, 100, seed=0)   # 10 images of each digit
    train = hide_labels(data.train, idx)               # y = -1 everywhere else
"""

from __future__ import annotations

import torch

from genae.data.mnist import Split
from genae.errors import UserError

UNLABELED = -1


def balanced_subset(y: torch.Tensor, n: int, *, seed: int, n_classes: int = 10) -> torch.Tensor:
    """Sorted indices of n images, n / n_classes of each class, chosen uniformly by `seed`."""
    if n < n_classes or n % n_classes:
        raise UserError(f"--n-labels {n}: a balanced subset needs a positive multiple of {n_classes}")
    per_class = n // n_classes
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in range(n_classes):
        pool = (y == label).nonzero().flatten()
        if len(pool) < per_class:
            raise UserError(f"--n-labels {n}: class {label} has only {len(pool)} training images, "
                             f"{per_class} are needed")
        chosen.append(pool[torch.randperm(len(pool), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def hide_labels(split: Split, keep: torch.Tensor) -> Split:
    """The split with every label outside `keep` replaced by UNLABELED (-1)."""
    y = torch.full_like(split.y, UNLABELED)
    y[keep] = split.y[keep]
    return Split(split.x, y)


def with_labeled_draw(x: torch.Tensor, y: torch.Tensor, labeled: tuple[torch.Tensor, torch.Tensor],
                      n: int, every: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch (x, y) with n images drawn with replacement from the labeled subset (on x's device)
    appended: how the semi-supervised models see their few labels. The draw uses the global RNG of
    x's device, which the engine seeds anew for each epoch, so a resumed run draws the same.
    every > 1: only with probability 1/every, decided on the host (a step that may or may not draw
    cannot be a CUDA graph)."""
    if every > 1 and torch.rand(()).item() * every >= 1:
        return x, y
    pick = torch.randint(len(labeled[1]), (n,), device=x.device)
    return torch.cat([x, labeled[0].index_select(0, pick)]), torch.cat([y, labeled[1].index_select(0, pick)])


def on_device(labeled: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The labeled subset (images, labels) on `device`: the same tensors when already there."""
    if labeled[0].device == device:
        return labeled
    return labeled[0].to(device), labeled[1].to(device)
