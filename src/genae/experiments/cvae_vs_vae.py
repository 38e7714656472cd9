"""CVAE vs VAE on MNIST: the TensorFlow MNIST CVAE project's figures (after Kingma et al. 2014's M2
with every label observed).

    genae run reproduce        # inputs | CVAE | VAE reconstructions after epoch 1 and epoch 20
    genae run denoising        # salt-and-pepper in, clean target; BCE and PSNR at 3 noise rates
    genae run manifold         # decoded z-grid per label, and the encoded test set per model
    genae run analogy-random   # rows of random z, columns the ten labels
    genae run analogy-image    # a test image's z decoded with each of the ten labels

Models: encoder and decoder MLPs of two hidden layers of 500, Bernoulli likelihood on grey-level
pixels (BCE with logits), Adam 1e-3, batch 128, 20 epochs, z of 2: the source's settings, in
--vae.* (one config for both models; the CVAE also gets the label). The reproduce, manifold and
analogy recipes share one CVAE and one VAE (trained once, then reused).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from genae.data.transforms import salt_and_pepper
from genae.errors import UserError
from genae.experiments.common import RecipeOptions, RecipeResult, Report, model_options, recipe_start, train
from genae.models.base import encoded_means
from genae.models.vae import VAEConfig
from genae.plots.grids import save_grid, save_panels
from genae.plots.latent import save_scatter
from genae.plots.manifold import latent_grid, manifold_images
from genae.rundir import load_model as load
from genae.train.engine import evaluate

LABELS = list(range(10))
BCE_CLAMP = 1e-3  # predictions and noisy inputs are clamped to [ε, 1−ε] so a hard 0/1 pixel has finite BCE


@dataclass
class PairOptions(RecipeOptions):
    vae: VAEConfig = model_options(VAEConfig, "seed", "noise", "snapshots", dim_z=2)
    """The VAE and the CVAE (the source's: 784-500-500-2, Adam 1e-3, 20 epochs)."""
    n_img_x: int = 10
    """Images along x in each grid."""
    n_img_y: int = 10
    """Images along y in each grid (rows of the analogy figures)."""
    resize_factor: float = 1.0
    """Scale of the displayed figures."""
    z_range: float = 2.0
    """The manifold covers z in [-z_range, z_range]²; random analogy z are uniform in that range."""
    n_samples: int = 5000
    """Encoded test images in the latent scatter plots."""


@dataclass
class DenoisingOptions(PairOptions):
    rates: tuple[float, ...] = (0.1, 0.3, 0.5)
    """Salt-and-pepper rates: one CVAE and one VAE trained per rate, tested at that rate."""


def model_config(opts: PairOptions, noise: float = 0.0) -> VAEConfig:
    return dataclasses.replace(opts.vae, seed=opts.seed, noise=noise, snapshots=tuple(sorted({1, opts.vae.epochs})))


def _pair(opts: PairOptions, names=("cvae", "vae"), noise: float = 0.0) -> dict[str, Path]:
    tag = f"z{opts.vae.dim_z}" + (f"-noise{noise:g}" if noise else "")
    return {name: train(opts, name, model_config(opts, noise), tag=tag) for name in names}


# ---------------------------------------------------------------------------------------- recipes
def reproduce(opts: PairOptions) -> RecipeResult:
    """Test inputs beside CVAE and VAE reconstructions after epoch 1 and the last epoch."""
    device, rep, data = recipe_start(opts, "reproduce",
                                     f"Reproduce: CVAE vs VAE reconstructions, dim_z = {opts.vae.dim_z}")
    runs = _pair(opts)
    test = data.test
    n = opts.n_img_x * opts.n_img_y
    x, y = test.x[:n].to(device), test.y[:n].to(device)
    rows, arrays = [], {}
    for epoch in sorted({1, opts.vae.epochs}):
        panels = {"input (test set)": x}
        for name, run in runs.items():
            model = load(run, device, epoch=epoch)
            panels[name.upper()] = arrays[f"{name}_epoch{epoch}"] = model.reconstruct(x, y)
            terms = evaluate(model, test, torch.device(device))
            rep.numbers[f"{name}_epoch{epoch}"] = terms
            rows.append([name.upper(), epoch, terms["rec"], terms["kl"], terms["elbo"]])
        rep.figure(save_panels(rep.figure_dir / f"reproduce_epoch{epoch}.png", panels, opts.n_img_x,
                               f"Epoch {epoch}: test images and reconstructions (decoder mean at the encoder "
                               f"mean), dim_z = {opts.vae.dim_z}", scale=opts.resize_factor),
                   f"Epoch {epoch}: input | CVAE | VAE")
    rep.table(["model", "epoch", "test reconstruction BCE (nats / image)", "test KL (nats)", "test ELBO (nats)"],
              rows, "Test set, Bernoulli likelihood on grey-level pixels (BCE with logits), one z sample "
                    "per image. The source claims the CVAE reconstructs better: it is told the label.")
    return RecipeResult(rep.write(runs), rep.numbers, arrays)


@torch.no_grad()
def denoising_scores(clean: torch.Tensor, restored: torch.Tensor) -> dict[str, float]:
    """Per-pixel BCE of `restored` (clamped to [ε, 1−ε]) against `clean`, and mean per-image PSNR (dB)."""
    bce = F.binary_cross_entropy(restored.clamp(BCE_CLAMP, 1 - BCE_CLAMP), clean).item()
    mse = ((restored - clean) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return {"bce_per_pixel": bce, "psnr_db": (10 * torch.log10(1 / mse)).mean().item()}


@torch.no_grad()
def _restore(model, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    return torch.cat([model.reconstruct(x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)])


def denoising(opts: DenoisingOptions) -> RecipeResult:
    """Train with salt-and-pepper inputs and clean targets; score restored test images per rate."""
    device, rep, data = recipe_start(opts, "denoising",
                                     f"Denoising: salt-and-pepper in, clean digit out, dim_z = {opts.vae.dim_z}")
    test = data.test
    x, y = test.x.to(device), test.y.to(device)
    n = opts.n_img_x * opts.n_img_y
    rows, runs, arrays = [], {}, {}
    for rate in opts.rates:
        pair = _pair(opts, noise=rate)
        runs.update({f"{name} (noise {rate:g})": run for name, run in pair.items()})
        noisy = salt_and_pepper(x, rate, torch.Generator(device=device).manual_seed(opts.seed))
        scores = {"noisy input": denoising_scores(x, noisy)}
        panels = {"original": x[:n], f"input with noise (rate {rate:g})": noisy[:n]}
        for name, run in pair.items():
            restored = _restore(load(run, device), noisy, y)
            scores[name] = denoising_scores(x, restored)
            panels[f"restored via {name.upper()}"] = arrays[f"{name}_rate{rate:g}"] = restored[:n]
        rep.numbers[f"rate={rate:g}"] = scores
        rows.append([f"{rate:g}"] + [scores[k]["bce_per_pixel"] for k in ("noisy input", "cvae", "vae")]
                    + [scores[k]["psnr_db"] for k in ("noisy input", "cvae", "vae")])
        rep.figure(save_panels(rep.figure_dir / f"denoising_rate{rate:g}.png", panels, opts.n_img_x,
                               f"Salt-and-pepper rate {rate:g}: original | noisy input | restored by CVAE | "
                               f"restored by VAE", scale=opts.resize_factor),
                   f"Noise rate {rate:g}")
    rep.table(["noise rate", "BCE noisy input", "BCE CVAE", "BCE VAE", "PSNR noisy (dB)", "PSNR CVAE (dB)",
               "PSNR VAE (dB)"], rows,
              f"Test set ({len(x)} images), per-pixel BCE against the clean image (lower is better; images "
              f"clamped to [{BCE_CLAMP:g}, 1−{BCE_CLAMP:g}] so a flipped pixel costs ln {1 / BCE_CLAMP:g}) and "
              "mean per-image PSNR (higher is better). Each model is trained and tested at the same rate.")
    return RecipeResult(rep.write(runs), rep.numbers, arrays)


def manifold(opts: PairOptions) -> RecipeResult:
    """Decoded z-grid over [-r, r]² for each label (CVAE) and once for the VAE; encoded test sets."""
    if opts.vae.dim_z != 2:  # before any training
        raise UserError(f"--vae.dim-z {opts.vae.dim_z}: the learned manifold and the latent scatter need --vae.dim-z 2")
    device, rep, data = recipe_start(opts, "manifold",
                                     "Learned MNIST manifold with a 2-D z (Kingma et al. Fig. 1a)")
    runs = _pair(opts)
    z = latent_grid(opts.n_img_x, opts.n_img_y, opts.z_range)
    cols = [f"{v:.1f}" for v in z[:opts.n_img_x, 0].tolist()]
    rows = [f"{v:.1f}" for v in z[::opts.n_img_x, 1].tolist()]
    cvae, vae = load(runs["cvae"], device), load(runs["vae"], device)
    arrays = {}
    for label in LABELS:
        images = arrays[f"cvae_label{label}"] = manifold_images(
            cvae, n_x=opts.n_img_x, n_y=opts.n_img_y, z_range=opts.z_range, label=label)
        rep.figure(save_grid(rep.figure_dir / f"manifold_cvae_label{label}.png", images, opts.n_img_x,
                             f"CVAE: learned manifold with the condition label {label}; columns z₁, rows z₂",
                             col_labels=cols, row_labels=rows, scale=opts.resize_factor),
                   f"CVAE manifold, label {label}")
    arrays["vae"] = manifold_images(vae, n_x=opts.n_img_x, n_y=opts.n_img_y, z_range=opts.z_range)
    rep.figure(save_grid(rep.figure_dir / "manifold_vae.png", arrays["vae"], opts.n_img_x,
                         "VAE (no label): learned manifold; columns z₁, rows z₂", col_labels=cols,
                         row_labels=rows, scale=opts.resize_factor), "VAE manifold: style and digit mixed")
    test = data.test
    n = min(opts.n_samples, len(test))
    x, y = test.x[:n].to(device), test.y[:n].to(device)
    inside = {}
    for name, model in (("cvae", cvae), ("vae", vae)):
        means = arrays[f"codes_{name}"] = encoded_means(model, x, y)
        inside[name] = (means.abs() <= opts.z_range).all(1).float().mean().item()
        what = "q(z|x,y): style only, digits overlap" if name == "cvae" else "q(z|x): digits form clusters"
        rep.figure(save_scatter(rep.figure_dir / f"latent_{name}.png", means, y,
                                f"{name.upper()}: encoder means of {n} test images, {what}", box=opts.z_range),
                   f"{name.upper()} latent space (dashed: the manifold's square)")
    rep.numbers["share_of_test_codes_inside_square"] = inside
    rep.table(["model", f"test codes inside [-{opts.z_range:g}, {opts.z_range:g}]²"],
              [[k.upper(), v] for k, v in inside.items()], "How much of the encoded test set the grids cover.")
    return RecipeResult(rep.write(runs), rep.numbers, arrays)


def analogy_random(opts: PairOptions) -> RecipeResult:
    """Rows of random z (uniform in [-r, r]^d), columns the ten labels: one style, every digit."""
    device, rep, _ = recipe_start(opts, "analogy-random",
                                  "Analogical reasoning with random z (Kingma et al. Fig. 1b)")
    runs = _pair(opts, names=("cvae",))
    model = load(runs["cvae"], device)
    g = torch.Generator().manual_seed(opts.seed)
    z = ((torch.rand(opts.n_img_y, opts.vae.dim_z, generator=g) * 2 - 1) * opts.z_range).to(device)
    grid = model.decode(z.repeat_interleave(len(LABELS), 0),
                        torch.tensor(LABELS, device=device).repeat(opts.n_img_y)).mean
    rep.figure(save_grid(rep.figure_dir / "analogy_random.png", grid, len(LABELS),
                         f"CVAE: each row one random z (uniform in [-{opts.z_range:g}, {opts.z_range:g}]^{opts.vae.dim_z}),"
                         " each column one label", col_labels=[str(c) for c in LABELS],
                         row_labels=[f"z{i + 1}" for i in range(opts.n_img_y)], scale=opts.resize_factor),
               "Same z along a row, same label down a column")
    grid = grid.view(opts.n_img_y, len(LABELS), *grid.shape[1:])
    rep.numbers["mean_abs_difference_between_labels"] = _column_difference(grid)
    rep.numbers["mean_abs_difference_between_rows"] = _column_difference(grid.transpose(0, 1))
    rep.text("The label changes the digit (a large difference between columns); z keeps the style along a row.")
    _judge_columns(rep, grid)
    return RecipeResult(rep.write(runs), rep.numbers, {"grid": grid})


def analogy_image(opts: PairOptions) -> RecipeResult:
    """Encode test images with their labels, decode each one's z with every label."""
    device, rep, data = recipe_start(opts, "analogy-image",
                                     "Analogical reasoning with a given image (the CVAE source's figure; its code was missing)")
    runs = _pair(opts, names=("cvae",))
    model = load(runs["cvae"], device)
    test = data.test
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(opts.seed))[:opts.n_img_y]
    x, y = test.x[pick].to(device), test.y[pick].to(device)
    with torch.no_grad():
        z = model.encode(x, y).mean
        generated = model.decode(z.repeat_interleave(len(LABELS), 0),
                                 torch.tensor(LABELS, device=device).repeat(len(x))).mean
    generated = generated.view(len(x), len(LABELS), *x.shape[1:])
    images = torch.cat([x.unsqueeze(1), generated], dim=1).flatten(0, 1)
    rep.figure(save_grid(rep.figure_dir / "analogy_image.png", images, len(LABELS) + 1,
                         "CVAE: a test image (left), its z = mean of q(z|x,y) decoded with each label",
                         col_labels=["input"] + [str(c) for c in LABELS],
                         row_labels=[f"#{i}" for i in pick.tolist()], scale=opts.resize_factor),
               "Input | the same style written as 0 … 9")
    own = generated[torch.arange(len(x)), y.cpu()]
    rep.numbers["own_label_reconstruction_bce_per_pixel"] = F.binary_cross_entropy(
        own.clamp(BCE_CLAMP, 1 - BCE_CLAMP), x).item()
    rep.numbers["mean_abs_difference_between_labels"] = _column_difference(generated)
    rep.numbers["test_indices"] = pick.tolist()
    _judge_columns(rep, generated)
    return RecipeResult(rep.write(runs), rep.numbers, {"inputs": x, "generated": generated})


@torch.no_grad()
def _judge_columns(rep: Report, grid: torch.Tensor) -> None:
    """With a cached reference judge: how often column k's images (label k) are classified as k."""
    from genae.evaluate.judge import judge_dir, load_judge

    if not (judge_dir() / "judge.json").is_file():
        rep.text("Judge accuracy per column: not scored (no cached judge; run `genae judge train`).")
        return
    judge = load_judge(device=str(grid.device))
    rows, cols = grid.shape[:2]
    predicted = judge.predict(grid.flatten(0, 1)).view(rows, cols)
    per_column = (predicted == torch.arange(cols, device=grid.device)).float().mean(0)
    rep.numbers["judge_accuracy_per_column"] = [round(v, 4) for v in per_column.tolist()]
    rep.numbers["judge_accuracy"] = per_column.mean().item()
    rep.table(["column (label)", *map(str, range(cols)), "all"],
              [["judge accuracy", *[f"{100 * v:.0f}%" for v in per_column.tolist()], f"{100 * per_column.mean():.1f}%"]],
              f"The reference judge ({100 * judge.record['test_accuracy']:.2f}% test accuracy) classifies each "
              f"generated image; a column's accuracy is the fraction of its {rows} images read as its label.")


def _column_difference(grid: torch.Tensor) -> float:
    """Mean absolute pixel difference between neighbouring columns of a rows × columns × image grid."""
    return (grid[:, 1:] - grid[:, :-1]).abs().mean().item()
