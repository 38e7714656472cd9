"""Distribution heads: turn a network's raw output into a torch.distributions object."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal

from genae.errors import UserError

SIGMAS = ("exp", "softplus")


def diagonal_gaussian(params: torch.Tensor, sigma: str = "exp") -> Independent:
    """Split B×2d into (μ, s) and return N(μ, σ²) over d dims.

    sigma="exp":      σ = exp(½·s)      (s is the log-variance, Kingma & Welling)
    sigma="softplus": σ = softplus(s)   (s is ρ; the β/σ source found this more stable)
    """
    mu, s = params.float().chunk(2, dim=-1)  # float32 even under bf16 autocast
    if sigma == "exp":
        std = torch.exp(0.5 * s)
    elif sigma == "softplus":
        std = F.softplus(s) + 1e-6
    else:
        raise UserError(f"unknown sigma parametrization {sigma!r}; choose one of {SIGMAS}")
    return Independent(Normal(mu, std, validate_args=False), 1, validate_args=False)


class PixelBernoulli(Bernoulli):
    """Bernoulli whose log_prob, for any x ∈ [0, 1], is −BCE-with-logits:

        x·l − softplus(l)

    computed in three passes over the pixels instead of BCE's six; `value` broadcasts against
    the logits without being copied (K samples × B images against B images).
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        logits = self.logits
        return torch.addcmul(F.softplus(logits).neg_(), value.to(logits.dtype), logits)


def bernoulli_image(logits: torch.Tensor) -> Independent:
    """Independent Bernoulli pixels with the given logits (B×1×28×28).

    log_prob(x) = −BCE-with-logits(x) summed over pixels; defined for grey levels x ∈ [0, 1]
    too (the 'continuous' use of the CVAE source), so argument validation is off.
    """
    return Independent(PixelBernoulli(logits=logits.float(), validate_args=False), 3, validate_args=False)


def standard_normal(shape: tuple[int, ...], device: torch.device | str) -> Independent:
    return Independent(Normal(torch.zeros(shape, device=device), torch.ones(shape, device=device),
                              validate_args=False), 1, validate_args=False)
