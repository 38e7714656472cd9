"""Adversarial autoencoders (Makhzani et al. 2015), as the TensorFlow AAE source reproduced them.

    genae run aae                  # unsupervised (Gaussian, 10-Gaussian mixture), label-guided, supervised
    genae run aae-semisupervised   # test error with 100 labels, 3 seeds
    genae run aae-semisupervised --setting source --n-labels 100 1000 0   # the source's settings

Figures: codes of the test set beside prior samples; the learned manifold (a z-grid for the
Gaussian, a row along each component's axis for the mixture); the supervised AAE's style grid
(same code per column, same label per row); samples of the semi-supervised AAE. Numbers: test
reconstruction error, Parzen-window log-likelihood (paper 340 ± 2; see genae.evaluate.parzen for
its weakness), judge conditional accuracy (when the reference judge is cached), test error.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from typing import Literal

import torch

from genae.evaluate import evaluate_run
from genae.evaluate.parzen import parzen_score
from genae.experiments.common import (
    RecipeOptions,
    RecipeResult,
    as_config,
    model_options,
    recipe_start,
    schedule_words,
    train,
)
from genae.models.aae import AAEConfig
from genae.models.base import N_CLASSES, encoded_means
from genae.models.priors import GaussianMixturePrior
from genae.plots.grids import save_grid, save_panels
from genae.plots.latent import save_scatters
from genae.plots.manifold import manifold_images
from genae.rundir import load_model as load

PAPER_PARZEN = "340 ± 2"
PAPER_ERRORS = {100: "1.90 ± 0.10", 1000: "1.60 ± 0.08", 0: "0.85 ± 0.02"}   # Makhzani et al. Table 2


@dataclass
class AAEOptions(RecipeOptions):
    aae: AAEConfig = model_options(AAEConfig, "seed", "mode", "prior", "label_prior", "n_labels", "dim_z",
                                   "snapshots", epochs=15)
    """Every AAE's training (the source trains 100 epochs); mode, prior, labels and z are the recipe's."""
    guided_labels: int = 10_000
    """Labeled images of the label-guided run (the source's 10k labeled + 40k unlabeled); a second run uses all."""
    supervised_dims: tuple[int, ...] = (2, 10)
    """Code dimensions of the supervised AAE (the source shows 2 and 10)."""
    parzen_samples: int = 10_000
    """Generated images in the Parzen window (the paper's 10k); 0 skips the Parzen estimate."""
    n_images: int = 5000
    """Test images in each code scatter."""


@dataclass
class AAESemiOptions(RecipeOptions):
    setting: Literal["ours", "source"] = "ours"
    """Defaults of the AAE: ours (the README's row: lr 1e-3, cosine, bf16) or source (2e-4, constant, fp32)."""
    n_labels: tuple[int, ...] = (100,)
    """Labeled training images per run, balanced across classes (0: every label)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds: each count of labels is trained once per seed (label subset and initialisation)."""
    aae: AAEConfig = model_options(AAEConfig, "seed", "mode", "n_labels", "label_prior", "snapshots", dim_z=10, lr=1e-3,
                                   lr_schedule="cosine", precision="bf16")
    """The semi-supervised AAE (z 10, 100 epochs); mode and labels are the recipe's."""


def source_setting() -> AAESemiOptions:
    """The source's semi-supervised AAE: Adam 2e-4, a constant rate, fp32."""
    aae = dataclasses.replace(AAESemiOptions().aae, lr=2e-4, lr_schedule="constant", precision="fp32")
    return AAESemiOptions(setting="source", aae=aae)


SETTINGS = {"source": source_setting}   # beside "ours", the options class's own defaults


def _config(opts, **changes) -> AAEConfig:
    return as_config(opts.aae, seed=opts.seed, **changes)


def style_grid(model, dim_z: int, seed: int) -> torch.Tensor:
    """Rows = labels 0..9, columns = ten codes z ~ N(0, I): the same code down each column."""
    torch.manual_seed(seed)
    z = torch.randn(N_CLASSES, dim_z, device=model.device).repeat(N_CLASSES, 1)
    y = torch.arange(N_CLASSES, device=model.device).repeat_interleave(N_CLASSES)
    with torch.no_grad():
        return model.decode(z, y).mean


def component_rows(model, n: int = 10) -> torch.Tensor:
    """Row k: codes along mixture component k's long axis (±2 stds), decoded."""
    prior: GaussianMixturePrior = model.prior
    z = torch.cat([prior.axis_points(k, n) for k in range(N_CLASSES)]).to(model.device)
    with torch.no_grad():
        return model.decode(z, torch.arange(N_CLASSES, device=model.device).repeat_interleave(n)).mean


def aae(opts: AAEOptions) -> RecipeResult:
    """Sections 1–3 of the AAE source: unsupervised, label-guided and supervised AAEs."""
    device, rep, data = recipe_start(
        opts, "aae", "Adversarial autoencoders: priors, labels in the regulariser, supervised style")
    test, valid = data.test, data.valid
    n = min(opts.n_images, len(test))
    settings = {"Gaussian prior": dict(prior="gaussian"), "mixture prior": dict(prior="gmm"),
                f"mixture + {opts.guided_labels} labels": dict(prior="gmm", label_prior=True,
                                                               n_labels=opts.guided_labels),
                "mixture + all labels": dict(prior="gmm", label_prior=True)}
    settings.update({f"supervised, z {d}": dict(mode="supervised", dim_z=d) for d in opts.supervised_dims})
    runs, rows, arrays, scatters = {}, [], {}, []
    for key, changes in settings.items():
        config = _config(opts, **changes)
        tag = key.replace(",", "").replace(" + ", "-").replace(" ", "-")
        runs[key] = train(opts, "aae", config, tag=tag)
        model = load(runs[key], device)
        numbers = evaluate_run(runs[key], device=device)   # + judge scores when cached
        if config.mode == "unsupervised" and not config.label_prior and opts.parzen_samples:
            torch.manual_seed(opts.seed)
            samples = model.sample(opts.parzen_samples)
            numbers.update(parzen_score(samples, valid.x[:1000].to(device), test.x.to(device)))
        rep.numbers[key] = numbers
        parzen = (f"{numbers['parzen_ll']:.1f} ± {numbers['parzen_se']:.1f} (σ = {numbers['parzen_sigma']:.3f})"
                  if "parzen_ll" in numbers else "—")
        accuracy = f"{100 * numbers['conditional_accuracy']:.1f}%" if "conditional_accuracy" in numbers else "—"
        rows.append([key, numbers["rec_sse"], parzen, PAPER_PARZEN if parzen != "—" else "—", accuracy])
        x, y = test.x[:n].to(device), test.y[:n].to(device)
        if config.mode == "unsupervised":
            z = encoded_means(model, x, y)
            torch.manual_seed(opts.seed)
            draws = torch.randint(N_CLASSES, (n,), device=device)
            prior_z = model.prior.sample(draws if config.prior == "gmm" else torch.full_like(draws, -1))
            scatters.append((key, z, y, prior_z, draws if config.prior == "gmm" else torch.zeros_like(draws)))
            grid = component_rows(model) if config.prior == "gmm" else manifold_images(
                model, n_x=15, n_y=15, z_range=2.5)
            arrays[key] = {"z": z, "manifold": grid}
        else:
            arrays[key] = {"style_grid": style_grid(model, config.dim_z, opts.seed)}
    rep.table(["run", "test reconstruction error (Σ squared error, pixels in [-1, 1])",
               f"Parzen log-likelihood, {opts.parzen_samples} samples (nats)", "paper's Parzen", "judge conditional accuracy"], rows,
              f"Test set, {opts.aae.epochs} epochs per run (the source trains 100), "
              f"{schedule_words(opts.aae)} learning rate from {opts.aae.lr:g}, {opts.aae.precision}. "
              "Parzen: σ chosen on 1000 validation images, "
              "mean ± standard error over the test set; a weak estimate (Theis et al. 2016), comparable only "
              "under the same protocol. Judge conditional accuracy: samples drawn for digit k (from mixture component "
              "k, or decoded with label k) that the reference judge calls k.")
    for key, z, y, prior_z, comp in scatters:
        name = key.replace(" ", "-").replace("+", "").replace("--", "-")
        rep.figure(save_scatters(rep.figure_dir / f"codes-{name}.png",
                                 [(f"encoder means of {len(z)} test images", z, y, "label"),
                                  ("samples of the prior", prior_z, comp,
                                   "component" if "mixture" in key else "")],
                                 f"AAE, {key}: where the encoder puts the test set, beside the prior"),
                   f"Codes of the test set beside samples of the prior: {key}")
        grid = arrays[key]["manifold"]
        if "mixture" in key:
            rep.figure(save_grid(rep.figure_dir / f"manifold-{name}.png", grid, 10,
                                 f"AAE, {key}: row k decodes codes along mixture component k's long axis (±2 std)",
                                 row_labels=[f"component {k}" for k in range(N_CLASSES)]),
                       f"Learned manifold per mixture component: {key}")
        else:
            rep.figure(save_grid(rep.figure_dir / f"manifold-{name}.png", grid, 15,
                                 f"AAE, {key}: decoded grid of z over [-2.5, 2.5]²"),
                       f"Learned manifold: {key}")
    panels = {key: arrays[key]["style_grid"] for key in settings if "style_grid" in arrays[key]}
    if panels:
        rep.figure(save_panels(rep.figure_dir / "supervised-style.png", panels, 10,
                               "Supervised AAE: the same code down each column, the same label along each row",
                               row_labels=[str(k) for k in range(N_CLASSES)]),
                   "Supervised AAE: style (columns) and digit (rows) disentangled")
    return RecipeResult(rep.write(runs), rep.numbers, arrays)


def aae_semisupervised(opts: AAESemiOptions) -> RecipeResult:
    """Section 4 of the AAE source: test error of the semi-supervised AAE per number of labels."""
    device, rep, data = recipe_start(opts, "aae-semisupervised",
                                     "Semi-supervised adversarial autoencoder: test error")
    runs, rows, arrays, grids = {}, [], {}, {}
    for n_labels in opts.n_labels:
        errors = []
        for seed in opts.seeds:
            config = as_config(opts.aae, mode="semisupervised", n_labels=n_labels or None, seed=seed)
            key = f"{n_labels or 'all'} labels, seed {seed}"
            runs[key] = train(opts, "aae", config, tag=f"semi-{n_labels or 'all'}")
            model = load(runs[key], device)
            numbers = evaluate_run(runs[key], device=device)
            rep.numbers[key] = numbers
            errors.append(100 * numbers["error"])
            if seed == opts.seeds[0]:
                grids[f"{n_labels or 'all'} labels"] = style_grid(model, opts.aae.dim_z, opts.seed)
        spread = f" ± {statistics.stdev(errors):.2f}" if len(errors) > 1 else ""
        rows.append([n_labels or "all (50k)", f"{statistics.mean(errors):.2f}{spread}", len(errors),
                     PAPER_ERRORS.get(n_labels, "—")])
        arrays[n_labels] = errors
    a = opts.aae
    rep.table(["labels", "test error % (mean ± sd over seeds)", "seeds", "paper (Makhzani et al. Table 2)"], rows,
              f"Error of argmax q(y|x) on the 10k test images at the best validation epoch; setting '{opts.setting}': "
              f"{a.epochs} epochs, z of {a.dim_z} dimensions, {schedule_words(a)} learning rate from {a.lr:g}, "
              f"{a.precision}, input noise std {a.input_noise}, dropout {a.dropout}, discriminator input "
              f"noise std {a.discriminator_noise}, classification every {a.classify_every} step(s) with weight "
              f"{a.w_cls}, {a.encoder_optimizer} encoder optimizer, {'deterministic' if a.deterministic else 'sampled'} z. "
              "Peers' reproductions reach about 5% with 100 labels (docs/aae.md).")
    rep.figure(save_panels(rep.figure_dir / "samples.png", grids, 10,
                           "Semi-supervised AAE: the same style code down each column, the label along each row",
                           row_labels=[str(k) for k in range(N_CLASSES)]),
               "Samples of the semi-supervised AAE (rows: labels, columns: style codes)")
    return RecipeResult(rep.write(runs), rep.numbers, arrays)
