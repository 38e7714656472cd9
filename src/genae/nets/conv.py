"""The convolutional architectures of seeds 001 and 002, as data for the one builder.

Each is a stack of strided convolutions (ReLU after each) whose last feature map is flattened,
concatenated with the condition and mapped to the encoder's output by one linear layer; the decoder
mirrors it: one linear layer from [z, c] to a small feature map, then transposed convolutions
(ReLU between them) up to one 28×28 map of logits.

    cnn2  28 →(4×4 s2) 14 →(4×4 s2) 7;             16, 32 channels; FC from 32·7·7 = 1568
    cnn3  28 →(4×4 s2) 14 →(4×4 s2) 7 →(3×3 s2) 4; 16, 32, 64 channels; FC from 64·4·4 = 1024
    conv  28 →(3×3 s2) 14 →(3×3 s2) 7;             32, 64 channels (the β/σ source's CVAE, TensorFlow's CVAE
          tutorial); decoder FC → 64·7·7, transposed 3×3 s2 → 32·14², s2 → 16·28², s1 → 1·28²

Where the architectures source differs: its TensorFlow CNNs used "SAME" padding with strides 3, 3, 2 (28 → 10 →
4 → 2) and tiled the one-hot label as ten extra input channels; here every stride is 2 so sizes
divide evenly, and the label joins after flattening for every architecture alike. The parameter
table (`genae train vae --arch cnn3 --dry-run`) gives the exact counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from genae.nets.layers import Decoder, Encoder


@dataclass(frozen=True)
class ConvArch:
    down: tuple[tuple[int, int, int, int, int], ...]
    """Encoder convolutions: (in channels, out channels, kernel, stride, padding)."""
    grid: tuple[int, int, int]
    """The decoder's first feature map (channels, height, width)."""
    up: tuple[tuple[int, int, int, int, int, int], ...]
    """Decoder transposed convolutions: (in, out, kernel, stride, padding, output padding)."""

    def features(self) -> tuple[nn.Sequential, int]:
        layers: list[nn.Module] = []
        for c_in, c_out, k, s, p in self.down:
            layers += [nn.Conv2d(c_in, c_out, k, s, p), nn.ReLU()]
        size = 28
        for _, _, k, s, p in self.down:
            size = (size + 2 * p - k) // s + 1
        return nn.Sequential(*layers, nn.Flatten()), self.down[-1][1] * size * size

    def upsample(self) -> nn.Sequential:
        layers: list[nn.Module] = [nn.ReLU(), nn.Unflatten(1, self.grid)]
        for i, (c_in, c_out, k, s, p, op) in enumerate(self.up):
            layers.append(nn.ConvTranspose2d(c_in, c_out, k, s, p, op))
            if i < len(self.up) - 1:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    def build(self, *, dim_z: int, cond_dim: int, enc_out: int, enc_cond_dim: int | None = None) -> tuple[Encoder, Decoder]:
        features, n_features = self.features()
        enc_cond_dim = cond_dim if enc_cond_dim is None else enc_cond_dim
        encoder = Encoder(nn.Linear(n_features + enc_cond_dim, enc_out), enc_cond_dim, features=features)
        c, h, w = self.grid
        decoder = Decoder(nn.Linear(dim_z + cond_dim, c * h * w), cond_dim, upsample=self.upsample())
        return encoder, decoder


CONV_ARCHS = {
    "cnn2": ConvArch(down=((1, 16, 4, 2, 1), (16, 32, 4, 2, 1)), grid=(32, 7, 7),
                     up=((32, 16, 4, 2, 1, 0), (16, 1, 4, 2, 1, 0))),
    "cnn3": ConvArch(down=((1, 16, 4, 2, 1), (16, 32, 4, 2, 1), (32, 64, 3, 2, 1)), grid=(64, 4, 4),
                     up=((64, 32, 3, 2, 1, 0), (32, 16, 4, 2, 1, 0), (16, 1, 4, 2, 1, 0))),
    "conv": ConvArch(down=((1, 32, 3, 2, 1), (32, 64, 3, 2, 1)), grid=(64, 7, 7),
                     up=((64, 32, 3, 2, 1, 1), (32, 16, 3, 2, 1, 1), (16, 1, 3, 1, 1, 0))),
}
