"""Likelihood bounds by importance sampling with the encoder as proposal.

For an image x (and label y for conditional models) and K samples z_k ~ q(z | x, y), the model's
log_weights give
    log w_k = log p(x | z_k, y) + log p(z_k) − log q(z_k | x, y)
    ELBO      = mean_k log w_k                      (unbiased estimate of the evidence lower bound)
    IWAE_K    = log (1/K) Σ_k exp(log w_k)          (Burda et al. 2016; ≥ ELBO, ↑ log p(x|y) as K grows)
The reported NLL is −IWAE_K with K stated: an upper bound on −log p(x) that tightens with K.
For the CVAE p(z) does not depend on y (M2), so these bound the conditional −log p(x | y); for
Sohn's CVAE the weights are those of the output pixels given the others, a bound on the CLL.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from tqdm.auto import tqdm


def iwae(log_w: torch.Tensor) -> torch.Tensor:
    """log mean_k exp(log w_k) per image (dimension 0 holds the K samples)."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


@torch.no_grad()
def importance_bounds(log_weights_fn: Callable[[slice, int], torch.Tensor], n: int, k: int, *, rows: int = 5_000,
                      progress: bool = False) -> dict[str, torch.Tensor]:
    """Per-item ELBO (mean of K log-weights) and IWAE_K bound for n items, in chunks of about `rows`
    samples (big enough for fast products, small enough to stay in cache); `log_weights_fn(items, k)`
    returns the K×B log-weights of a slice of the items."""
    per_chunk = max(1, rows // k)
    elbo, bound = [], []
    for start in tqdm(range(0, n, per_chunk), disable=not progress, desc=f"IWAE K={k}", leave=False):
        log_w = log_weights_fn(slice(start, start + per_chunk), k)
        elbo.append(log_w.mean(0))
        bound.append(iwae(log_w))
    return {"elbo": torch.cat(elbo), "iwae": torch.cat(bound)}


def likelihood_bounds(model, batch, k: int, *, rows: int = 5_000, progress: bool = False) -> dict[str, torch.Tensor]:
    """Per-image ELBO (mean of K log-weights) and IWAE_K bound over a prepared batch, from the
    model's own log_weights (genae.models.base: the 'likelihood' capability)."""
    return importance_bounds(lambda part, k: model.log_weights(batch[part], k), len(batch), k, rows=rows,
                             progress=progress)
