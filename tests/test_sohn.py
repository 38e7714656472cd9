"""Sohn et al.'s CVAE for digit completion: masks, losses, the CLL estimator, the recipe."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from fakes import synthetic_mnist, write_npz

from genae.data import DataSource
from genae.evaluate.likelihood import likelihood_bounds
from genae.experiments import RECIPES
from genae.experiments.quadrants import QuadrantOptions
from genae.models.registry import build
from genae.models.sohn import SohnConfig, SohnCVAEConfig, masks
from genae.options import TrainCompute
from genae.rundir import load_model
from genae.train.engine import fit
from genae.train.trainer import train_model

CPU = torch.device("cpu")


@pytest.mark.parametrize("q", [1, 2, 3])
def test_masks_partition_the_image_into_given_and_output(q):
    given, output = masks(q)
    assert torch.equal(given + output, torch.ones(1, 28, 28)) and (given * output).sum() == 0
    assert given.sum() == q * 14 * 14
    with pytest.raises(ValueError, match="--quadrants 4"):
        masks(4)


def test_prepare_hides_the_output_pixels_and_keeps_the_whole_target():
    model = build("sohn-baseline", SohnConfig(quadrants=2, n_hidden=16))
    x = torch.rand(3, 1, 28, 28)
    batch = model.prepare(x, torch.zeros(3, dtype=torch.long))
    assert torch.equal(batch.target, x)
    assert (batch.x[..., :, 14:] == -1).all() and torch.equal(batch.x[..., :, :14], x[..., :, :14])


def test_baseline_loss_is_bce_summed_over_the_output_pixels_only():
    torch.manual_seed(0)
    model = build("sohn-baseline", SohnConfig(quadrants=1, n_hidden=16))
    x = torch.rand(4, 1, 28, 28)
    batch = model.prepare(x, torch.zeros(4, dtype=torch.long))
    loss, _ = model.loss(batch)
    logits = model.logits(batch.x)
    _, output = masks(1)
    by_hand = (F.binary_cross_entropy_with_logits(logits, x, reduction="none") * output).sum((1, 2, 3)).mean()
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)


@pytest.fixture(scope="module")
def trained_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("sohn")
    data = synthetic_mnist(512)
    torch.manual_seed(0)
    nn = build("sohn-baseline", SohnConfig(quadrants=1, n_hidden=48, epochs=3, batch_size=64))
    fit(nn, data, root / "nn", device=CPU, quiet=True)
    # long enough, and fast enough, that q(z|x,y) has not collapsed onto p(z|x) (KL ≈ 1.5 nats): with a
    # collapsed posterior every log-weight is equal and the IS bound has no gap to test
    cvae = build("sohn-cvae", SohnCVAEConfig(quadrants=1, n_hidden=48, dim_z=4, epochs=8, batch_size=32, lr=3e-3,
                                              baseline=str(root / "nn")))
    cvae.initialize(load_model)
    frozen = {k: v.clone() for k, v in cvae.baseline.state_dict().items()}
    history = fit(cvae, data, root / "cvae", device=CPU, quiet=True)
    return cvae, data, frozen, history


def test_the_cvae_keeps_the_baseline_frozen_and_learns(trained_pair):
    cvae, _, frozen, history = trained_pair
    for k, v in cvae.baseline.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    assert history[-1]["valid"]["loss"] < history[0]["valid"]["loss"]


def test_importance_sampling_with_one_sample_is_the_elbo_in_expectation(trained_pair):
    cvae, data, _, _ = trained_pair
    batch = cvae.prepare(data.test.x[:16], data.test.y[:16])
    torch.manual_seed(0)
    one_sample_weights = cvae.log_weights(batch, 4000)  # 4000 independent S=1 estimates
    torch.manual_seed(1)
    terms = cvae.loss_terms(batch)
    neg_elbo_closed_kl = terms["kl"] + torch.stack([cvae.loss_terms(batch)["rec"] for _ in range(400)]).mean(0)
    torch.testing.assert_close(-one_sample_weights.mean(0), neg_elbo_closed_kl, rtol=0.01, atol=0.5)


def test_cll_bound_is_below_the_negative_elbo(trained_pair):
    cvae, data, _, _ = trained_pair
    batch = cvae.prepare(data.test.x[:64], data.test.y[:64])
    torch.manual_seed(0)
    log_w = cvae.log_weights(batch, 100)
    cll = -(torch.logsumexp(log_w, 0) - math.log(100))
    assert (cll <= -log_w.mean(0) + 1e-4).all()  # per image, same samples: Jensen
    assert cvae.capabilities.likelihood == "cll"   # what genae eval reports from these weights
    torch.manual_seed(0)
    bounds = likelihood_bounds(cvae, batch, 100, rows=100 * 64)   # one chunk: the same samples
    torch.testing.assert_close(-bounds["iwae"], cll)
    assert (-bounds["iwae"]).mean() < (-bounds["elbo"]).mean()


def test_completions_keep_the_given_quadrants_of_images_and_read_nothing_else(trained_pair):
    cvae, data, _, _ = trained_pair
    x = data.test.x[:4]
    scrambled = torch.where(cvae.given_mask.bool(), x, torch.rand_like(x))   # other output pixels
    for model in (cvae, cvae.baseline):
        torch.manual_seed(0)
        completed = model.complete(x, 3)
        torch.manual_seed(0)
        assert torch.equal(completed, model.complete(scrambled, 3))
        assert completed.shape == (3, 4, 1, 28, 28)
        given = cvae.given_mask.bool().expand_as(completed)
        assert torch.equal(completed[given], x.expand_as(completed)[given])


def test_the_cvae_refuses_a_missing_or_mismatched_baseline(tmp_path):
    with pytest.raises(ValueError, match="--baseline"):
        build("sohn-cvae", SohnCVAEConfig(n_hidden=16)).initialize(load_model)
    data = tmp_path / "mnist"
    data.mkdir()
    write_npz(data / "mnist.npz")
    train_model("sohn-baseline", SohnConfig(quadrants=2, n_hidden=16, epochs=1), tmp_path / "nn2",
                data=DataSource(data_dir=str(data), limit=200), device="cpu", quiet=True)
    with pytest.raises(ValueError, match="--quadrants 1"):
        build("sohn-cvae", SohnCVAEConfig(quadrants=1, n_hidden=16, baseline=str(tmp_path / "nn2"))).initialize(
            load_model)


def test_recipe_writes_the_table_and_a_figure_per_setting(tmp_path):
    data = tmp_path / "mnist"
    data.mkdir()
    write_npz(data / "mnist.npz")
    defaults = QuadrantOptions()
    opts = dataclasses.replace(defaults, out=tmp_path / "runs", quadrants=(1, 3),
                               baseline=dataclasses.replace(defaults.baseline, epochs=1, n_hidden=24),
                               cvae=dataclasses.replace(defaults.cvae, epochs=1, n_hidden=24, dim_z=4), iw_samples=10,
                               n_digits=3, n_completions=2, data=DataSource(data_dir=str(data), limit=300),
                               compute=TrainCompute(device="cpu", quiet=True))
    result = RECIPES["quadrants"].run(opts)
    saved = json.loads((result.report.parent / "results.json").read_text())
    assert saved["figures"] == ["figures/quadrants_1.png", "figures/quadrants_3.png"]
    for q in (1, 3):
        numbers = saved["numbers"][f"quadrants={q}"]
        assert all(math.isfinite(numbers[k]) for k in ("baseline_nll", "cvae_cll", "cvae_neg_elbo"))
        assert numbers["cvae_cll"] <= numbers["cvae_neg_elbo"] + 1e-4   # the same S log-weights: IWAE ≥ ELBO
        evaluated = json.loads((Path(saved["runs"][f"cvae q{q}"]) / "eval.json").read_text())
        assert evaluated["cll"] == numbers["cvae_cll"] and evaluated["elbo"] == -numbers["cvae_neg_elbo"]
        assert evaluated["iw_samples"] == 10 and evaluated["n_images"] == 300
        assert result.arrays[q].shape == (3, 3 + 2, 1, 28, 28)
    assert "| NN baseline" in result.report.read_text()


def test_hybrid_objective_mixes_the_cvae_and_gsnn_losses():
    torch.manual_seed(0)
    model = build("sohn-cvae", SohnCVAEConfig(quadrants=2, n_hidden=16, dim_z=3, objective="hybrid", alpha=0.3))
    batch = model.prepare(torch.rand(5, 1, 28, 28), torch.zeros(5, dtype=torch.long))
    torch.manual_seed(1)
    loss, _ = model.loss(batch)
    torch.manual_seed(1)
    terms = model.loss_terms(batch)
    expected = (0.3 * (terms["rec"] + terms["kl"]) + 0.7 * terms["gsnn"]).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    model.config.objective = "gsnn"
    torch.manual_seed(1)
    assert model.loss(batch)[0].item() == pytest.approx(terms["gsnn"].mean().item(), rel=1e-5)
