"""VAE and CVAE with fully connected and convolutional networks: the experiments of asahi417's
ConditionalVariationalAutoEncoder (the architectures source).

    genae run architectures    # arch × {VAE, CVAE}: parameters, s/epoch, test NLL, judge scores;
                               # samples from N(0, std²) for std 1 and 0.1 and from z = 0;
                               # t-SNE of the encoder means (VAE: label clusters, CVAE: style only)

Every run: dim_z 20, 20 epochs, Adam 1e-3, batch 128, dynamic binarization (so the NLL is a
likelihood of binary MNIST, comparable across rows). The source reports no numbers for its models;
its claim to test is that the fully connected model "behaves very well as generative model".
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import torch

from genae.data.transforms import VALIDATION_SEED
from genae.errors import UserError
from genae.evaluate import evaluate_run
from genae.experiments.common import RecipeOptions, RecipeResult, Report, as_config, model_options, recipe_start, train
from genae.files import read_json
from genae.models.base import encoded_means
from genae.models.vae import VAEConfig
from genae.nets import Architecture, count_parameters
from genae.plots.grids import save_panels
from genae.plots.latent import save_latent
from genae.rundir import EVAL_FILE, read_metrics
from genae.rundir import load_model as load


@dataclass
class ArchitectureOptions(RecipeOptions):
    archs: tuple[Architecture, ...] = ("fc3", "cnn2", "cnn3", "conv")
    """Architectures to compare (see `genae train vae --dry-run`)."""
    models: tuple[Literal["vae", "cvae"], ...] = ("vae", "cvae")
    """Models trained with each architecture."""
    vae: VAEConfig = model_options(VAEConfig, "seed", "arch", binarize="dynamic")
    """Every run's training (z 20, 20 epochs, dynamic binarization); the architecture is the recipe's."""
    iw_samples: int = 100
    """Importance samples K per test image for the NLL (IWAE bound)."""
    eval_limit: Optional[int] = None
    """Evaluate the NLL on the first N test images only (default: all 10,000)."""
    judge_samples: int = 1000
    """Generated images per label scored by the reference judge (CVAE rows; needs `genae judge train`)."""
    tsne_arch: str = "fc3"
    """Architecture whose VAE and CVAE get the t-SNE figure."""
    tsne_images: int = 3000
    """Test images in the t-SNE figure."""


def run_config(opts: ArchitectureOptions, arch: str) -> VAEConfig:
    return as_config(opts.vae, arch=arch, seed=opts.seed)


def evaluation(run: Path, opts: ArchitectureOptions, device: str) -> dict:
    """The run's eval.json when it was made with these settings, else a fresh evaluation."""
    path = run / EVAL_FILE
    if path.is_file():
        found = read_json(path)
        if found.get("iw_samples") == opts.iw_samples and found.get("n_images") == _eval_images(opts):
            return found
    return evaluate_run(run, iw_samples=opts.iw_samples, device=device, limit=_eval_images(opts),
                        progress=not opts.compute.quiet, judge="auto", judge_samples=opts.judge_samples)


def _eval_images(opts: ArchitectureOptions) -> int:
    n = opts.data.limit or 10_000
    return min(n, opts.eval_limit) if opts.eval_limit else n


def architectures(opts: ArchitectureOptions) -> RecipeResult:
    """Train every arch × model, evaluate each, draw samples and t-SNE figures, write the table."""
    if opts.tsne_arch not in opts.archs:
        raise UserError(f"--tsne-arch {opts.tsne_arch}: not among --archs {', '.join(opts.archs)}")
    device, rep, data = recipe_start(opts, "architectures",
                                     f"Architectures: VAE and CVAE, dim_z = {opts.vae.dim_z}, {opts.vae.epochs} epochs")
    runs: dict[str, Path] = {}
    rows = []
    for arch in opts.archs:
        for name in opts.models:
            run = runs[f"{name}-{arch}"] = train(opts, name, run_config(opts, arch), tag=f"{arch}-z{opts.vae.dim_z}")
            result = evaluation(run, opts, device)
            seconds = statistics.median(m["train_seconds"] for m in read_metrics(run))
            params = count_parameters(load(run, "cpu"))
            nll = result.get("conditional_nll", result.get("nll"))
            rep.numbers[f"{name}-{arch}"] = {"parameters": params, "seconds_per_epoch": round(seconds, 2),
                                             **{k: v for k, v in result.items() if not isinstance(v, dict)}}
            accuracy = result.get("conditional_accuracy")
            rows.append([arch, name.upper(), f"{params:,}", round(seconds, 1), result["elbo"], nll,
                         "—" if accuracy is None else f"{100 * accuracy:.1f}%",
                         "—" if "judge_frechet_distance" not in result else round(result["judge_frechet_distance"], 1)])
    k, n = opts.iw_samples, _eval_images(opts)
    rep.table(["arch", "model", "parameters", "s / epoch (median)", "test ELBO", f"test NLL (K={k})",
               "judge conditional accuracy", "judge Fréchet distance"], rows,
              f"Test set ({n} images, binarized once with seed {VALIDATION_SEED}); NLL = −log p(x) for the VAE and "
              f"−log p(x | y) for the CVAE, both IWAE bounds with K = {k}, in nats. Conditional accuracy: the "
              "fraction of generated images of label y that the reference judge (a CNN digit classifier, "
              f"genae judge) classifies as y, {opts.judge_samples} per label; the Fréchet distance is between the "
              "judge's features of generated and real test images — an MNIST-judge distance, not Inception FID.")
    arrays = _sample_figures(rep, runs, opts, device)
    arrays.update(_tsne_figures(rep, runs, opts, device, data.test))
    return RecipeResult(rep.write(runs), rep.numbers, arrays)


@torch.no_grad()
def _sample_figures(rep: Report, runs: dict[str, Path], opts: ArchitectureOptions, device: str) -> dict:
    """CVAE samples per arch, one row per label: z ~ N(0, I), z ~ N(0, 0.1²·I), and z = 0."""
    if "cvae" not in opts.models:
        return {}
    arrays = {}
    y = torch.arange(10, device=device).repeat_interleave(8)
    for std, tag, ncol in ((1.0, "std1", 8), (0.1, "std0.1", 8), (0.0, "mean", 1)):
        panels = {}
        for arch in opts.archs:
            torch.manual_seed(opts.seed)
            model = load(runs[f"cvae-{arch}"], device)
            labels = y[::8] if ncol == 1 else y
            panels[arch] = arrays[f"cvae-{arch}-{tag}"] = model.sample(len(labels), labels, std=std)
        what = "z = 0 (the prior's mean)" if std == 0 else f"z ~ N(0, {std:g}²·I)"
        rep.figure(save_panels(rep.figure_dir / f"cvae_samples_{tag}.png", panels, ncol,
                               f"CVAE samples per architecture, {what}; row = label", row_labels=[str(i) for i in range(10)]),
                   f"CVAE samples, {what}, one panel per architecture")
    return arrays


@torch.no_grad()
def _tsne_figures(rep: Report, runs: dict[str, Path], opts: ArchitectureOptions, device: str, test) -> dict:
    """t-SNE of the test set's encoder means for the VAE and the CVAE of one architecture."""
    n = min(opts.tsne_images, len(test))
    arrays = {}
    for name in opts.models:
        model = load(runs[f"{name}-{opts.tsne_arch}"], device)
        x, y = test.x[:n].to(device), test.y[:n].to(device)
        z = arrays[f"{name}-means"] = encoded_means(model, x, y)
        rep.figure(save_latent(rep.figure_dir / f"tsne_{name}_{opts.tsne_arch}.png", z, y,
                               f"{name.upper()} ({opts.tsne_arch}): encoder means of {n} test images", seed=opts.seed),
                   f"{name.upper()}: t-SNE of the encoder means, coloured by label — the VAE clusters by "
                   "digit; the CVAE, told the label, keeps only style in z")
    return arrays
