"""Kingma et al. 2014's semi-supervised MNIST table: M1 (+ SVM or label spreading), M2 and M1+M2, 100…3000 labels.

    genae run semisupervised --models m2 --n-labels 100              # one cell: M2, 100 labels, 3 seeds
    genae run semisupervised --n-labels 100 --seeds 0 --models m2 --m2.epochs 10   # a quick look
    genae run semisupervised --setting source                        # Kingma et al.'s networks and budgets

Each cell is the test error at the best validation epoch (10k validation images with labels
choose the epoch), mean ± sd over the seeds; each seed draws its own balanced labeled subset from
the 50k training split. M1 is one VAE trained once without labels (--m1.*); its encoder means feed
an RBF SVM fitted on the labeled images, and label spreading over all training images
(genae.evaluate.classification). M2 trains on pixels (--m2.*), M1+M2 on that VAE's latent space
(--m1m2.*). The default setting ('ours') is the one behind the README's rows: M2 with two hidden
layers, β 3, 80 epochs ending in 20 of decay; a convolutional M1 with β 0.25 whose codes feed an
M1+M2 with the labeled bound at its share of the data ('bound-share'). '--setting source' gives
Kingma et al.'s: one hidden layer of 500, β 1, and an MLP M1 (docs/semisupervised.md compares them).
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from genae.data.subsets import balanced_subset
from genae.errors import UserError
from genae.evaluate import evaluate_run
from genae.evaluate.classification import encoder_features, label_spreading_error, svm_error
from genae.experiments.common import (
    RecipeOptions,
    RecipeResult,
    Report,
    as_config,
    model_options,
    recipe_start,
    schedule_words,
    train,
)
from genae.models.config import check_config
from genae.models.semisupervised import M2Config, check_m2_config
from genae.models.vae import VAEConfig
from genae.plots.grids import save_grid
from genae.rundir import load_model as load
from genae.rundir import read_metrics

PAPER = {  # Kingma et al. 2014, Table 1: test error (%) on MNIST
    "m1": {100: "11.82 ± 0.25", 600: "5.72 ± 0.05", 1000: "4.24 ± 0.07", 3000: "3.49 ± 0.04"},
    "m2": {100: "11.97 ± 1.71", 600: "4.94 ± 0.13", 1000: "3.60 ± 0.56", 3000: "3.92 ± 0.63"},
    "m1+m2": {100: "3.33 ± 0.14", 600: "2.59 ± 0.05", 1000: "2.40 ± 0.02", 3000: "2.18 ± 0.04"},
}
ROW_TITLES = {"m1": "M1 + SVM", "m1-spreading": "M1 + label spreading"}
PYRO_M2 = {100: "6.8", 3000: "4.2"}  # the Pyro ss_vae_M2 example, as quoted by the issue


SET_BY_RECIPE = ("seed", "n_labels", "m1_run", "snapshots")


@dataclass
class SemiSupervisedOptions(RecipeOptions):
    setting: Literal["ours", "source"] = "ours"
    """Defaults of the three models: ours (the README's rows) or source (Kingma et al.'s)."""
    n_labels: tuple[int, ...] = (100, 600, 1000, 3000)
    """Labeled training images (balanced, multiples of 10)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """One labeled subset and one training run per seed."""
    models: tuple[Literal["m1", "m2", "m1+m2"], ...] = ("m1", "m2", "m1+m2")
    """Which rows of the table to make."""
    m1: VAEConfig = model_options(VAEConfig, "seed", "snapshots", arch="conv", dim_z=50, beta=0.25, epochs=30)
    """M1: the VAE whose codes feed the SVM and M1+M2 (trained once, seed 0)."""
    m2: M2Config = model_options(M2Config, *SET_BY_RECIPE, n_layers=2, beta=3.0, lr=1e-3, epochs=80,
                                 lr_decay_epochs=20)
    """M2 on pixels."""
    m1m2: M2Config = model_options(M2Config, *SET_BY_RECIPE, labeled_weight="bound-share", lr=1e-3, epochs=60)
    """M2 on M1's codes (M1+M2)."""


def source_setting() -> SemiSupervisedOptions:
    """Kingma et al.'s models: an MLP M1 (784-500-500-50) for 100 epochs; M2 and M1+M2 with one hidden
    layer of 500, β 1, Adam 3e-4, 100 epochs."""
    fields = {f.name: f for f in dataclasses.fields(SemiSupervisedOptions)}
    m1, m2 = fields["m1"].default_factory(), fields["m2"].default_factory()
    m2_source = dataclasses.replace(m2, n_layers=1, beta=1.0, lr=3e-4, epochs=100, lr_decay_epochs=0)
    return SemiSupervisedOptions(setting="source", m1=dataclasses.replace(m1, arch="mlp", beta=1.0, epochs=100),
                                 m2=m2_source, m1m2=dataclasses.replace(m2_source))


SETTINGS = {"source": source_setting}   # beside "ours", the options class's own defaults


def m1_config(opts: SemiSupervisedOptions) -> VAEConfig:
    return as_config(opts.m1, seed=0)


def m2_config(opts: SemiSupervisedOptions, n: int, seed: int, m1_run: Path | None = None) -> M2Config:
    options = opts.m2 if m1_run is None else opts.m1m2
    return as_config(options, n_labels=n, seed=seed, m1_run=None if m1_run is None else str(m1_run))


def semisupervised(opts: SemiSupervisedOptions) -> RecipeResult:
    for n in opts.n_labels:
        if n < 10 or n % 10:
            raise UserError(f"--n-labels {n}: a balanced subset needs a positive multiple of 10")
    for config in (m2_config(opts, 100, opts.seed), as_config(opts.m1m2, n_labels=100)):   # before M1 trains
        check_config(config)
        check_m2_config(config)
    check_config(m1_config(opts))
    device, rep, data = recipe_start(opts, "semisupervised", "Semi-supervised MNIST: M1, M2, M1+M2 (Kingma et al. 2014)")
    runs: dict[str, Path] = {}
    errors: dict[tuple[str, int], list[float]] = {}
    m1_run = None
    if {"m1", "m1+m2"} & set(opts.models):
        m1_run = runs["m1-vae"] = train(opts, "vae", m1_config(opts), tag=f"m1-{opts.m1.arch}-z{opts.m1.dim_z}")
    if "m1" in opts.models:
        m1 = load(m1_run, device)
        train_features = encoder_features(m1, data.train.x)
        test_features = encoder_features(m1, data.test.x)
        train_labels, test_labels = data.train.y.numpy(), data.test.y.numpy()
        for n in opts.n_labels:
            for seed in opts.seeds:
                keep = balanced_subset(data.train.y, n, seed=seed).numpy()
                error = svm_error(train_features[keep], train_labels[keep], test_features, test_labels)
                visible = np.full_like(train_labels, -1)
                visible[keep] = train_labels[keep]
                spread = label_spreading_error(train_features, visible, test_features, test_labels)
                errors.setdefault(("m1", n), []).append(error)
                errors.setdefault(("m1-spreading", n), []).append(spread)
                rep.numbers[f"m1-n{n}-seed{seed}"] = {"error": error, "error_label_spreading": spread}
    for name in [m for m in opts.models if m != "m1"]:
        for n in opts.n_labels:
            for seed in opts.seeds:
                key = f"{name}-n{n}-seed{seed}"
                config = m2_config(opts, n, seed, m1_run if name == "m1+m2" else None)
                run = runs[key] = train(opts, "m2", config, tag=f"{name.replace('+', '')}-n{n}")
                result = evaluate_run(run, device=device)
                history = read_metrics(run)
                best = min(history, key=lambda h: h["valid"]["loss"])
                errors.setdefault((name, n), []).append(result["error"])
                rep.numbers[key] = {"error": result["error"], "best_epoch": best["epoch"],
                                    "valid_error": best["valid"]["error"],
                                    "train_seconds": round(sum(h["train_seconds"] for h in history), 1)}
    rows = []
    row_names = [row for name in opts.models for row in (("m1", "m1-spreading") if name == "m1" else (name,))]
    for name in row_names:
        for n in opts.n_labels:
            found = [100 * e for e in errors[(name, n)]]
            sd = statistics.stdev(found) if len(found) > 1 else 0.0
            paper = PAPER[name.split("-")[0]].get(n, "—")
            pyro = PYRO_M2.get(n, "—") if name == "m2" else "—"
            rows.append([ROW_TITLES.get(name, name.upper()), n, f"{statistics.mean(found):.2f} ± {sd:.2f}",
                         len(found), paper, pyro])
    rep.table(["model", "labels N", "test error % (mean ± sd)", "seeds", "paper (Kingma et al. 2014)", "Pyro M2"],
              rows, "Test error of argmax q(y|x) (M2, M1+M2) at the best validation epoch, or of M1's classifier, "
                    f"over seeds {list(opts.seeds)}; each seed its own balanced labeled subset of the 50k training "
                    "images. M1's classifiers (genae.evaluate.classification): an RBF SVM on the labeled codes, and "
                    "label spreading over all training codes (transductive, like the paper's TSVM). "
                    f"Setting '{opts.setting}': " + "; ".join(
                        f"{what}: {_words(config)}" for what, config in (("M2", opts.m2), ("M1+M2", opts.m1m2)))
                    + f"; M1's VAE: {opts.m1.arch}, z {opts.m1.dim_z}, {opts.m1.epochs} epochs, KL weight β = "
                    f"{opts.m1.beta}, {opts.m1.precision}.")
    arrays = {}
    m2_keys = [k for k in runs if k.startswith("m2-")]
    if m2_keys:
        arrays["analogies"] = _analogy_figure(rep, runs[m2_keys[0]], data, device, opts.seed)
    return RecipeResult(rep.write(runs), rep.numbers, arrays)


def _words(config: M2Config) -> str:
    """An M2 config in a caption's words."""
    return (f"{config.epochs} epochs, learning rate {config.lr} ({schedule_words(config)}), {config.precision}, "
            f"KL weight β = {config.beta}, labeled weight '{config.labeled_weight}', {config.n_layers} hidden "
            f"layer(s) of {config.n_hidden}, z {config.dim_z}")


@torch.no_grad()
def _analogy_figure(rep: Report, run: Path, data, device: str, seed: int) -> torch.Tensor:
    """Rows: the style z of a test image (encoded with its own label); columns: the ten labels."""
    model = load(run, device)
    torch.manual_seed(seed)
    x, y = data.test.x[:8].to(device), data.test.y[:8].to(device)
    z = model.encode(x, y).mean
    labels = torch.arange(10, device=device)
    images = torch.stack([model.decode(z, torch.full_like(y, k)).mean for k in labels], 1)  # 8×10×…
    grid = torch.cat([x[:, None], images], 1).flatten(0, 1)
    rep.figure(save_grid(rep.figure_dir / "m2_analogies.png", grid, 11,
                         f"M2 ({run.name}): a test image (first column), its style z decoded with each label",
                         col_labels=["input", *map(str, range(10))], scale=1.8),
               "M2 analogies: rows keep the style of a test image, columns change the label")
    return grid
