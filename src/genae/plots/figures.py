"""The figures `genae plot DIR KIND` makes from a trained run (into DIR/figures/)."""

from __future__ import annotations

from pathlib import Path

import torch

from genae.data import load_mnist
from genae.models.registry import load, read_run_config
from genae.plots.grids import save_grid, save_panels
from genae.train.engine import VALIDATION_SEED

KINDS = ("reconstruction", "samples", "latent")


def test_images(run_dir: Path, n: int, device: str):
    """The first n test images of the run's data source, prepared as in training (seeded)."""
    _, config = read_run_config(run_dir)
    test = load_mnist(config.data_dir).test
    return test.x[:n].to(device), test.y[:n].to(device)


@torch.no_grad()
def reconstruction(run_dir: Path, *, n: int = 100, ncol: int = 10, device: str = "cpu") -> Path:
    """Test inputs beside the model's reconstructions (decoder mean at the encoder mean)."""
    model = load(run_dir, device)
    x, y = test_images(run_dir, n, device)
    prepared = model.prepare(x, y, torch.Generator(device=device).manual_seed(VALIDATION_SEED)).x
    shown = x if getattr(model, "m1", None) is not None else prepared   # M1+M2 prepares M1's codes
    rebuilt = model.reconstruct(prepared, y)
    panels = {"input (test set)": shown, f"{model.name.upper()} reconstruction": rebuilt}
    return save_panels(Path(run_dir) / "figures" / "reconstruction.png", panels, ncol,
                       f"{model.name.upper()} reconstruction, dim_z={model.config.dim_z}")


@torch.no_grad()
def samples(run_dir: Path, *, n: int = 100, ncol: int = 10, device: str = "cpu", seed: int = 0,
            std: float = 1.0) -> Path:
    """Decoded z ~ N(0, std²·I) (std 1: the prior); for a conditional model one row per label 0..9."""
    model = load(run_dir, device)
    torch.manual_seed(seed)
    path = Path(run_dir) / "figures" / ("samples.png" if std == 1 else f"samples_std{std:g}.png")
    source = "p(z)" if std == 1 else f"N(0, {std:g}²·I)"
    title = f"{model.name.upper()} samples, z from {source}, dim_z={model.config.dim_z}"
    if getattr(model, "conditional", False):
        y = torch.arange(10, device=device).repeat_interleave(ncol)
        return save_grid(path, model.sample(len(y), y, std=std), ncol, title + " (row = label)",
                         row_labels=[str(i) for i in range(10)])
    return save_grid(path, model.sample(n, std=std), ncol, title)


@torch.no_grad()
def latent(run_dir: Path, *, n: int = 3000, split: str = "test", device: str = "cpu", seed: int = 0) -> Path:
    """Encoder means of the first n images of a split, coloured by label (t-SNE when dim_z > 2)."""
    from genae.plots.latent import encoded_means, save_latent

    model = load(run_dir, device)
    _, config = read_run_config(run_dir)
    part = load_mnist(config.data_dir).split(split)
    x, y = part.x[:n].to(device), part.y[:n].to(device)
    x = model.prepare(x, y, torch.Generator(device=device).manual_seed(VALIDATION_SEED)).x
    z = encoded_means(model, x, y)
    return save_latent(Path(run_dir) / "figures" / f"latent_{split}.png", z, y,
                       f"{model.name.upper()}: encoder means of {len(x)} {split} images", seed=seed)


def plot(run_dir: Path, kind: str, device: str = "cpu", **options) -> Path:
    """One figure family; options go to its function (n, std, split, seed …)."""
    if kind not in KINDS:
        raise ValueError(f"unknown figure kind {kind!r}; choose one of {KINDS}")
    return {"reconstruction": reconstruction, "samples": samples, "latent": latent}[kind](
        Path(run_dir), device=device, **options)
