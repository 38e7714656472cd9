"""Distribution heads: turn a network's raw output into a torch.distributions object."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal

SIGMAS = ("exp", "softplus")


def diagonal_gaussian(params: torch.Tensor, sigma: str = "exp") -> Independent:
    """Split B×2d into (μ, s) and return N(μ, σ²) over d dims.

    sigma="exp":      σ = exp(½·s)      (s is the log-variance, Kingma & Welling)
    sigma="softplus": σ = softplus(s)   (s is ρ; seed 001 found this more stable)
    """
    mu, s = params.chunk(2, dim=-1)
    if sigma == "exp":
        std = torch.exp(0.5 * s)
    elif sigma == "softplus":
        std = F.softplus(s) + 1e-6
    else:
        raise ValueError(f"unknown sigma parametrization {sigma!r}; choose one of {SIGMAS}")
    return Independent(Normal(mu, std), 1)


def bernoulli_image(logits: torch.Tensor) -> Independent:
    """Independent Bernoulli pixels with the given logits (B×1×28×28).

    log_prob(x) = −BCE-with-logits(x) summed over pixels; defined for grey levels x ∈ [0, 1]
    too (the 'continuous' use of seed 000), so argument validation is off.
    """
    return Independent(Bernoulli(logits=logits, validate_args=False), 3)


def standard_normal(shape: tuple[int, ...], device: torch.device | str) -> Independent:
    return Independent(Normal(torch.zeros(shape, device=device), torch.ones(shape, device=device)), 1)
