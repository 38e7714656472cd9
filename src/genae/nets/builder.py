"""One builder for every encoder and decoder, whatever the architecture.

An encoder maps an image (and an optional condition vector, e.g. a one-hot label) to a flat
vector of `out_features` (e.g. the 2·dim_z parameters of a Gaussian); a decoder maps a latent
vector (and an optional condition) to 1×28×28 logits. Every architecture conditions in the same
single place: the condition is concatenated to the *flattened* features in the encoder (the
image itself for the MLPs, the last feature map for the CNNs — as the β/σ source's CVAE) and to z in the
decoder (genae.nets.layers).

Architectures (`--arch`; the CNNs are in genae.nets.conv):
    mlp   n_layers hidden layers of n_hidden units each way (the CVAE source's; 784-400-20 with n_layers=1
          is pytorch/examples' VAE)
    fc3   three fully connected layers each way, 784-n_hidden-n_hidden-out (the architectures source's "3 FC")
    cnn2  two 4×4 stride-2 convolutions + one fully connected layer (the architectures source)
    cnn3  three stride-2 convolutions + one fully connected layer (the same)
    conv  the β/σ source's CVAE: two convolutions, label after flattening; three transposed convolutions

    enc, dec = build_networks("cnn3", dim_z=20, n_hidden=500, cond_dim=10)
"""

from __future__ import annotations

from typing import Literal, get_args

from torch import nn

from genae.errors import UserError
from genae.nets.conv import CONV_ARCHS
from genae.nets.layers import IMAGE_SIZE, Decoder, Encoder, mlp

Architecture = Literal["mlp", "fc3", "cnn2", "cnn3", "conv"]
"""Encoder/decoder families of the one builder (`build_networks`); the CNNs are in genae.nets.conv."""
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)


def build_networks(arch: str, *, dim_z: int, n_hidden: int = 500, n_layers: int = 2, cond_dim: int = 0,
                   enc_out: int | None = None, encoder_cond: bool = True,
                   dropout: float = 0.0) -> tuple[Encoder, Decoder]:
    """Encoder (x[,c] → enc_out, default 2·dim_z) and decoder (z[,c] → 1×28×28) of one architecture.

    n_hidden applies to mlp and fc3, n_layers to mlp only (fc3 has two hidden layers by definition);
    the CNNs' sizes are fixed (see genae.nets.conv). encoder_cond=False: only the decoder sees the
    condition (the supervised AAE: the code must hold the style alone). dropout: after every hidden
    layer of the fully connected architectures.
    """
    if arch not in ARCHITECTURES:
        raise UserError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if n_layers < 1 or n_hidden < 1 or dim_z < 1:
        raise UserError(f"need n_layers, n_hidden, dim_z >= 1, got {n_layers}, {n_hidden}, {dim_z}")
    if arch == "fc3" and n_layers != 2:
        raise UserError(f"--arch fc3 has three layers (two hidden) by definition; got --n-layers {n_layers} "
                         "(use --arch mlp for other depths)")
    enc_out = 2 * dim_z if enc_out is None else enc_out
    enc_cond = cond_dim if encoder_cond else 0
    if arch in CONV_ARCHS:
        if dropout:
            raise UserError(f"dropout is for the fully connected architectures, not --arch {arch}")
        return CONV_ARCHS[arch].build(dim_z=dim_z, cond_dim=cond_dim, enc_cond_dim=enc_cond, enc_out=enc_out)
    hidden = [n_hidden] * n_layers
    encoder = Encoder(mlp([IMAGE_SIZE + enc_cond, *hidden, enc_out], dropout=dropout), enc_cond)
    decoder = Decoder(mlp([dim_z + cond_dim, *hidden, IMAGE_SIZE], dropout=dropout), cond_dim)
    return encoder, decoder


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
