"""The README's rows come from recipe defaults. For the rows too long to re-run in a session, this
checks that a recipe's defaults build exactly the model configs of the runs that produced the number
(the commands of docs/results.md, written out here field by field); the short rows are re-run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from genae.experiments import RECIPES
from genae.experiments.aae import AAEOptions, AAESemiOptions, _config
from genae.experiments.common import as_config
from genae.experiments.likelihood import LikelihoodOptions
from genae.experiments.quadrants import QuadrantOptions
from genae.experiments.semisupervised import SemiSupervisedOptions, m1_config, m2_config
from genae.models.aae import AAEConfig
from genae.models.semisupervised import M2Config
from genae.models.sohn import SohnConfig, SohnCVAEConfig
from genae.models.vae import VAEConfig


def test_m2_100_labels_is_the_4_59_run():
    """docs/results.md S21: `--models m2 --beta 3 --lr 1e-3 --n-layers 2 --epochs 80 --lr-decay-epochs 20`,
    fp32, the M2 defaults otherwise (labeled batch 100, z 50, 500 units, batch weight)."""
    opts = SemiSupervisedOptions()
    for seed in (0, 1, 2):
        assert m2_config(opts, 100, seed) == M2Config(
            n_labels=100, seed=seed, epochs=80, lr=1e-3, lr_decay_epochs=20, beta=3.0, n_layers=2, labeled_batch=100,
            labeled_weight="batch", dim_z=50, n_hidden=500, precision="fp32", lr_schedule="constant", m1_run=None)


def test_m1_m2_is_the_2_27_and_2_13_run():
    """docs/results.md S40/S41: `--models m1 m1+m2 --labeled-weight bound-share --epochs 60 --lr 1e-3
    --m1-beta 0.25 --m1-arch conv --m1-epochs 30`: M1 a conv VAE, z 50, β 0.25, 30 epochs, lr 1e-3, seed 0."""
    opts = SemiSupervisedOptions()
    assert m1_config(opts) == VAEConfig(arch="conv", dim_z=50, n_hidden=500, n_layers=2, beta=0.25, epochs=30,
                                        lr=1e-3, seed=0)
    m1 = Path("runs/recipes/models/vae-m1")
    for n in (100, 1000):
        for seed in (0, 1, 2):
            assert m2_config(opts, n, seed, m1) == M2Config(
                n_labels=n, seed=seed, epochs=60, lr=1e-3, labeled_weight="bound-share", beta=1.0, n_layers=1,
                labeled_batch=100, dim_z=50, precision="fp32", m1_run=str(m1))


def test_source_setting_is_kingma_et_al():
    opts = RECIPES["semisupervised"].defaults("source")
    assert m1_config(opts) == VAEConfig(dim_z=50, n_hidden=500, n_layers=2, epochs=100, lr=1e-3, seed=0)
    assert m2_config(opts, 100, 0) == M2Config(n_labels=100, seed=0, epochs=100, lr=3e-4, labeled_batch=100)
    assert m2_config(opts, 100, 0, Path("m1")) == M2Config(n_labels=100, seed=0, epochs=100, lr=3e-4, m1_run="m1")


def test_semisupervised_aae_is_the_6_30_run():
    """docs/results.md B4: `genae run aae-semisupervised --n-labels 100 --seeds 0 1 2 --epochs 100 --lr 1e-3
    --lr-schedule cosine --precision bf16`."""
    opts = AAESemiOptions()
    assert opts.n_labels == (100,) and opts.seeds == (0, 1, 2)
    for seed in opts.seeds:
        got = as_config(opts.aae, mode="semisupervised", n_labels=100, seed=seed)
        assert got == AAEConfig(mode="semisupervised", n_labels=100, dim_z=10, epochs=100, lr=1e-3,
                                lr_schedule="cosine", precision="bf16", seed=seed)
    source = as_config(RECIPES["aae-semisupervised"].defaults("source").aae, mode="semisupervised", n_labels=100)
    assert source == AAEConfig(mode="semisupervised", n_labels=100, dim_z=10, epochs=100, lr=2e-4)


def test_aae_recipe_is_the_15_epoch_run():
    """docs/results.md A1: `genae run aae --epochs 15` with the source's lr 2e-4, constant, fp32."""
    opts = AAEOptions()
    assert _config(opts, prior="gaussian") == AAEConfig(prior="gaussian", epochs=15, lr=2e-4, seed=0)


def test_likelihood_recipe_is_the_89_57_run():
    """docs/results.md V1: `genae train vae --dim-z 50 --epochs 100 --binarize dynamic --lr-schedule cosine`
    then `genae eval` (K = 1000)."""
    opts = LikelihoodOptions()
    assert as_config(opts.vae, seed=0) == VAEConfig(dim_z=50, epochs=100, binarize="dynamic", lr_schedule="cosine")
    assert opts.iw_samples == 1000 and opts.models == ("vae",)


def test_quadrants_recipe_is_the_tutorial_setting():
    """docs/results.md Q1: baseline 784-500-500-784, patience 3, ≤ 50 epochs; CVAE z 200, generation from
    z and the given pixels; importance sampling with S = 100."""
    opts = QuadrantOptions()
    assert as_config(opts.baseline, quadrants=1) == SohnConfig(quadrants=1, n_hidden=500, n_layers=2, epochs=50,
                                                               patience=3)
    assert as_config(opts.cvae, quadrants=1, baseline="b") == SohnCVAEConfig(
        quadrants=1, dim_z=200, baseline="b", generation_input="xz", objective="cvae", epochs=50, patience=3)
    assert opts.iw_samples == 100


def test_every_recipe_builds_its_defaults_and_each_setting():
    for name, recipe in RECIPES.items():
        for setting in ("ours", *recipe.settings):
            opts = recipe.defaults(setting)
            assert dataclasses.is_dataclass(opts), name
