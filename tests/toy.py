"""A deterministic toy model for engine tests: a linear autoencoder with a squared-error loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genae.models.base import Batch, Model, Phase, adam
from genae.models.config import TrainConfig


@dataclass
class ToyConfig(TrainConfig):
    nan_at_epoch: int = 0        # the loss turns NaN in this epoch (0: never)
    worse_every_epoch: bool = False  # validation loss grows with every epoch
    nan_validation_at_epoch: int = 0   # the validation loss (only) is NaN after this epoch (0: never)
    optimizer: str = "adam"      # or "sgd": plain steps, whose size shows every mistake in a gradient


class Toy(Model):
    name = "toy"

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 8), nn.Linear(8, 784))
        self.epochs_seen = 0

    def loss(self, batch: Batch):
        err = ((self.net(batch.x) - batch.target.flatten(1)) ** 2).sum(1).mean()
        if self.config.nan_at_epoch and self.epochs_seen + 1 >= self.config.nan_at_epoch:
            err = err * float("nan")
        return err, {"loss": err.detach()}

    def phases(self):
        if self.config.optimizer == "sgd":
            return [Phase("toy", torch.optim.SGD(self.parameters(), lr=self.config.lr), self.loss)]
        return [Phase("toy", adam(self.parameters(), lr=self.config.lr), self.loss)]

    def validation_metrics(self, batch: Batch):
        loss, _ = self.loss(batch)
        self.epochs_seen += 1  # one validation batch per epoch in these tests
        if self.config.worse_every_epoch:
            loss = torch.tensor(float(self.epochs_seen))
        if self.config.nan_validation_at_epoch and self.epochs_seen >= self.config.nan_validation_at_epoch:
            loss = loss * float("nan")
        return {"loss": loss}
