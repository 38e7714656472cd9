"""The adversarial-autoencoder recipes (the TF AAE source) on a small slice of MNIST-shaped data:
every run, figure and number is there, and the report shows the paper's values beside ours."""

import dataclasses
import json

import pytest
from fakes import write_npz

from genae.data import DataSource
from genae.experiments import RECIPES
from genae.experiments.aae import AAEOptions, AAESemiOptions, aae, aae_semisupervised
from genae.models.aae import AAEConfig
from genae.options import TrainCompute


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    data = tmp_path_factory.mktemp("mnist")
    write_npz(data / "mnist.npz")
    return dict(out=tmp_path_factory.mktemp("recipes"), data=DataSource(data_dir=str(data), limit=300),
                compute=TrainCompute(device="cpu", quiet=True))


def with_aae(opts, **changes):
    return dataclasses.replace(opts, aae=dataclasses.replace(opts.aae, **changes))


def saved_figures(result) -> list[str]:
    saved = json.loads((result.report.parent / "results.json").read_text())
    for figure in saved["figures"]:
        assert (result.report.parent / figure).stat().st_size > 2000, figure
        assert figure in result.report.read_text()
    return saved["figures"]


def test_aae_recipe_trains_every_setting_and_draws_codes_manifolds_and_styles(root):
    opts = dataclasses.replace(AAEOptions(), **root, guided_labels=100, parzen_samples=200, n_images=200)
    result = aae(with_aae(opts, epochs=1))
    assert list(result.numbers) == ["Gaussian prior", "mixture prior", "mixture + 100 labels",
                                    "mixture + all labels", "supervised, z 2", "supervised, z 10"]
    for key in ("Gaussian prior", "mixture prior"):   # Parzen for the unconditional samplers only
        numbers = result.numbers[key]
        per_sigma = numbers["valid_ll_per_sigma"]   # σ chosen on validation: the best of its grid
        assert numbers["n_samples"] == 200
        assert numbers["parzen_sigma"] == pytest.approx(float(max(per_sigma, key=per_sigma.get)), rel=1e-3)
    assert "parzen_ll" not in result.numbers["supervised, z 2"]
    assert result.arrays["mixture prior"]["manifold"].shape == (100, 1, 28, 28)        # 10 components × 10
    assert result.arrays["Gaussian prior"]["manifold"].shape == (225, 1, 28, 28)       # 15 × 15 grid
    assert result.arrays["supervised, z 10"]["style_grid"].shape == (100, 1, 28, 28)
    figures = saved_figures(result)
    assert "figures/supervised-style.png" in figures
    assert sum(f.startswith("figures/codes-") for f in figures) == 4
    report = result.report.read_text()
    assert "340 ± 2" in report and "constant learning rate from 0.0002, fp32" in report   # the learning-rate path


def test_aae_semisupervised_recipe_reports_error_per_label_count_beside_the_paper(root):
    source = RECIPES["aae-semisupervised"].defaults("source")   # fp32 and a constant rate: quick on any CPU
    opts = dataclasses.replace(source, **root, n_labels=(20, 0), seeds=(0,))
    result = aae_semisupervised(with_aae(opts, epochs=1, dim_z=4, lr=5e-4))
    assert set(result.numbers) == {"20 labels, seed 0", "all labels, seed 0"}
    for numbers in result.numbers.values():
        assert 0 <= numbers["error"] <= 1 and numbers["accuracy"] == pytest.approx(1 - numbers["error"])
    assert result.numbers["all labels, seed 0"]["n_labels"] == "all"
    assert saved_figures(result) == ["figures/samples.png"]
    report = result.report.read_text()
    assert "0.85 ± 0.02" in report and "| 20 |" in report
    assert "learning rate from 0.0005" in report   # the rate the runs trained at, not the setting's 2e-4
    (run,) = (root["out"] / "models").glob("aae-semi-20-*")
    assert json.loads((run / "config.json").read_text())["lr"] == 5e-4


def test_recipe_training_options_reach_every_aae_config():
    from genae.experiments.aae import _config

    changed = dict(input_noise=0.3, dropout=0.2, precision="bf16", lr=1e-3, discriminator_noise=0.3)
    for options in (AAEOptions(), AAESemiOptions()):
        config = _config(with_aae(dataclasses.replace(options, seed=7), **changed), mode="semisupervised")
        assert type(config) is AAEConfig   # the model's own class, not the command line's view of it
        assert {k: getattr(config, k) for k in changed} == changed
        assert (config.mode, config.seed) == ("semisupervised", 7)
    source = _config(RECIPES["aae-semisupervised"].defaults("source"))   # the source's: no noise, 2e-4, fp32
    assert (source.input_noise, source.lr, source.discriminator_noise) == (0.0, 2e-4, 0.0)
    assert (source.lr_schedule, source.precision, source.dim_z) == ("constant", "fp32", 10)
    ours = _config(AAESemiOptions())   # the README's row: 1e-3, cosine, bf16
    assert (ours.lr, ours.lr_schedule, ours.precision, ours.dim_z) == (1e-3, "cosine", "bf16", 10)
