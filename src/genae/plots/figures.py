"""The figures `genae plot DIR KIND` makes from a trained run (into DIR/figures/)."""

from __future__ import annotations

from pathlib import Path

import torch

from genae.data import load_mnist
from genae.models.registry import load, read_run_config
from genae.plots.grids import save_grid, save_panels
from genae.train.engine import VALIDATION_SEED

KINDS = ("reconstruction", "samples")


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
    x = model.prepare(x, y, torch.Generator(device=device).manual_seed(VALIDATION_SEED)).x
    panels = {"input (test set)": x, f"{model.name.upper()} reconstruction": model.reconstruct(x, y)}
    return save_panels(Path(run_dir) / "figures" / "reconstruction.png", panels, ncol,
                       f"{model.name.upper()} reconstruction, dim_z={model.config.dim_z}")


@torch.no_grad()
def samples(run_dir: Path, *, n: int = 100, ncol: int = 10, device: str = "cpu", seed: int = 0) -> Path:
    """Samples from the prior; for a conditional model one row per label 0..9."""
    model = load(run_dir, device)
    torch.manual_seed(seed)
    path = Path(run_dir) / "figures" / "samples.png"
    title = f"{model.name.upper()} samples from p(z), dim_z={model.config.dim_z}"
    if getattr(model, "conditional", False):
        y = torch.arange(10).repeat_interleave(ncol)
        return save_grid(path, model.sample(len(y), y), ncol, title + " (row = label)",
                         row_labels=[str(i) for i in range(10)])
    return save_grid(path, model.sample(n), ncol, title)


def plot(run_dir: Path, kind: str, device: str = "cpu") -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown figure kind {kind!r}; choose one of {KINDS}")
    return {"reconstruction": reconstruction, "samples": samples}[kind](Path(run_dir), device=device)
