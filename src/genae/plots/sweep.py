"""A sweep figure: one row per setting (e.g. per β) — latent space | reconstructions | samples."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from genae.plots.grids import save_figure, tile  # noqa: E402


@dataclass
class SweepRow:
    label: str                 # e.g. "β = 12"
    z: torch.Tensor            # N×2 encoder means (or their t-SNE)
    y: torch.Tensor            # N labels
    reconstructions: torch.Tensor  # M×1×28×28 in [0, 1]
    samples: torch.Tensor          # M×1×28×28 in [0, 1]


def save_sweep(path: Path, rows: list[SweepRow], title: str, ncol: int = 6) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(rows), 3, figsize=(9.5, 3.1 * len(rows)), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for r, row in enumerate(rows):
        ax = axes[r][0]
        z, y = row.z.detach().cpu().numpy(), row.y.cpu().numpy()
        for digit in range(10):
            pick = y == digit
            ax.scatter(z[pick, 0], z[pick, 1], s=2, color=cmap(digit), label=str(digit), alpha=0.7, linewidths=0)
        lim = max(float(np.percentile(np.abs(z), 99.5)) * 1.1, 1e-3)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        ax.set_ylabel(row.label, fontsize=11)
        for a, images, name in ((axes[r][1], row.reconstructions, "test reconstructions"),
                                (axes[r][2], row.samples, "samples, z ~ p(z)")):
            a.imshow(1 - tile(images, ncol), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            a.set_xticks([])
            a.set_yticks([])
            if r == 0:
                a.set_title(name, fontsize=10)
        if r == 0:
            ax.set_title("encoder means of test images", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, title="label", markerscale=4, fontsize=7, loc="upper right")
    fig.suptitle(textwrap.fill(title, 100), fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.95, 0.98))
    save_figure(fig, path, dpi=90)
    return path
