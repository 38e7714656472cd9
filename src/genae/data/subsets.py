"""Labeled subsets for semi-supervised learning: n labels, balanced across the ten classes, drawn
by a seed from the training split only (validation and test stay whole and untouched).

    idx = balanced_subset(data.train.y, 100, seed=0)   # 10 images of each digit
    train = hide_labels(data.train, idx)               # y = -1 everywhere else
    labeled = LabeledSubset(data.train, idx, draw=100) # what each training step adds to its batch
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


class LabeledSubset:
    """The labeled subset of a semi-supervised training split, and the draws a training step takes
    from it: with probability 1/every, `draw` images with replacement, appended to the step's batch.

    The engine plans each step on the host first (`plan`): whether it draws, decided by the host's
    global generator, and so how many of its images carry a label. `join` then makes the draw on the
    batch's device with that device's global generator. The engine seeds both anew each epoch, so a
    resumed run draws the same; the count fixes the step's shapes (genae.train.steps captures a
    CUDA graph per plan).
    """

    def __init__(self, train: Split, keep: torch.Tensor, *, draw: int, every: int = 1):
        self.x, self.y = train.x[keep], train.y[keep]
        self.in_split = torch.zeros(len(train.y), dtype=torch.bool)   # host: which training images keep a label
        self.in_split[keep] = True
        self.draw, self.every = draw, every

    def __len__(self) -> int:
        return len(self.y)

    def draws(self) -> bool:
        """Whether a step takes a draw: always for every = 1, else with probability 1/every."""
        return self.every == 1 or torch.rand(()).item() * self.every < 1

    def plan(self, idx: torch.Tensor) -> tuple[bool, int]:
        """For a step on the training images `idx` (host indices): (whether it draws, how many of
        its images are then labeled)."""
        drawn = self.draws()
        return drawn, int(self.in_split[idx].sum()) + (self.draw if drawn else 0)

    def join(self, x: torch.Tensor, y: torch.Tensor, drawn: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch (x, y), with a draw appended when `drawn`."""
        if not drawn:
            return x, y
        if self.x.device != x.device:
            self.x, self.y = self.x.to(x.device), self.y.to(x.device)
        pick = torch.randint(len(self.y), (self.draw,), device=x.device)
        return torch.cat([x, self.x.index_select(0, pick)]), torch.cat([y, self.y.index_select(0, pick)])
