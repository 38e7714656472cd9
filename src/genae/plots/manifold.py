"""The learned 2-D manifold: decode a regular grid of z over [-r, r]² (Kingma et al. 2014, Fig. 1a).

    grid = manifold_images(model, n_x=10, n_y=10, z_range=2.0, label=3)   # (n_y·n_x)×1×28×28

Row-major, z₁ growing left to right and z₂ growing bottom to top, as on a plot's axes.
"""

from __future__ import annotations

import torch

from genae.errors import UserError


def latent_grid(n_x: int, n_y: int, z_range: float) -> torch.Tensor:
    """(n_y·n_x)×2 points of a regular grid over [-z_range, z_range]², row-major, top row = max z₂."""
    if n_x < 1 or n_y < 1 or not z_range > 0:
        raise UserError(f"need n_x, n_y >= 1 and z_range > 0, got {n_x}, {n_y}, {z_range}")
    z1 = torch.linspace(-z_range, z_range, n_x)
    z2 = torch.linspace(z_range, -z_range, n_y)
    return torch.stack(torch.meshgrid(z2, z1, indexing="ij")[::-1], dim=-1).reshape(-1, 2)


@torch.no_grad()
def manifold_images(model, *, n_x: int, n_y: int, z_range: float, label: int | None = None) -> torch.Tensor:
    """Decoder means over the grid; a conditional model decodes every point with `label`."""
    if model.config.dim_z != 2:
        raise UserError(f"the learned manifold needs a 2-D latent space (--dim-z 2), this model has "
                         f"dim_z={model.config.dim_z}")
    z = latent_grid(n_x, n_y, z_range).to(model.device)
    y = None
    if model.capabilities.conditional:
        if label is None:
            raise UserError("a conditional model's manifold needs a label")
        y = torch.full((len(z),), label, dtype=torch.long, device=model.device)
    return model.decode(z, y).mean
