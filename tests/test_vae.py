"""VAE / CVAE: the loss convention, the KL, the likelihood bounds, learning."""

import math

import pytest
import torch
import torch.nn.functional as F
from fakes import synthetic_mnist

from genae.evaluate.likelihood import likelihood_bounds
from genae.models.base import Batch
from genae.models.registry import build
from genae.models.vae import VAEConfig
from genae.train.engine import fit


def tiny(name="vae", **kw):
    torch.manual_seed(0)
    return build(name, VAEConfig(dim_z=3, n_hidden=32, **kw))


def batch_of(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return Batch(x=x, y=y, target=x)


@pytest.mark.parametrize("name", ["vae", "cvae"])
@pytest.mark.parametrize("sigma", ["exp", "softplus"])
def test_loss_is_summed_over_pixels_and_latents_and_averaged_over_batch(name, sigma):
    model, batch = tiny(name, beta=0.7, sigma=sigma), batch_of()
    torch.manual_seed(3)
    loss, parts = model.loss(batch)
    # by hand, with the same reparametrised sample
    torch.manual_seed(3)
    y = batch.y if name == "cvae" else None
    z = model.encode(batch.x, y).rsample()
    c = F.one_hot(batch.y, 10).float()
    raw = model.encoder.body(torch.cat([batch.x.flatten(1), c], 1) if name == "cvae" else batch.x.flatten(1))
    mu, s = raw.chunk(2, 1)
    std = torch.exp(0.5 * s) if sigma == "exp" else F.softplus(s) + 1e-6
    logits = model.decoder.body(torch.cat([z, c], 1) if name == "cvae" else z)
    rec = F.binary_cross_entropy_with_logits(logits, batch.x.flatten(1), reduction="none").sum(1).mean()
    kl = (0.5 * (mu**2 + std**2 - 1) - torch.log(std)).sum(1).mean()
    assert parts["rec"].item() == pytest.approx(rec.item(), rel=1e-5)
    assert parts["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    assert loss.item() == pytest.approx(rec.item() + 0.7 * kl.item(), rel=1e-5)
    assert rec.item() > 100  # a sum over 784 pixels, not a per-pixel mean (~0.7 nats each)


def test_batch_loss_is_the_mean_of_per_image_losses():
    model, batch = tiny(), batch_of(4)
    terms_all = model.loss_terms(batch)
    per_image_kl = [model.loss_terms(Batch(batch.x[i:i + 1], batch.y[i:i + 1], batch.target[i:i + 1]))["kl"]
                    for i in range(4)]
    assert torch.allclose(terms_all["kl"], torch.cat(per_image_kl), atol=1e-5)
    _, parts = model.loss(batch)
    assert parts["kl"].item() == pytest.approx(terms_all["kl"].mean().item(), rel=1e-6)


def test_kl_matches_its_closed_form_written_out():
    """(Against its Monte-Carlo definition, to a few hundredths of a nat: test_likelihood_paths.py.)"""
    model = tiny()
    q = model.encode(batch_of(3).x)
    closed = torch.distributions.kl_divergence(q, model.prior(3))
    mu, std = q.base_dist.loc, q.base_dist.scale
    by_hand = 0.5 * (mu**2 + std**2 - 1 - torch.log(std**2)).sum(1)
    assert torch.allclose(closed, by_hand, atol=1e-5)


def test_beta_zero_is_a_plain_autoencoder_loss():
    model, batch = tiny(beta=0.0), batch_of()
    loss, parts = model.loss(batch)
    assert loss.item() == pytest.approx(parts["rec"].item())
    assert parts["kl"].item() > 0


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory):
    torch.manual_seed(0)
    model = build("vae", VAEConfig(dim_z=4, n_hidden=64, epochs=4, batch_size=32, binarize="dynamic"))
    history = fit(model, synthetic_mnist(512), tmp_path_factory.mktemp("run"), device=torch.device("cpu"),
                  quiet=True)
    return model, history


def test_training_lowers_the_validation_loss(trained_vae):
    _, history = trained_vae
    assert history[-1]["valid"]["loss"] < history[0]["valid"]["loss"] - 10
    assert all(math.isfinite(h["train"]["vae"]["loss"]) for h in history)


def test_iwae_bound_rises_with_k_on_a_trained_model(trained_vae):
    """(That K = 1 gives the ELBO, and the bound's value against independent paths:
    test_likelihood_paths.py.)"""
    model, _ = trained_vae
    x = torch.bernoulli(synthetic_mnist(64, seed=9).test.x, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(len(x), dtype=torch.long)
    batch = Batch(x=x, y=y, target=x)
    means = {}
    for k in (1, 10, 200):
        torch.manual_seed(1)
        means[k] = likelihood_bounds(model, batch, k)["iwae"].mean().item()
    assert means[1] < means[10] < means[200]


def test_cvae_samples_depend_on_the_label():
    model = tiny("cvae")
    torch.manual_seed(0)
    a = model.sample(8, 3)
    torch.manual_seed(0)
    b = model.sample(8, 7)
    assert a.shape == (8, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    assert (a - b).abs().mean() > 1e-4
    with pytest.raises(ValueError, match="needs labels"):
        model.encode(batch_of().x)


def test_pixel_log_prob_is_minus_bce_for_grey_and_binary_values():
    from genae.nets.heads import bernoulli_image
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 28, 28, generator=g) * 30  # far into softplus's linear region too
    for x in (torch.rand(4, 1, 28, 28, generator=g), torch.rand(4, 1, 28, 28, generator=g).round()):
        expected = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
        torch.testing.assert_close(bernoulli_image(logits).log_prob(x), expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("name", ["vae", "cvae"])
def test_decoding_k_by_b_latents_equals_decoding_each_sample(name):
    model, batch = tiny(name), batch_of(n=5)
    z = torch.randn(3, 5, 3)
    y = batch.y if name == "cvae" else None
    stacked = model.decode(z, y)
    assert stacked.batch_shape == (3, 5)
    for k in range(3):
        torch.testing.assert_close(stacked.mean[k], model.decode(z[k], y).mean)
    x = batch.x.round()
    per_k = torch.stack([model.decode(z[k], y).log_prob(x) for k in range(3)])
    torch.testing.assert_close(stacked.log_prob(x), per_k)  # x broadcasts over the K samples


def test_bf16_precision_trains_and_keeps_float32_weights(tmp_path):
    torch.manual_seed(0)
    model = build("vae", VAEConfig(dim_z=4, n_hidden=64, epochs=3, batch_size=32, precision="bf16"))
    history = fit(model, synthetic_mnist(256), tmp_path, device=torch.device("cpu"), quiet=True)
    assert history[-1]["valid"]["loss"] < history[0]["valid"]["loss"]
    assert all(p.dtype == torch.float32 for p in model.parameters())
