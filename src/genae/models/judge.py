"""The reference judge: a small CNN classifier of MNIST digits, used to score generated images.

    p(y | x) = softmax(CNN(x)),  loss = cross-entropy, trained through the shared engine.
    CNN: conv 5×5 (32) → ReLU → max-pool 2 → conv 5×5 (64) → ReLU → max-pool 2
         → FC 3136→256 → ReLU → dropout → FC 256→10
Training batches are shifted by up to `shift` pixels at random (per image), which is worth a few
tenths of a percent of test accuracy on MNIST.

    genae judge train          # trains it once into the cache, with a sha256 of its weights
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genae.errors import UserError
from genae.models.base import N_CLASSES, Batch, Capabilities, Model, Phase, adam
from genae.models.config import TrainConfig, check_config, require_fraction


@dataclass
class JudgeConfig(TrainConfig):
    epochs: int = 12
    """Maximum number of passes over the training split."""
    lr: float = 1e-3
    """Adam learning rate (decayed along a half cosine by default)."""
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    """'cosine': from --lr to 0 over --epochs; 'constant'."""
    dropout: float = 0.3
    """Dropout before the last layer."""
    shift: int = 2
    """Random translation of each training image by up to this many pixels (0: none)."""


class Judge(Model):
    """CNN digit classifier; see the module docstring."""

    name = "judge"

    def __init__(self, config: JudgeConfig):
        super().__init__(config)
        check_config(config)
        require_fraction("dropout", config.dropout)
        if not 0 <= config.shift <= 13:
            raise UserError(f"--shift {config.shift}: a translation of 0..13 pixels")
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(64 * 7 * 7, 256), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(256, N_CLASSES))

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(classifies=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B×10) for images in [0, 1]."""
        return self.head(self.features(x))

    def classify_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 256 penultimate features: what the Fréchet distance compares."""
        return self.features(x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch: int = 2000) -> torch.Tensor:
        return torch.cat([self(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])

    def prepare(self, x, y, generator=None) -> Batch:
        if self.training and self.config.shift:
            x = random_shift(x, self.config.shift, generator)
        return Batch(x=x, y=y, target=x)

    def loss(self, batch: Batch):
        logits = self(batch.x)
        loss = F.cross_entropy(logits, batch.y)
        error = (logits.argmax(1) != batch.y).float().mean()
        return loss, {"loss": loss.detach(), "error": error}

    @property
    def graph_safe(self) -> bool:
        return True

    def phases(self):
        return [Phase("classify", adam(self.parameters(), lr=self.config.lr), self.loss)]

    def validation_metrics(self, batch: Batch):
        logits = self(batch.x)
        return {"loss": F.cross_entropy(logits, batch.y), "error": (logits.argmax(1) != batch.y).float().mean()}


def random_shift(x: torch.Tensor, pixels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each image by a random whole number of pixels in [-pixels, pixels]², zero-filled."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pixels, pixels, pixels, pixels))
    dy, dx = torch.randint(0, 2 * pixels + 1, (2, n), generator=generator, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])          # n×h
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])          # n×w
    index = torch.arange(n, device=x.device)[:, None, None]
    return padded[index, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)
