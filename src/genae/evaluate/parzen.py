"""Parzen-window log-likelihood of generated samples (the protocol of Goodfellow et al. 2014 and
Makhzani et al. 2015, whose AAE scores 340 ± 2 nats on MNIST test):

    log p̂(x) = log (1/N) Σ_i N(x; s_i, σ²·I)
             = logsumexp_i(−‖x − s_i‖² / 2σ²) − log N − (D/2)·log(2πσ²),

over N generated images s_i (pixels in [0, 1], D = 784); σ is the one of a grid that gives the
highest mean log p̂ on validation images, and the test score is the mean over test images
± its standard error.

Known weakness (Theis, van den Oord & Bethge 2016, "A note on the evaluation of generative
models"): in 784 dimensions this estimate is far from the true log-likelihood even with 10k
samples, rewards blurry or memorised samples, and ranks models differently from likelihood
bounds; compare numbers only under the same protocol, never with an ELBO or IWAE bound.
"""

from __future__ import annotations

import math

import torch

from genae.errors import UserError

SIGMAS = tuple(float(s) for s in torch.logspace(math.log10(0.05), math.log10(0.5), 12))


def parzen_log_likelihood(samples: torch.Tensor, x: torch.Tensor, sigma: float, batch: int = 1000) -> torch.Tensor:
    """log p̂(x) for each row of x under the Parzen window of `samples` with width sigma."""
    if not sigma > 0:
        raise UserError(f"Parzen window width {sigma}: must be > 0")
    s = samples.flatten(1).float()
    dim, n = s.shape[1], s.shape[0]
    out = []
    for part in x.flatten(1).float().to(s.device).split(batch):
        # squared distances by one float32 matrix product (cdist's mm mode); the sum in float64
        d2 = torch.cdist(part, s, compute_mode="use_mm_for_euclid_dist").double().square()
        out.append(torch.logsumexp(-d2 / (2 * sigma ** 2), 1) - math.log(n)
                   - dim / 2 * math.log(2 * math.pi * sigma ** 2))
    return torch.cat(out).float()


def parzen_score(samples: torch.Tensor, valid: torch.Tensor, test: torch.Tensor,
                 sigmas: tuple[float, ...] = SIGMAS) -> dict:
    """Choose σ on `valid`, score `test`: {'parzen_ll', 'parzen_se', 'parzen_sigma', 'valid_ll_per_sigma'}."""
    per_sigma = {s: parzen_log_likelihood(samples, valid, s).mean().item() for s in sigmas}
    best = max(per_sigma, key=per_sigma.get)
    ll = parzen_log_likelihood(samples, test, best)
    return {"parzen_ll": ll.mean().item(), "parzen_se": (ll.std() / math.sqrt(len(ll))).item(),
            "parzen_sigma": best, "n_samples": len(samples), "n_test": len(test),
            "valid_ll_per_sigma": {f"{s:.4f}": round(v, 2) for s, v in per_sigma.items()},
            "parzen_note": "Parzen-window log-likelihood (nats), σ chosen on validation; a weak, "
                           "protocol-bound estimate (Theis et al. 2016), not comparable with ELBO/IWAE"}
