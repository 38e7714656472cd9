"""Where the encoder puts a split: a scatter of encoder means coloured by label.

For dim_z = 2 the means are drawn as they are; for dim_z > 2 they are first embedded in 2-D by
t-SNE (scikit-learn's Barnes-Hut TSNE, perplexity 30, PCA initialisation, seeded), as seeds 001
and 002 do. t-SNE keeps neighbourhoods, not distances: cluster sizes and the gaps between clusters
mean little.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from genae.errors import UserError
from genae.plots.grids import save_figure  # noqa: E402


def _scatter(ax, z: np.ndarray, labels: np.ndarray, title: str, *, box: float | None,
             axis_names: tuple[str, str], legend_title: str, lim: float | None = None) -> None:
    cmap = plt.get_cmap("tab10")
    for digit in range(10):
        pick = labels == digit
        if pick.any():
            ax.scatter(z[pick, 0], z[pick, 1], s=3, color=cmap(digit), label=str(digit), alpha=0.7, linewidths=0)
    if box is not None:
        ax.add_patch(plt.Rectangle((-box, -box), 2 * box, 2 * box, fill=False, ls="--", lw=0.8, color="k"))
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    if legend_title:   # an empty title: one colour that means nothing, so no legend
        ax.legend(title=legend_title, markerscale=4, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    ax.set_title(textwrap.fill(title, 60), fontsize=10)
    if lim is None:
        lim = np.percentile(np.abs(z), 99.5) * 1.1
    if box is not None:
        lim = max(lim, box * 1.05)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")


def _points(z: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    z, labels = z.detach().cpu().numpy(), labels.cpu().numpy()
    if z.shape[1] != 2:
        raise UserError(f"a scatter needs 2-D points, got {z.shape[1]}-D (use t-SNE for more)")
    return z, labels


def save_scatter(path: Path, z: torch.Tensor, labels: torch.Tensor, title: str, *,
                 box: float | None = None, axis_names: tuple[str, str] = ("z₁", "z₂")) -> Path:
    """2-D points coloured by digit, with a legend; `box` outlines [-box, box]² (the manifold's range)."""
    z, labels = _points(z, labels)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    _scatter(ax, z, labels, title, box=box, axis_names=axis_names, legend_title="label")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return path


def save_scatters(path: Path, panels: list[tuple[str, torch.Tensor, torch.Tensor, str]], title: str) -> Path:
    """Several 2-D scatters side by side on the same scale (e.g. encoder codes | prior samples);
    each panel is (title, points N×2, colour index 0..9, legend title)."""
    arrays = [(name, *_points(z, c), legend) for name, z, c, legend in panels]
    lim = max(np.percentile(np.abs(z), 99.5) for _, z, _, _ in arrays) * 1.1
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(arrays), figsize=(5.2 * len(arrays), 4.6), squeeze=False)
    for ax, (name, z, c, legend) in zip(axes[0], arrays):
        _scatter(ax, z, c, name, box=None, axis_names=("z₁", "z₂"), legend_title=legend, lim=lim)
    fig.suptitle(textwrap.fill(title, int(9 * 5.2 * len(arrays) / 2)), fontsize=11)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return path


def tsne(z: torch.Tensor, *, seed: int = 0, perplexity: float = 30.0) -> torch.Tensor:
    """A 2-D t-SNE embedding of the rows of z (N×d, d > 2)."""
    from sklearn.manifold import TSNE

    points = z.detach().cpu().double().numpy()
    if len(points) <= 3 * perplexity:
        raise UserError(f"t-SNE with perplexity {perplexity:g} needs more than {3 * perplexity:.0f} points, "
                         f"got {len(points)}")
    embedded = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)
    return torch.from_numpy(embedded).float()


def save_latent(path: Path, z: torch.Tensor, labels: torch.Tensor, title: str, *, seed: int = 0) -> Path:
    """The encoder means themselves when 2-D, else their t-SNE embedding, coloured by label."""
    if z.shape[1] == 2:
        return save_scatter(path, z, labels, title)
    return save_scatter(path, tsne(z, seed=seed), labels, f"{title} (t-SNE of the {z.shape[1]}-D means)",
                        axis_names=("t-SNE 1", "t-SNE 2"))
