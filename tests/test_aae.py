"""The adversarial autoencoder (seed 003): its priors, its adversarial phases, its losses and the
Parzen-window score. Tiny networks and a handful of steps on fixed fake batches."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from fakes import digit_like, synthetic_mnist
from torch.distributions import Independent, Normal

from genae.evaluate.parzen import parzen_log_likelihood, parzen_score
from genae.models.aae import AAE, AAEConfig, check_aae_config
from genae.models.base import Batch, one_hot
from genae.models.priors import GaussianMixturePrior, GaussianPrior, make_prior
from genae.train.engine import fit

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks gain nothing from threads, and on a busy machine intra-op threads waiting for
    each other made these steps 20× slower; the previous setting is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_aae(**kw) -> AAE:
    torch.manual_seed(0)
    return AAE(AAEConfig(**{"n_hidden": 32, "dim_z": 2, **kw}))


def fixed_batch(n: int = 64, seed: int = 0, labels: bool = True) -> Batch:
    x, y = digit_like(n, seed)
    if not labels:
        y = torch.full_like(y, -1)
    return Batch(x, y, x)


def phase_of(model: AAE, name: str):
    return {p.name: p for p in model.phases()}[name]


def step(phase, batch: Batch) -> dict:
    """One optimisation step of a phase, as the engine runs it."""
    phase.optimizer.zero_grad(set_to_none=True)
    loss, parts = phase.loss(batch)
    loss.backward()
    phase.optimizer.step()
    return {k: v.item() for k, v in parts.items()}


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def unchanged(module: torch.nn.Module, before: list[torch.Tensor]) -> bool:
    return all(torch.equal(p, b) for p, b in zip(module.parameters(), before))


def entropy(logits: torch.Tensor) -> torch.Tensor:
    return -(logits.softmax(1) * logits.log_softmax(1)).sum(1).mean()


# ------------------------------------------------------------------ 1. priors

@pytest.mark.parametrize("dim", [2, 5])
def test_mixture_components_have_the_intended_means_and_covariances(dim):
    torch.manual_seed(0)
    prior = GaussianMixturePrior(dim, radius=4.0, radial_std=1.0, tangential_std=0.25)
    means = prior.means()
    cov = prior.components().covariance_matrix
    for k in range(10):
        theta = 2 * math.pi * k / 10
        expected = torch.zeros(dim)
        expected[0], expected[1] = 4 * math.cos(theta), 4 * math.sin(theta)
        torch.testing.assert_close(means[k], expected, rtol=0, atol=1e-5)
        z = prior.sample(torch.full((20_000,), k))
        assert z.shape == (20_000, dim)
        # standard error of each coordinate's mean ≤ 1/√20000 ≈ 0.007
        torch.testing.assert_close(z.mean(0), expected, rtol=0, atol=0.04)
        torch.testing.assert_close(torch.cov(z.T), cov[k], rtol=0, atol=0.05)
    # the long axis of component k points along its radius
    k = 2
    u = means[k, :2] / means[k, :2].norm()
    z = prior.sample(torch.full((20_000,), k))[:, :2] - means[k, :2]
    along, across = z @ u, z @ torch.stack([-u[1], u[0]])
    assert along.std().item() == pytest.approx(1.0, abs=0.05)
    assert across.std().item() == pytest.approx(0.25, abs=0.02)


def test_unlabeled_draws_cover_every_component():
    torch.manual_seed(0)
    prior = GaussianMixturePrior(3)
    z = prior.sample(torch.full((20_000,), -1))
    torch.testing.assert_close(z.mean(0), torch.zeros(3), rtol=0, atol=0.1)
    nearest = torch.cdist(z, prior.means()).argmin(1)
    counts = torch.bincount(nearest, minlength=10).float() / len(z)
    assert counts.min() > 0.08 and counts.max() < 0.12
    # labeled and unlabeled draws mix in one call
    mixed = prior.sample(torch.tensor([3] * 1000 + [-1] * 1000))
    torch.testing.assert_close(mixed[:1000].mean(0), prior.means()[3], rtol=0, atol=0.1)


def test_mixture_distribution_and_axis_points():
    prior = GaussianMixturePrior(4)
    dist = prior.distribution()
    z = prior.sample(torch.arange(-1, 10).repeat(20))
    log_p = dist.log_prob(z)
    assert log_p.shape == (len(z),) and torch.isfinite(log_p).all()
    # the mixture is densest near a component's mean, not at the (empty) origin
    assert dist.log_prob(prior.means()[:1]) > dist.log_prob(torch.zeros(1, 4))
    for k in (0, 3, 7):
        points = prior.axis_points(k, 9, n_std=2.0)
        theta = 2 * math.pi * k / 10
        direction = torch.tensor([math.cos(theta), math.sin(theta)])
        offset = points[:, :2] - prior.means()[k, :2]
        # on the line through mean k along (cos θ_k, sin θ_k), nothing outside the plane
        cross = offset[:, 0] * direction[1] - offset[:, 1] * direction[0]
        torch.testing.assert_close(cross, torch.zeros(9), rtol=0, atol=1e-5)
        assert torch.equal(points[:, 2:], torch.zeros(9, 2))
        torch.testing.assert_close(offset @ direction, torch.linspace(-2, 2, 9), rtol=0, atol=1e-5)


def test_prior_argument_checks_and_gaussian_prior():
    with pytest.raises(ValueError, match="at least 2"):
        GaussianMixturePrior(1)
    with pytest.raises(ValueError, match="> 0"):
        GaussianMixturePrior(2, radius=0.0)
    with pytest.raises(ValueError, match="unknown prior"):
        make_prior("uniform", 2)
    torch.manual_seed(0)
    z = GaussianPrior(3).sample(torch.full((20_000,), 4))
    torch.testing.assert_close(z.mean(0), torch.zeros(3), rtol=0, atol=0.04)
    torch.testing.assert_close(torch.cov(z.T), torch.eye(3), rtol=0, atol=0.05)


# ------------------------------------------------------------------ 2.–4. the adversarial phases

def test_discriminator_learns_then_the_generator_fools_it():
    model = tiny_aae(prior="gmm", lr=3e-3)
    batch = fixed_batch()
    phases = {p.name: p for p in model.phases()}
    first = step(phases["discriminator"], batch)
    for _ in range(60):
        last = step(phases["discriminator"], batch)
    assert first["d_accuracy"] < 0.75
    assert last["d_accuracy"] > 0.85 and last["d_loss"] < first["d_loss"]

    def fake_loss():  # D's loss on the encoder's codes alone (q(z|x) means and draws)
        with torch.no_grad():
            q = model.encode(batch.x)
            d = model._discriminate(q.sample(), batch.y)
            return F.binary_cross_entropy_with_logits(d, torch.zeros_like(d)).item(), (d < 0).float().mean().item()

    loss_before, caught_before = fake_loss()
    g_first = step(phases["generator"], batch)
    for _ in range(60):
        g_last = step(phases["generator"], batch)
    loss_after, caught_after = fake_loss()
    assert g_last["g_loss"] < g_first["g_loss"]
    assert caught_before > 0.75 and caught_after < 0.25
    assert loss_after > loss_before + 0.5
    with torch.no_grad():
        _, parts = model.discriminator_loss(batch)
    assert parts["d_accuracy"].item() < last["d_accuracy"] - 0.2


def test_categorical_discriminator_calls_one_hot_draws_real_and_the_generator_sharpens_q_y():
    model = tiny_aae(mode="semisupervised", lr=3e-3)
    batch = fixed_batch(labels=False)
    phases = {p.name: p for p in model.phases()}
    with torch.no_grad():
        h0 = entropy(model.classify_logits(batch.x)).item()
    assert h0 > 0.9 * math.log(10)  # q(y|x) starts near uniform
    for _ in range(40):
        parts = step(phases["discriminator"], batch)
    assert parts["dy_accuracy"] > 0.9
    with torch.no_grad():
        real = model.y_discriminator(one_hot(torch.arange(10).repeat(5))).squeeze(1)
        fake = model.y_discriminator(model.classify_logits(batch.x).softmax(1)).squeeze(1)
    assert real.min() > fake.max()  # real = one-hot draws of Cat(1/10), fake = the encoder's q(y|x)
    assert real.mean() > 0 > fake.mean()
    for _ in range(40):
        step(phases["generator"], batch)
    with torch.no_grad():
        h1 = entropy(model.classify_logits(batch.x)).item()
    assert h1 < h0 - 0.5  # pushed towards one-hot outputs


def test_generator_phase_changes_only_the_encoder():
    for mode in ("unsupervised", "semisupervised"):
        model = tiny_aae(mode=mode, lr=1e-2)
        batch = fixed_batch(labels=False)
        critics = [model.discriminator] + ([model.y_discriminator] if mode == "semisupervised" else [])
        before = {m: snapshot(m) for m in (model.encoder, model.decoder, *critics)}
        step(phase_of(model, "generator"), batch)
        for critic in critics:
            assert unchanged(critic, before[critic]), mode
            assert all(p.grad is None for p in critic.parameters()), mode
            assert all(p.requires_grad for p in critic.parameters()), mode  # unfrozen afterwards
        assert unchanged(model.decoder, before[model.decoder])
        assert not unchanged(model.encoder, before[model.encoder])


def test_discriminator_phase_changes_only_the_discriminators():
    model = tiny_aae(mode="semisupervised", lr=1e-2)
    batch = fixed_batch(labels=False)
    before = {m: snapshot(m) for m in (model.encoder, model.decoder, model.discriminator, model.y_discriminator)}
    step(phase_of(model, "discriminator"), batch)
    assert unchanged(model.encoder, before[model.encoder])
    assert unchanged(model.decoder, before[model.decoder])
    assert all(p.grad is None for p in model.encoder.parameters())
    assert not unchanged(model.discriminator, before[model.discriminator])
    assert not unchanged(model.y_discriminator, before[model.y_discriminator])


def test_phases_per_mode():
    assert [p.name for p in tiny_aae().phases()] == ["reconstruction", "discriminator", "generator"]
    assert [p.name for p in tiny_aae(mode="semisupervised").phases()] == [
        "reconstruction", "discriminator", "generator", "classification"]
    model = tiny_aae(mode="semisupervised")
    with pytest.raises(ValueError, match="without labeled"):
        model.classification_loss(fixed_batch(labels=False))
    with pytest.raises(ValueError, match="no classifier"):
        tiny_aae().classify_logits(torch.rand(2, 1, 28, 28))


# ------------------------------------------------------------------ 5.–6. config and the label prior

def test_config_checks_name_the_option():
    with pytest.raises(ValueError, match="--label-prior"):
        check_aae_config(AAEConfig(label_prior=True, prior="gaussian"))
    with pytest.raises(ValueError, match="--label-prior"):
        AAE(AAEConfig(n_hidden=8, label_prior=True, prior="gmm", mode="supervised"))
    with pytest.raises(ValueError, match="--n-labels 100.*without --label-prior"):
        check_aae_config(AAEConfig(n_labels=100, mode="unsupervised"))
    with pytest.raises(ValueError, match="--n-labels 100"):
        check_aae_config(AAEConfig(n_labels=100, mode="supervised"))
    with pytest.raises(ValueError, match="--input-noise"):
        check_aae_config(AAEConfig(input_noise=-0.1))
    with pytest.raises(ValueError, match="--labeled-batch"):
        check_aae_config(AAEConfig(labeled_batch=0))
    check_aae_config(AAEConfig(n_labels=100, mode="semisupervised"))
    check_aae_config(AAEConfig(n_labels=100, label_prior=True, prior="gmm"))


def test_label_prior_feeds_an_eleven_way_one_hot_and_draws_from_the_labels_component():
    model = tiny_aae(prior="gmm", label_prior=True)
    first = model.discriminator[0]
    assert isinstance(first, torch.nn.Linear) and first.in_features == 2 + 11
    assert tiny_aae(prior="gmm").discriminator[0].in_features == 2
    # unlabeled (y = -1) is class 10: D's output equals the first layer fed [z, e_10] by hand
    z = torch.randn(4, 2)
    y = torch.tensor([-1, 0, 9, -1])
    expected_input = torch.cat([z, F.one_hot(torch.tensor([10, 0, 9, 10]), 11).float()], 1)
    torch.testing.assert_close(model._discriminate(z, y), model.discriminator(expected_input).squeeze(1))
    torch.manual_seed(1)
    means = model.prior.means()
    for k in range(10):
        codes = model._prior_codes(torch.full((4000,), k))
        torch.testing.assert_close(codes.mean(0), means[k], rtol=0, atol=0.1)
    spread = model._prior_codes(torch.full((4000,), -1))
    assert spread.mean(0).norm() < 0.3  # unlabeled: the whole mixture
    # without the label prior, labels are ignored: every draw is from the whole mixture
    plain = tiny_aae(prior="gmm")
    assert plain._prior_codes(torch.full((4000,), 3)).mean(0).norm() < 0.3


# ------------------------------------------------------------------ 7. Parzen

def test_parzen_with_one_sample_is_the_gaussian_density():
    torch.manual_seed(0)
    s, x = torch.rand(1, 1, 28, 28), torch.rand(5, 1, 28, 28)
    for sigma in (0.1, 0.3):
        got = parzen_log_likelihood(s, x, sigma)
        expected = Normal(s.flatten().double(), sigma).log_prob(x.flatten(1).double()).sum(1)
        torch.testing.assert_close(got.double(), expected, rtol=1e-3, atol=0)
    # two samples: log of the mean of the two densities
    s2 = torch.rand(2, 1, 28, 28)
    each = torch.stack([Normal(s2[i].flatten().double(), 0.2).log_prob(x.flatten(1).double()).sum(1)
                        for i in range(2)])
    torch.testing.assert_close(parzen_log_likelihood(s2, x, 0.2).double(),
                               torch.logsumexp(each, 0) - math.log(2), rtol=1e-3, atol=0)
    # a mean, not a sum, of the kernels: repeating the samples changes nothing (log N is subtracted)
    torch.testing.assert_close(parzen_log_likelihood(s2.repeat(8, 1, 1, 1), x, 0.2),
                               parzen_log_likelihood(s2, x, 0.2), rtol=0, atol=0.05)
    # batching over x changes nothing
    torch.testing.assert_close(parzen_log_likelihood(s2, x, 0.2, batch=2), parzen_log_likelihood(s2, x, 0.2))


def test_parzen_prefers_samples_at_the_test_points_and_picks_the_best_sigma():
    torch.manual_seed(0)
    x = torch.rand(20, 1, 28, 28)
    near = parzen_log_likelihood(x, x, 0.05).mean()
    far = parzen_log_likelihood((1 - x).round(), x, 0.05).mean()
    assert near > far + 100
    samples, valid, test = torch.rand(50, 1, 28, 28), torch.rand(20, 1, 28, 28), torch.rand(20, 1, 28, 28)
    sigmas = (0.05, 0.2, 0.4, 1.0)
    result = parzen_score(samples, valid, test, sigmas)
    per_sigma = {s: parzen_log_likelihood(samples, valid, s).mean().item() for s in sigmas}
    best = max(per_sigma, key=per_sigma.get)
    assert result["parzen_sigma"] == best and best not in (sigmas[0], sigmas[-1])  # an interior maximum
    ll = parzen_log_likelihood(samples, test, best)
    assert result["parzen_ll"] == pytest.approx(ll.mean().item(), rel=1e-6)
    assert result["parzen_se"] == pytest.approx(ll.std().item() / math.sqrt(20), rel=1e-5)
    assert result["n_samples"] == 50 and result["n_test"] == 20
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="must be > 0"):
            parzen_log_likelihood(samples, valid, bad)


# ------------------------------------------------------------------ 8. reconstruction loss

@pytest.mark.parametrize("mode", ["unsupervised", "supervised", "semisupervised"])
def test_reconstruction_loss_is_the_signed_squared_error_and_the_gaussian_log_likelihood(mode, monkeypatch):
    model = tiny_aae(mode=mode, w_ae=2.5)
    batch = fixed_batch(8)
    z = torch.randn(8, 2)
    condition = None if mode == "unsupervised" else one_hot(batch.y)
    dec_in = None if mode == "unsupervised" else batch.y
    with torch.no_grad():
        signed = torch.tanh(model.decoder(z, condition))
        sse = (signed - (2 * batch.x - 1)).square().flatten(1).sum(1)
        torch.testing.assert_close(model._rec_sse(z, condition, batch.x), sse)
        # p(x|z) = N(mean, 1/8) on [0, 1] pixels: log p = −sse − 784·½·log(2π/8)
        log_p = model.decode(z, dec_in).log_prob(batch.x)
        torch.testing.assert_close(log_p, -sse - 784 * 0.5 * math.log(2 * math.pi / 8), rtol=1e-5, atol=1e-3)
        mean = model.decode(z, dec_in).mean
        torch.testing.assert_close(mean, (signed + 1) / 2)
    # with q(z|x) made deterministic (rsample → its mean), the loss is w_ae · mean over images of sse
    monkeypatch.setattr(Independent, "rsample", lambda self, shape=torch.Size(): self.mean)
    with torch.no_grad():
        q, logits = model.posterior(batch.x)
        cond = {"unsupervised": None, "supervised": one_hot(batch.y),
                "semisupervised": None if logits is None else logits.softmax(1)}[mode]
        expected = (torch.tanh(model.decoder(q.mean, cond)) - (2 * batch.x - 1)).square().flatten(1).sum(1).mean()
        loss, parts = model.reconstruction_loss(batch)
    torch.testing.assert_close(loss, 2.5 * expected)
    torch.testing.assert_close(parts["rec_sse"], expected)


def test_reconstruction_phase_lowers_the_error():
    model = tiny_aae(lr=3e-3)
    batch = fixed_batch(32)
    rec = phase_of(model, "reconstruction")
    first = step(rec, batch)["rec_sse"]
    for _ in range(30):
        last = step(rec, batch)["rec_sse"]
    assert last < 0.5 * first


# ------------------------------------------------------------------ 9. sampling

@pytest.mark.parametrize("kw", [{}, {"prior": "gmm"}, {"prior": "gmm", "label_prior": True},
                                {"mode": "supervised"}, {"mode": "semisupervised"}])
def test_sample_gives_images_in_the_unit_interval(kw):
    model = tiny_aae(**kw)
    for y in (None, 3, torch.arange(7) % 10):
        images = model.sample(7, y)
        assert images.shape == (7, 1, 28, 28)
        assert images.min() >= 0 and images.max() <= 1
    assert model.reconstruct(torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2])).shape == (3, 1, 28, 28)


def test_conditional_samples_depend_on_the_label():
    for mode in ("supervised", "semisupervised"):
        model = tiny_aae(mode=mode)
        torch.manual_seed(5)
        a = model.sample(4, 1)
        torch.manual_seed(5)
        a2 = model.sample(4, 1)
        torch.manual_seed(5)
        b = model.sample(4, 2)
        assert torch.equal(a, a2), mode  # same z, same label: the same images
        assert (a - b).abs().max() > 1e-4, mode  # same z, another label
        torch.manual_seed(5)
        z = torch.randn(4, 2)
        torch.testing.assert_close(a, model.decode(z, torch.full((4,), 1)).mean)
    # --label-prior: the label picks the mixture component the code comes from
    model = tiny_aae(prior="gmm", label_prior=True)
    torch.manual_seed(5)
    a = model.sample(4, 1)
    torch.manual_seed(5)
    z = model.prior.sample(torch.full((4,), 1))
    torch.testing.assert_close(a, model.decode(z).mean)


def test_sample_std_checks():
    with pytest.raises(ValueError, match="mixture prior"):
        tiny_aae(prior="gmm").sample(4, std=0.5)
    with pytest.raises(ValueError, match="std"):
        tiny_aae().sample(4, std=-1.0)
    model = tiny_aae()
    assert model.sample(4, std=0.0).std(0).max() < 1e-6  # every z = 0: the same image
    assert model.sample(4, std=2.0).shape == (4, 1, 28, 28)
    with pytest.raises(ValueError, match="needs labels"):
        tiny_aae(mode="supervised").decode(torch.zeros(2, 2))


# ------------------------------------------------------------------ 10. through the engine

def test_semisupervised_aae_trains_one_epoch_through_the_engine(tmp_path):
    model = tiny_aae(mode="semisupervised", n_labels=20, labeled_batch=8, batch_size=64, epochs=1)
    data = model.prepare_data(synthetic_mnist(256))
    assert (data.train.y >= 0).sum().item() == 20 and len(model.labeled) == 20
    model.train()
    batch = model.prepare(data.train.x[:16], data.train.y[:16])
    assert len(batch) == 16 + 8 and (batch.y[16:] >= 0).all()  # a labeled draw joins every batch
    model.eval()
    assert len(model.prepare(data.train.x[:16], data.train.y[:16])) == 16  # not in evaluation
    history = fit(model, data, tmp_path, device=CPU, quiet=True)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == len(history) == 1
    train = lines[0]["train"]
    assert set(train) == {"reconstruction", "discriminator", "generator", "classification"}
    assert set(train["discriminator"]) == {"d_loss", "d_accuracy", "dy_loss", "dy_accuracy"}
    assert set(train["generator"]) == {"g_loss", "gy_loss"}
    valid = lines[0]["valid"]
    assert valid["loss"] == valid["error"] and 0 <= valid["error"] <= 1
    assert all(math.isfinite(v) for part in train.values() for v in part.values())


def test_label_prior_batches_get_a_labeled_draw_too():
    model = tiny_aae(prior="gmm", label_prior=True, n_labels=20, labeled_batch=8)
    data = model.prepare_data(synthetic_mnist(256))
    model.train()
    batch = model.prepare(data.train.x[:16], data.train.y[:16])
    assert len(batch) == 16 + 8 and (batch.y[16:] >= 0).all()
    assert tiny_aae(prior="gmm", label_prior=True, n_labels=20, batch_size=50).labeled_batch == 50  # default
    assert tiny_aae(mode="semisupervised", n_labels=20).labeled_batch == 32                      # the seed's
    all_labels = tiny_aae(prior="gmm", label_prior=True)  # every label known: nothing to add
    all_labels.prepare_data(synthetic_mnist(64))
    all_labels.train()
    assert len(all_labels.prepare(data.train.x[:16], data.train.y[:16])) == 16


def test_component_match_counts_codes_in_their_own_digits_component(monkeypatch):
    model = tiny_aae(prior="gmm", label_prior=True).eval()
    y = torch.arange(40) % 10
    wrong = torch.where(torch.arange(40) < 30, y, (y + 3) % 10)  # the last 10 codes sit in another component
    codes = model.prior.means()[wrong] + 0.05 * torch.randn(40, 2)
    monkeypatch.setattr(model, "posterior", lambda x: (Independent(Normal(codes[:len(x)], 1.0), 1), None))
    x = torch.zeros(40, 1, 28, 28)
    result = model.test_metrics(Batch(x, y, x))
    assert result["component_match"] == pytest.approx(0.75)
    assert "component_match" not in tiny_aae(prior="gmm").eval().test_metrics(Batch(x[:4], y[:4], x[:4]))


def test_classify_every_sets_the_classification_phase_and_is_checked():
    phases = AAE(AAEConfig(n_hidden=8, mode="semisupervised", classify_every=10)).phases()
    assert [p.every for p in phases] == [1, 1, 1, 10]
    for kwargs, match in (({"classify_every": 0, "mode": "semisupervised"}, "--classify-every 0"),
                          ({"classify_every": 10}, "--classify-every 10 has no effect")):
        with pytest.raises(ValueError, match=match):
            AAE(AAEConfig(n_hidden=8, **kwargs))


def test_shared_encoder_optimizer_serves_the_encoders_phases_and_leaves_the_decoder_alone():
    model = tiny_aae(mode="semisupervised", encoder_optimizer="shared", lr=1e-2)
    phases = {p.name: p for p in model.phases()}
    shared = phases["reconstruction"].optimizer
    assert phases["generator"].optimizer is shared and phases["classification"].optimizer is shared
    assert phases["discriminator"].optimizer is not shared
    batch = fixed_batch()
    step(phases["reconstruction"], batch)
    decoder = snapshot(model.decoder)
    step(phases["generator"], batch)
    step(phases["classification"], batch)
    assert unchanged(model.decoder, decoder)   # no gradient there: the shared Adam skips it
    first = next(model.encoder.parameters())
    assert shared.state[first]["step"].item() == 3   # one moment estimate fed by all three phases
    per_phase = {p.name: p.optimizer for p in tiny_aae(mode="semisupervised").phases()}
    assert len({id(o) for o in per_phase.values()}) == 4


def test_deterministic_encoder_codes_are_the_mean_and_drop_the_variance_outputs():
    model = tiny_aae(mode="semisupervised", dim_z=3, deterministic=True).train()
    assert model.encoder(torch.zeros(1, 1, 28, 28)).shape[1] == 3 + 10       # μ and y's logits only
    assert tiny_aae(mode="semisupervised", dim_z=3).encoder(torch.zeros(1, 1, 28, 28)).shape[1] == 2 * 3 + 10
    x = fixed_batch(8).x
    q, _ = model.posterior(x)
    assert torch.equal(q.rsample(), q.mean) and torch.equal(q.sample(), q.mean)
    loss, _ = phase_of(model, "reconstruction").loss(fixed_batch(8))
    loss.backward()   # gradients reach the encoder through μ
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_shared_encoder_optimizer_checkpoints_once_and_resumes(tmp_path):
    from safetensors import safe_open

    def run(epochs: int, resume: bool):
        model = tiny_aae(mode="semisupervised", n_labels=20, labeled_batch=8, batch_size=64, epochs=epochs,
                         encoder_optimizer="shared")
        return fit(model, model.prepare_data(synthetic_mnist(256)), tmp_path, device=CPU, quiet=True, resume=resume)

    run(1, resume=False)
    with safe_open(str(tmp_path / "checkpoint.safetensors"), "pt") as f:
        owners = {key.split("/")[1] for key in f.keys() if key.startswith("optim/")}
    assert owners == {"reconstruction", "discriminator"}   # the shared Adam once, under its first phase
    history = run(2, resume=True)
    assert [line["epoch"] for line in history] == [1, 2]
    assert all(math.isfinite(v) for part in history[-1]["train"].values() for v in part.values())


def test_discriminator_noise_blurs_both_critics_inputs_in_training_only_and_is_checked():
    batch = fixed_batch(labels=False)
    accuracy = {}
    for std in (0.0, 3.0):
        # the z critic against the mixture prior (far from the first codes), the categorical one in semi mode
        mixture = tiny_aae(prior="gmm", lr=3e-3, discriminator_noise=std)
        semi = tiny_aae(mode="semisupervised", lr=3e-3, discriminator_noise=std)
        for _ in range(60):
            z_parts = step(phase_of(mixture, "discriminator"), batch)
            y_parts = step(phase_of(semi, "discriminator"), batch)
        accuracy[std] = z_parts["d_accuracy"], y_parts["dy_accuracy"]
        codes = mixture.encode(batch.x).mean
        with torch.no_grad():   # noise is drawn afresh on every call in training, never in evaluation
            repeatable = torch.equal(mixture._discriminate(codes, batch.y), mixture._discriminate(codes, batch.y))
            assert repeatable == (std == 0)
            mixture.eval()
            assert torch.equal(mixture._discriminate(codes, batch.y), mixture._discriminate(codes, batch.y))
    assert min(accuracy[0.0]) > 0.85          # clean inputs: both critics tell prior draws from codes
    assert max(accuracy[3.0]) < 0.75          # std 3, far above the one-hots' and codes' gaps: they cannot
    with pytest.raises(ValueError, match="--discriminator-noise -0.1"):
        AAE(AAEConfig(n_hidden=8, discriminator_noise=-0.1))
