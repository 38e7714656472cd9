"""The layers every network is made of: fully connected stacks, and the Encoder / Decoder wrappers
that join a condition vector (e.g. a one-hot label) to the flattened features or to z.

    Encoder:  x ─ features ─ flatten ─ [· , c] ─ body ─► out
    Decoder:  [z , c] ─ body ─ upsample ─► 1×28×28 logits
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genae.errors import UserError

IMAGE_SHAPE = (1, 28, 28)
IMAGE_SIZE = 28 * 28


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU, dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of the given sizes with `activation` (then dropout, if > 0) between them
    (none after the last)."""
    if not 0 <= dropout < 1:
        raise UserError(f"dropout {dropout}: a drop probability must be in [0, 1)")
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
