"""One builder for every encoder and decoder.

An encoder maps an image (and an optional condition vector, e.g. a one-hot label) to a flat
vector of `out_features` (e.g. the 2·dim_z parameters of a Gaussian); a decoder maps a latent
vector (and an optional condition) to 1×28×28 logits. The condition is concatenated to the
flattened input (MLP) — one place, so every model conditions the same way.

    enc, dec = build_networks("mlp", dim_z=20, n_hidden=500, n_layers=2, cond_dim=10)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

IMAGE_SHAPE = (1, 28, 28)
IMAGE_SIZE = 28 * 28
ARCHITECTURES = ("mlp",)


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of the given sizes with `activation` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """x (B×1×28×28) [, c (B×cond_dim)] → B×out_features."""

    def __init__(self, body: nn.Module, cond_dim: int = 0):
        super().__init__()
        self.body, self.cond_dim = body, cond_dim

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1)
        if self.cond_dim:
            h = torch.cat([h, c], dim=1)
        return self.body(h)


class Decoder(nn.Module):
    """z (…×B×dim_z) [, c (B×cond_dim)] → …×B×out_shape (logits or pre-activations).

    Leading sample dimensions pass through: K×B latents decode to K×B images, with the condition
    broadcast across the K samples (importance sampling needs no copies of c or x).
    """

    def __init__(self, body: nn.Module, cond_dim: int = 0, out_shape: tuple[int, ...] = IMAGE_SHAPE):
        super().__init__()
        self.body, self.cond_dim, self.out_shape = body, cond_dim, out_shape

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        lead = z.shape[:-1]
        if self.cond_dim:
            z = torch.cat([z, c.expand(*lead, c.shape[-1])], dim=-1)
        return self.body(z.reshape(-1, z.shape[-1])).view(*lead, *self.out_shape)


def build_networks(arch: str, *, dim_z: int, n_hidden: int, n_layers: int = 2, cond_dim: int = 0,
                   enc_out: int | None = None) -> tuple[Encoder, Decoder]:
    """Encoder (x[,c] → enc_out, default 2·dim_z) and decoder (z[,c] → 1×28×28)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {ARCHITECTURES}")
    if n_layers < 1 or n_hidden < 1 or dim_z < 1:
        raise ValueError(f"need n_layers, n_hidden, dim_z >= 1, got {n_layers}, {n_hidden}, {dim_z}")
    enc_out = 2 * dim_z if enc_out is None else enc_out
    hidden = [n_hidden] * n_layers
    encoder = Encoder(mlp([IMAGE_SIZE + cond_dim, *hidden, enc_out]), cond_dim)
    decoder = Decoder(mlp([dim_z + cond_dim, *hidden, IMAGE_SIZE]), cond_dim)
    return encoder, decoder


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
