"""One builder for every encoder and decoder, whatever the architecture.

An encoder maps an image (and an optional condition vector, e.g. a one-hot label) to a flat
vector of `out_features` (e.g. the 2·dim_z parameters of a Gaussian); a decoder maps a latent
vector (and an optional condition) to 1×28×28 logits. Every architecture conditions in the same
single place: the condition is concatenated to the *flattened* features in the encoder (the
image itself for the MLPs, the last feature map for the CNNs — seed 001's CVAE) and to z in the
decoder.

    Encoder:  x ─ features ─ flatten ─ [· , c] ─ body ─► out
    Decoder:  [z , c] ─ body ─ upsample ─► 1×28×28 logits

Architectures (`--arch`; the CNNs are in genae.nets.conv):
    mlp   n_layers hidden layers of n_hidden units each way (seed 000; 784-400-20 with n_layers=1
          is pytorch/examples' VAE)
    fc3   three fully connected layers each way, 784-n_hidden-n_hidden-out (seed 002's "3 FC")
    cnn2  two 4×4 stride-2 convolutions + one fully connected layer (seed 002)
    cnn3  three stride-2 convolutions + one fully connected layer (seed 002)
    conv  seed 001's CVAE: two convolutions, label after flattening; three transposed convolutions

    enc, dec = build_networks("cnn3", dim_z=20, n_hidden=500, cond_dim=10)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import nn

IMAGE_SHAPE = (1, 28, 28)
IMAGE_SIZE = 28 * 28
Architecture = Literal["mlp", "fc3", "cnn2", "cnn3", "conv"]
"""Encoder/decoder families of the one builder (`build_networks`); the CNNs are in genae.nets.conv."""
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU, dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of the given sizes with `activation` (then dropout, if > 0) between them
    (none after the last)."""
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout {dropout}: a drop probability must be in [0, 1)")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """x (B×1×28×28) [, c (B×cond_dim)] → B×out_features.

    `features` turns the image into a flat vector (default: flatten the pixels); the condition is
    concatenated to it; `body` maps the result to the output.
    """

    def __init__(self, body: nn.Module, cond_dim: int = 0, features: nn.Module | None = None):
        super().__init__()
        self.features = nn.Flatten() if features is None else features
        self.body, self.cond_dim = body, cond_dim

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        if self.cond_dim:
            h = torch.cat([h, c], dim=1)
        return self.body(h)

    def forward_each(self, x: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """The output for every image under every condition: C×B×out for C conditions (C×cond_dim).

        The features (a CNN's convolutions) are computed once. When the body is or starts with a linear
        layer, W·[h, c] + b = (W_h·h + b) + W_c·c, so its image part is too, and only the condition
        part per condition (M2 sums its bound over the ten labels of each unlabeled image: the
        784-wide product of an MLP, 3136-wide of conv, once instead of ten times).
        """
        h = self.features(x)
        sequential = isinstance(self.body, nn.Sequential)
        first, rest = (self.body[0], self.body[1:]) if sequential else (self.body, nn.Identity())
        if not isinstance(first, nn.Linear):
            c = conditions[:, None, :].expand(len(conditions), len(h), conditions.shape[-1])
            both = torch.cat([h.expand(len(conditions), *h.shape), c], dim=-1)
            return self.body(both.reshape(-1, both.shape[-1])).view(len(conditions), len(h), -1)
        w_h, w_c = first.weight[:, :h.shape[-1]], first.weight[:, h.shape[-1]:]
        pre = nn.functional.linear(h, w_h, first.bias)[None] + nn.functional.linear(conditions, w_c)[:, None]
        return rest(pre.reshape(-1, pre.shape[-1])).view(len(conditions), len(h), -1)


class Decoder(nn.Module):
    """z (…×B×dim_z) [, c (B×cond_dim)] → …×B×out_shape (logits or pre-activations).

    `body` maps [z, c] to a flat vector, `upsample` (default: none) turns it into the image.
    Leading sample dimensions pass through: K×B latents decode to K×B images, with the condition
    broadcast across the K samples (importance sampling needs no copies of c or x).
    """

    def __init__(self, body: nn.Module, cond_dim: int = 0, out_shape: tuple[int, ...] = IMAGE_SHAPE,
                 upsample: nn.Module | None = None):
        super().__init__()
        self.body, self.cond_dim, self.out_shape = body, cond_dim, out_shape
        self.upsample = nn.Identity() if upsample is None else upsample

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        lead = z.shape[:-1]
        if self.cond_dim:
            z = torch.cat([z, c.expand(*lead, c.shape[-1])], dim=-1)
        return self.upsample(self.body(z.reshape(-1, z.shape[-1]))).reshape(*lead, *self.out_shape)


def build_networks(arch: str, *, dim_z: int, n_hidden: int = 500, n_layers: int = 2, cond_dim: int = 0,
                   enc_out: int | None = None, encoder_cond: bool = True,
                   dropout: float = 0.0) -> tuple[Encoder, Decoder]:
    """Encoder (x[,c] → enc_out, default 2·dim_z) and decoder (z[,c] → 1×28×28) of one architecture.

    n_hidden applies to mlp and fc3, n_layers to mlp only (fc3 has two hidden layers by definition);
    the CNNs' sizes are fixed (see genae.nets.conv). encoder_cond=False: only the decoder sees the
    condition (the supervised AAE: the code must hold the style alone). dropout: after every hidden
    layer of the fully connected architectures.
    """
    from genae.nets.conv import CONV_ARCHS

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if n_layers < 1 or n_hidden < 1 or dim_z < 1:
        raise ValueError(f"need n_layers, n_hidden, dim_z >= 1, got {n_layers}, {n_hidden}, {dim_z}")
    if arch == "fc3" and n_layers != 2:
        raise ValueError(f"--arch fc3 has three layers (two hidden) by definition; got --n-layers {n_layers} "
                         "(use --arch mlp for other depths)")
    enc_out = 2 * dim_z if enc_out is None else enc_out
    enc_cond = cond_dim if encoder_cond else 0
    if arch in CONV_ARCHS:
        if dropout:
            raise ValueError(f"dropout is for the fully connected architectures, not --arch {arch}")
        return CONV_ARCHS[arch].build(dim_z=dim_z, cond_dim=cond_dim, enc_cond_dim=enc_cond, enc_out=enc_out)
    hidden = [n_hidden] * n_layers
    encoder = Encoder(mlp([IMAGE_SIZE + enc_cond, *hidden, enc_out], dropout=dropout), enc_cond)
    decoder = Decoder(mlp([dim_z + cond_dim, *hidden, IMAGE_SIZE], dropout=dropout), cond_dim)
    return encoder, decoder


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
