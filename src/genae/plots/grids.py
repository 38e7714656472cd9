"""Image grids: samples, reconstructions, side-by-side panels. Every figure has a title."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from genae.files import replacing  # noqa: E402


def save_figure(fig, path: Path, dpi: int = 100) -> Path:
    """Write a matplotlib figure to `path` whole (genae.files.replacing) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def tile(images: torch.Tensor, ncol: int, pad: int = 1) -> np.ndarray:
    """N×1×H×W in [0, 1] → one (rows·(H+pad))×(ncol·(W+pad)) array, row-major, white gaps."""
    images = images.detach().float().cpu().clamp(0, 1)
    n, _, h, w = images.shape
    nrow = -(-n // ncol)
    canvas = np.ones((nrow * (h + pad) - pad, ncol * (w + pad) - pad), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncol)
        canvas[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = images[i, 0].numpy()
    return canvas


def save_panels(path: Path, panels: dict[str, torch.Tensor], ncol: int, title: str,
                row_labels: list[str] | None = None, col_labels: list[str] | None = None,
                scale: float = 1.0) -> Path:
    """One figure of several grids side by side (e.g. Input | CVAE | VAE), each titled."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grids = {name: tile(images, ncol) for name, images in panels.items()}
    first = next(iter(grids.values()))
    width = 0.25 * ncol * len(grids) * scale + 0.6
    height = 0.25 * first.shape[0] / 29 * scale + 0.9
    fig, axes = plt.subplots(1, len(grids), figsize=(max(width, 4.5), max(height, 2)), squeeze=False)
    for ax, (name, grid) in zip(axes[0], grids.items()):
        ax.imshow(1 - grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if col_labels:
            long = max(map(len, col_labels)) > 3
            ax.set_xticks([c * 29 + 13.5 for c in range(len(col_labels))], col_labels, fontsize=7,
                          rotation=40 if long else 0, ha="right" if long else "center")
        if row_labels and ax is axes[0][0]:
            ax.set_yticks([r * 29 + 13.5 for r in range(len(row_labels))], row_labels, fontsize=7)
    fig.suptitle(textwrap.fill(title, int(max(width, 4.5) * 11)), fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return path


def save_grid(path: Path, images: torch.Tensor, ncol: int, title: str, **labels) -> Path:
    return save_panels(path, {"": images}, ncol, title, **labels)
