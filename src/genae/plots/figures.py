"""The figures `genae plot DIR KIND` makes from a trained run (into DIR/figures/)."""

from __future__ import annotations

from pathlib import Path

import torch

from genae.errors import UserError
from genae.models.base import encoded_means
from genae.plots.grids import save_grid, save_panels
from genae.plots.latent import save_latent
from genae.rundir import RunDir, load_model, read_record

KINDS = ("reconstruction", "samples", "latent")
NEEDS = {"reconstruction": "encodes", "samples": "samples", "latent": "encodes"}


def test_images(run_dir: Path, n: int, device: str, split: str = "test"):
    """The first n images of a split of the run's data source."""
    _, _, data = read_record(run_dir)
    part = data.load().split(split)
    return part.x[:n].to(device), part.y[:n].to(device)


@torch.no_grad()
def reconstruction(run_dir: Path, *, n: int = 100, ncol: int = 10, device: str = "cpu", model=None) -> Path:
    """Test inputs beside the model's reconstructions (decoder mean at the encoder mean)."""
    model = model if model is not None else load_model(run_dir, device)
    x, y = test_images(run_dir, n, device)
    panels = {"input (test set)": x, f"{model.name.upper()} reconstruction": model.reconstruct(x, y)}
    return save_panels(RunDir(run_dir).figures / "reconstruction.png", panels, ncol,
                       f"{model.name.upper()} reconstruction, dim_z={model.config.dim_z}")


@torch.no_grad()
def samples(run_dir: Path, *, n: int = 100, ncol: int = 10, device: str = "cpu", seed: int = 0,
            std: float = 1.0, model=None) -> Path:
    """Decoded z ~ N(0, std²·I) (std 1: the prior); for a conditional model one row per label 0..9."""
    model = model if model is not None else load_model(run_dir, device)
    torch.manual_seed(seed)
    path = RunDir(run_dir).figures / ("samples.png" if std == 1 else f"samples_std{std:g}.png")
    source = "p(z)" if std == 1 else f"N(0, {std:g}²·I)"
    title = f"{model.name.upper()} samples, z from {source}, dim_z={model.config.dim_z}"
    if model.capabilities.conditional:
        y = torch.arange(10, device=device).repeat_interleave(ncol)
        return save_grid(path, model.sample(len(y), y, std=std), ncol, title + " (row = label)",
                         row_labels=[str(i) for i in range(10)])
    return save_grid(path, model.sample(n, std=std), ncol, title)


@torch.no_grad()
def latent(run_dir: Path, *, n: int = 3000, split: str = "test", device: str = "cpu", seed: int = 0, model=None) -> Path:
    """Encoder means of the first n images of a split, coloured by label (t-SNE when dim_z > 2)."""
    model = model if model is not None else load_model(run_dir, device)
    x, y = test_images(run_dir, n, device, split)
    z = encoded_means(model, x, y)
    return save_latent(RunDir(run_dir).figures / f"latent_{split}.png", z, y,
                       f"{model.name.upper()}: encoder means of {len(x)} {split} images", seed=seed)


def plot(run_dir: Path, kind: str, device: str = "cpu", **options) -> Path:
    """One figure family; options go to its function (n, std, split, seed …)."""
    if kind not in KINDS:
        raise UserError(f"unknown figure kind {kind!r}; choose one of {KINDS}")
    model = load_model(run_dir, device)
    model.capabilities.require(NEEDS[kind], model.name)
    return {"reconstruction": reconstruction, "samples": samples, "latent": latent}[kind](
        Path(run_dir), device=device, model=model, **options)
