"""Batch transforms: pure functions of a batch of images x (…×1×28×28 in [0, 1]).

Randomness comes from torch's global generator (or the one given), so a seeded run repeats.
"""

from __future__ import annotations

import torch

from genae.errors import UserError

VALIDATION_SEED = 1234
"""Seed of the transforms (binarization, noise) of validation and test images: the same every epoch
and in every evaluation."""


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: each pixel is 1 with probability equal to its grey level."""
    return torch.bernoulli(x, generator=generator)


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """Rescale [0, 1] to [-1, 1] (for tanh decoders)."""
    return x * 2 - 1


def from_signed(x: torch.Tensor) -> torch.Tensor:
    """Rescale [-1, 1] back to [0, 1]."""
    return (x + 1) / 2


def salt_and_pepper(x: torch.Tensor, rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """With probability `rate` a pixel is replaced by 0 or 1 (equally likely); values stay in [0, 1]."""
    if not 0 <= rate <= 1:
        raise UserError(f"salt-and-pepper rate must be in [0, 1], got {rate}")
    hit = torch.rand(x.shape, generator=generator, device=x.device) < rate
    salt = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


def gaussian_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + N(0, std²) noise (not clipped: the AAE's input noise lives in [-1, 1] space)."""
    if std < 0:
        raise UserError(f"noise std must be >= 0, got {std}")
    return x + std * torch.randn(x.shape, generator=generator, device=x.device)


QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")


def quadrant_mask(quadrants: tuple[str, ...] | list[str], size: int = 28) -> torch.Tensor:
    """A 1×size×size float mask, 1 on the named quadrants, 0 elsewhere."""
    half = size // 2
    mask = torch.zeros(1, size, size)
    rows = {"top": slice(0, half), "bottom": slice(half, size)}
    cols = {"left": slice(0, half), "right": slice(half, size)}
    for q in quadrants:
        if q not in QUADRANTS:
            raise UserError(f"unknown quadrant {q!r}; choose from {QUADRANTS}")
        r, c = q.split("_")
        mask[:, rows[r], cols[c]] = 1
    return mask
