"""The likelihood bounds, checked by paths that share no code with them.

For a VAE or CVAE, the ELBO can be reached three ways:
  1. the mean over samples of the model's log importance weights (what `genae eval` reports; with
     K = 1 the IWAE bound is one such weight);
  2. the training loss's terms: a one-sample reconstruction term and the KL in closed form;
  3. by hand here: z = μ + σ·ε with our own ε, log p(x|z) as x·l − softplus(l) from the decoder's raw
     logits, log N(z; 0, I) and log N(z; μ, σ²) written out.
They must agree within Monte-Carlo error; the tolerance is a few standard errors, far below what a
dropped term (the KL's −1 or log σ², a missing prior) would cost.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genae.evaluate.likelihood import importance_bounds, iwae, likelihood_bounds
from genae.models.base import Batch
from genae.models.registry import build
from genae.models.vae import VAEConfig

DIM_Z = 4
SAMPLES = 4000


def model_and_batch(name: str):
    torch.manual_seed(0)
    model = build(name, VAEConfig(dim_z=DIM_Z, n_hidden=24, n_layers=1)).eval()
    last = model.encoder.body[-1].bias
    last.data[:DIM_Z] += 0.7    # μ away from 0 and σ² = e^−2 away from 1, as in a trained encoder:
    last.data[DIM_Z:] -= 2.0    # every term of the KL then weighs at least 0.2 nats per dimension
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.rand(3, 1, 28, 28, generator=g) * 0.3, generator=g)
    y = torch.tensor([1, 4, 7])
    return model, Batch(x=x, y=y, target=x)


def hand_elbo(model, batch: Batch, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the mean and the standard error of log p(x|z) + log p(z) − log q(z|x[,y]) over n
    draws z = μ + σ·ε, with every density written out."""
    cond = model.capabilities.conditional
    c = F.one_hot(batch.y, 10).float()
    flat = batch.x.flatten(1)
    raw = model.encoder.body(torch.cat([flat, c], 1) if cond else flat)
    mu, log_var = raw.chunk(2, 1)
    sigma = torch.exp(0.5 * log_var)
    eps = torch.randn(n, *mu.shape, generator=torch.Generator().manual_seed(123))
    z = mu + sigma * eps                                                     # n×B×d
    body_in = torch.cat([z, c.expand(n, *c.shape)], -1) if cond else z
    logits = model.decoder.body(body_in)                                     # n×B×784
    log_px = (flat * logits - F.softplus(logits)).sum(-1)
    log_pz = (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_qz = (-0.5 * eps ** 2 - 0.5 * math.log(2 * math.pi) - torch.log(sigma)).sum(-1)
    w = log_px + log_pz - log_qz
    return w.mean(0), w.std(0) / math.sqrt(n)


@pytest.mark.parametrize("name", ["vae", "cvae"])
@torch.no_grad()
def test_three_paths_to_the_elbo_agree(name):
    model, batch = model_and_batch(name)
    by_hand, se = hand_elbo(model, batch, SAMPLES)

    torch.manual_seed(7)
    k1 = torch.stack([likelihood_bounds(model, batch, 1)["iwae"] for _ in range(SAMPLES // 2)])   # eval's path
    k1_se = k1.std(0) / math.sqrt(len(k1))
    assert (k1.mean(0) - by_hand).abs().max() < 5 * (k1_se.max() + se.max())

    terms = [model.loss_terms(batch) for _ in range(SAMPLES // 10)]
    rec = torch.stack([t["rec"] for t in terms])               # one-sample reconstruction term per draw
    kl = terms[0]["kl"]                                        # closed form: the same every draw
    from_loss = -(rec.mean(0) + kl)
    rec_se = rec.std(0) / math.sqrt(len(terms))
    assert (from_loss - by_hand).abs().max() < 5 * (rec_se.max() + se.max())


@torch.no_grad()
def test_the_kl_is_exact_to_a_thousandth_of_a_nat():
    """Closed-form KL against its definition, log q − log p averaged over many draws: the tolerance is a
    few standard errors (≈ 0.01 nats), while dropping any one term of 0.5·Σ(μ² + σ² − 1 − log σ²)
    misses by far more."""
    model, batch = model_and_batch("vae")
    q = model.encode(batch.x)
    closed = model.loss_terms(batch)["kl"]
    mu, sigma = q.base_dist.loc, q.base_dist.scale
    eps = torch.randn(200_000, *mu.shape, generator=torch.Generator().manual_seed(5))
    z = mu + sigma * eps
    diff = ((-0.5 * eps ** 2 - torch.log(sigma)) - (-0.5 * z ** 2)).sum(-1)   # log q − log p, 2π terms cancel
    mc, se = diff.mean(0), diff.std(0) / math.sqrt(len(diff))
    assert (closed - mc).abs().max() < 4 * se.max() + 1e-4
    assert se.max() < 0.02
    terms = {"μ²": mu ** 2, "σ²": sigma ** 2, "−1": -torch.ones_like(mu), "−log σ²": -torch.log(sigma ** 2)}
    for name in terms:
        dropped = 0.5 * sum(t for k, t in terms.items() if k != name).sum(1)
        assert (dropped - mc).abs().min() > 10 * se.max(), f"a KL without its {name} term would pass"


@torch.no_grad()
def test_iwae_bound_tightens_with_k_towards_an_exact_likelihood():
    """A model whose likelihood is known exactly: z ~ N(0, 1), x | z ~ N(z, 1), so p(x) = N(x; 0, 2); with
    a poor fixed proposal q(z) = N(0, 1.3²) the bound is below log p(x) at K = 1 and reaches it as K grows."""
    x = torch.tensor([0.3, -1.2, 2.0])
    exact = torch.distributions.Normal(0.0, math.sqrt(2.0)).log_prob(x)   # z ~ N(0,1), x|z ~ N(z,1)
    proposal = torch.distributions.Normal(0.0, 1.3)                       # a poor, fixed q(z)

    def log_weights(part: slice, k: int) -> torch.Tensor:
        z = proposal.sample((k, len(x[part])))
        prior = torch.distributions.Normal(0.0, 1.0)
        return (torch.distributions.Normal(z, 1.0).log_prob(x[part]) + prior.log_prob(z)
                - proposal.log_prob(z))

    torch.manual_seed(0)
    bounds = {k: importance_bounds(log_weights, len(x), k, rows=10**6)["iwae"] for k in (1, 10, 10_000)}
    repeats = torch.stack([importance_bounds(log_weights, len(x), 1, rows=10**6)["iwae"] for _ in range(2000)])
    assert (repeats.mean(0) < exact).all()          # K = 1: the ELBO, strictly below log p(x) on average
    assert (bounds[10_000] - exact).abs().max() < 0.02
    assert (repeats.mean(0) < bounds[10_000]).all()


@torch.no_grad()
def test_likelihood_bounds_chunks_give_the_same_numbers_as_one_pass():
    model, batch = model_and_batch("cvae")
    torch.manual_seed(3)
    chunked = likelihood_bounds(model, batch, 50, rows=60)      # one image (50 samples) per chunk
    torch.manual_seed(3)
    whole = model.log_weights(batch[0:1], 50), model.log_weights(batch[1:2], 50), model.log_weights(batch[2:3], 50)
    torch.testing.assert_close(chunked["iwae"], torch.cat([iwae(w) for w in whole]))
    torch.testing.assert_close(chunked["elbo"], torch.cat([w.mean(0) for w in whole]))
