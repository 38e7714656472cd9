"""Where the encoder puts the test set: a scatter of encoder means coloured by label."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


@torch.no_grad()
def encoded_means(model, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Means of q(z | x[, y]) for a set of images, in batches."""
    cond = getattr(model, "conditional", False)
    return torch.cat([model.encode(x[i:i + batch], y[i:i + batch] if cond else None).mean
                      for i in range(0, len(x), batch)])


def save_scatter(path: Path, z: torch.Tensor, labels: torch.Tensor, title: str, *,
                 box: float | None = None, axis_names: tuple[str, str] = ("z₁", "z₂")) -> Path:
    """2-D points coloured by digit, with a legend; `box` outlines [-box, box]² (the manifold's range)."""
    z, labels = z.detach().cpu().numpy(), labels.cpu().numpy()
    if z.shape[1] != 2:
        raise ValueError(f"a scatter needs 2-D points, got {z.shape[1]}-D (use t-SNE for more)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    cmap = plt.get_cmap("tab10")
    for digit in range(10):
        pick = labels == digit
        ax.scatter(z[pick, 0], z[pick, 1], s=3, color=cmap(digit), label=str(digit), alpha=0.7, linewidths=0)
    if box is not None:
        ax.add_patch(plt.Rectangle((-box, -box), 2 * box, 2 * box, fill=False, ls="--", lw=0.8, color="k"))
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.legend(title="label", markerscale=4, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    ax.set_title(textwrap.fill(title, 60), fontsize=10)
    lim = np.percentile(np.abs(z), 99.5) * 1.1
    if box is not None:
        lim = max(lim, box * 1.05)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
