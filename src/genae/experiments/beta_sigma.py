"""The β-VAE and σ experiments of the TensorFlow (C)VAE concepts project: the weight β of the KL term,
and how the encoder's σ is parametrised.

    genae run beta     # β = 0, 12/28, 1, 12, 200: latent space, reconstructions, samples, test rec/KL
    genae run sigma    # σ = exp(½·logvar) vs softplus(ρ) at high learning rates: divergences, ELBO

Loss convention (DESIGN.md): the reconstruction term is summed over all 784 pixels and the KL over
all latent dimensions, both averaged over the batch, so β means the same for every architecture.
The source's convolutional model summed its reconstruction over one image axis only, a 28× smaller
term, which rescales its β by ~1/28: its "compromise" β = 12 is β ≈ 0.43 here, listed as 12/28.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from genae.errors import UserError  # noqa: E402
from genae.experiments.common import RecipeOptions, RecipeResult, as_config, model_options, recipe_start, train  # noqa: E402
from genae.files import write_text  # noqa: E402
from genae.models.base import encoded_means  # noqa: E402
from genae.models.vae import VAEConfig  # noqa: E402
from genae.plots.grids import save_figure  # noqa: E402
from genae.plots.sweep import SweepRow, save_sweep  # noqa: E402
from genae.rundir import load_model as load  # noqa: E402
from genae.rundir import read_metrics, run_dir_for  # noqa: E402
from genae.train.engine import TrainingDiverged, evaluate  # noqa: E402

DIVERGED_FILE = "diverged.txt"


@dataclass
class BetaOptions(RecipeOptions):
    betas: tuple[float, ...] = (0.0, 12 / 28, 1.0, 12.0, 200.0)
    """KL weights: 0, the source's 12 in its row-sum convention (12/28), 1 (the ELBO), 12, 200."""
    model: Literal["vae", "cvae"] = "vae"
    """Model (the source's β figures show the plain VAE's 2-D latent space)."""
    vae: VAEConfig = model_options(VAEConfig, "seed", "beta", "dim_z", epochs=15)
    """The model's training; β and z (2-D) are the recipe's (the source trains at most 15 epochs)."""
    n_images: int = 5000
    """Test images in each latent-space scatter."""


@dataclass
class SigmaOptions(RecipeOptions):
    lrs: tuple[float, ...] = (0.01, 0.03)
    """High Adam learning rates to stress both parametrisations."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds: each (σ, lr) pair is trained once per seed, with the same seeds for both σ."""
    vae: VAEConfig = model_options(VAEConfig, "seed", "sigma", "lr", epochs=5)
    """The VAE (784-500-500-20); σ and the learning rate are the recipe's."""


# ------------------------------------------------------------------------------------------ beta
def beta_label(beta: float) -> str:
    return "β = 12/28" if abs(beta - 12 / 28) < 1e-9 else f"β = {beta:g}"


def beta(opts: BetaOptions) -> RecipeResult:
    """One run per β; for each: encoder means, reconstructions, samples, and test rec / KL."""
    if any(not b >= 0 for b in opts.betas):
        raise UserError(f"--betas {opts.betas}: β must be >= 0")
    device, rep, data = recipe_start(opts, "beta",
                                     f"β-VAE: the weight of the KL term ({opts.model.upper()}, dim_z = 2)")
    test = data.test
    n = min(opts.n_images, len(test))
    x, y = test.x.to(device), test.y.to(device)
    runs, rows, sweep, arrays = {}, [], [], {}
    for b in opts.betas:
        config = as_config(opts.vae, dim_z=2, beta=b, seed=opts.seed)
        key = beta_label(b)
        run = runs[key] = train(opts, opts.model, config, tag=f"beta{b:.4g}")
        model = load(run, device)
        terms = evaluate(model, test, torch.device(device))
        rep.numbers[key] = {"beta": b, **terms}
        rows.append([key, terms["rec"], terms["kl"], terms["elbo"], terms["loss"]])
        torch.manual_seed(opts.seed)
        z = encoded_means(model, x[:n], y[:n])
        samples = model.sample(36, torch.arange(36, device=device) % 10 if model.capabilities.conditional else None)
        recon = model.reconstruct(x[:36], y[:36])
        arrays[key] = {"z": z, "samples": samples, "reconstructions": recon}
        sweep.append(SweepRow(key, z, y[:n], recon, samples))
    rep.table(["β", "test reconstruction (nats / image)", "test KL (nats)", "test ELBO (β = 1)", "test loss (rec + β·KL)"],
              rows, "Test set, Bernoulli likelihood on grey-level pixels (BCE with logits), one z sample per "
                    "image; reconstruction summed over the 784 pixels, KL over the 2 latent dimensions. "
                    "The source: β = 0 reconstructs well but generates badly; a huge β makes every q(z|x) the "
                    "prior (KL → 0) so nothing is reconstructed; in between, clusters and dense packing.")
    rep.figure(save_sweep(rep.figure_dir / "beta.png", sweep,
                          f"{opts.model.upper()} with a 2-D z trained with each β, {opts.vae.epochs} epochs: where the "
                          "encoder puts the test set, reconstructions of test images, and samples from the prior"),
               "One row per β: encoder means | reconstructions | samples")
    return RecipeResult(rep.write(runs), rep.numbers, arrays)


# ----------------------------------------------------------------------------------------- sigma
def _train_or_diverge(opts: SigmaOptions, config: VAEConfig, tag: str) -> tuple[Path, str | None]:
    """The run and, if it diverged, the engine's message (remembered in diverged.txt, so a rerun skips it)."""
    run = run_dir_for(opts.out, "vae", config, opts.data, tag)
    marker = run / DIVERGED_FILE
    if marker.is_file():
        return run, marker.read_text().strip()
    try:
        return train(opts, "vae", config, tag=tag), None
    except TrainingDiverged as err:
        run.mkdir(parents=True, exist_ok=True)
        write_text(marker, f"{err}\n")
        return run, str(err)


def sigma(opts: SigmaOptions) -> RecipeResult:
    """Both σ parametrisations at each learning rate and seed: divergences and final ELBO."""
    device, rep, data = recipe_start(opts, "sigma",
                                     "The encoder's σ: exp(½·logvar) vs softplus(ρ) at high learning rates")
    test = data.test
    runs, rows, curves = {}, [], {}
    for lr in opts.lrs:
        for sig in ("exp", "softplus"):
            elbos, diverged = [], []
            for seed in opts.seeds:
                config = as_config(opts.vae, sigma=sig, lr=lr, seed=seed)
                key = f"{sig}-lr{lr:g}-seed{seed}"
                run, failure = _train_or_diverge(opts, config, f"sigma-{sig}-lr{lr:g}")
                runs[key] = run
                history = read_metrics(run) if (run / "metrics.jsonl").is_file() else []
                curves[(lr, sig, seed)] = ([h["valid"]["loss"] for h in history], failure is not None)
                if failure is None:
                    terms = evaluate(load(run, device), test, torch.device(device))
                    elbos.append(terms["elbo"])
                    rep.numbers[key] = {"status": "finished", "test_elbo": terms["elbo"]}
                else:
                    diverged.append(seed)
                    rep.numbers[key] = {"status": "diverged", "after_epochs": len(history), "message": failure}
            mean = statistics.mean(elbos) if elbos else float("nan")
            spread = statistics.stdev(elbos) if len(elbos) > 1 else 0.0
            rows.append([f"{lr:g}", sig, f"{len(diverged)} / {len(opts.seeds)}",
                         ", ".join(map(str, diverged)) or "—",
                         f"{mean:.2f} ± {spread:.2f}" if elbos else "—"])
    rep.table(["learning rate", "σ", "runs that diverged (NaN/inf loss)", "their seeds", "test ELBO of the others (mean ± sd)"],
              rows, f"VAE 784-500-500-{opts.vae.dim_z}, Adam, batch {opts.vae.batch_size}, {opts.vae.epochs} epochs, seeds {list(opts.seeds)} "
                    "for both parametrisations. A run diverges when the engine meets a non-finite loss (it stops "
                    "and keeps the last good checkpoint). Test ELBO on grey-level pixels (BCE with logits).")
    rep.figure(_sigma_figure(rep.figure_dir / "sigma.png", curves, opts), "Validation loss per epoch; × = diverged")
    return RecipeResult(rep.write(runs), rep.numbers, {})


def _sigma_figure(path: Path, curves: dict, opts: SigmaOptions) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(opts.lrs), figsize=(4.6 * len(opts.lrs), 3.6), squeeze=False)
    colours = {"exp": "tab:red", "softplus": "tab:blue"}
    for ax, lr in zip(axes[0], opts.lrs):
        finite = [v for (l, _, _), (losses, _) in curves.items() if l == lr for v in losses]
        top = max(finite) if finite else 1.0
        for (l, sig, seed), (losses, failed) in curves.items():
            if l != lr:
                continue
            label = sig if seed == opts.seeds[0] else None
            ax.plot(range(1, len(losses) + 1), losses, color=colours[sig], marker="o", ms=3, lw=1, label=label)
            if failed:
                ax.plot([len(losses) + 1], [top], marker="x", ms=10, mew=2, color=colours[sig], ls="none")
        ax.set_title(f"learning rate {lr:g}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation loss (−ELBO, nats)")
        ax.set_xlim(0.5, opts.vae.epochs + 0.5)
        ax.legend(fontsize=8)
    fig.suptitle(f"σ = exp(½·logvar) vs softplus(ρ), seeds {list(opts.seeds)}; × = a run that met a NaN/inf "
                 "loss in the epoch after its last point", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return path
