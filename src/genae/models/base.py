"""What every model offers the engine, the evaluator and the CLI.

A model owns its networks, declares its training `phases` (see genae.train.engine.Phase) and
turns raw images into a `Batch` with `prepare`. Generative models also have
`encode(x, y=None)`, `decode(z, y=None)` and `sample(n, y=None)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genae.data import transforms
from genae.train.config import TrainConfig

N_CLASSES = 10


@dataclass
class Batch:
    x: torch.Tensor        # what the encoder sees
    y: torch.Tensor        # int64 labels
    target: torch.Tensor   # what the decoder must reproduce (x itself, unless denoising)

    def __len__(self) -> int:
        return len(self.y)


class Model(nn.Module):
    """Base class: keeps the config and applies the config's batch transforms."""

    name: str = "model"

    def __init__(self, config: TrainConfig):
        super().__init__()
        self.config = config

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def prepare(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> Batch:
        """Images in [0, 1] → the batch the losses see: binarized if the config says so; with
        --noise the encoder sees a salt-and-pepper copy and the target stays clean."""
        if self.config.binarize == "dynamic":
            x = transforms.binarize(x, generator)
        if self.config.noise > 0:
            return Batch(x=transforms.salt_and_pepper(x, self.config.noise, generator), y=y, target=x)
        return Batch(x=x, y=y, target=x)

    def phases(self):  # -> list[Phase]
        raise NotImplementedError

    def validation_metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-batch means on held-out data; must include 'loss' (lower is better)."""
        raise NotImplementedError


def one_hot(y: torch.Tensor) -> torch.Tensor:
    return nn.functional.one_hot(y, N_CLASSES).float()
