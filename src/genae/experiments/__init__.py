"""Recipes: one per figure or table of the source documents, run by `genae run NAME`.

    genae run --list
    genae run manifold --epochs 20
    from genae.experiments import RECIPES; RECIPES["manifold"].run(RECIPES["manifold"].options())
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from genae.experiments import seed000, seed001, seed002, seed003, semisupervised, sohn


@dataclass(frozen=True)
class Recipe:
    options: type
    run: Callable
    summary: str
    source: str


RECIPES: dict[str, Recipe] = {
    "reproduce": Recipe(seed000.Seed000Options, seed000.reproduce,
                        "inputs | CVAE | VAE reconstructions after epoch 1 and the last epoch, with test BCE and ELBO",
                        "seed 000"),
    "denoising": Recipe(seed000.DenoisingOptions, seed000.denoising,
                        "salt-and-pepper input, clean target: restored images, BCE and PSNR per noise rate",
                        "seed 000"),
    "manifold": Recipe(seed000.Seed000Options, seed000.manifold,
                       "decoded 2-D z-grid per label (CVAE) and for the VAE, scatter of the encoded test set",
                       "seed 000"),
    "analogy-random": Recipe(seed000.Seed000Options, seed000.analogy_random,
                             "rows of random z, columns the ten labels", "seed 000"),
    "analogy-image": Recipe(seed000.Seed000Options, seed000.analogy_image,
                            "a test image's z decoded with each of the ten labels", "seed 000"),
    "beta": Recipe(seed001.BetaOptions, seed001.beta,
                   "β = 0 … 200: 2-D latent space, reconstructions, samples, test reconstruction and KL", "seed 001"),
    "sigma": Recipe(seed001.SigmaOptions, seed001.sigma,
                    "σ = exp(½·logvar) vs softplus(ρ) at high learning rates: divergences and ELBO", "seed 001"),
    "architectures": Recipe(seed002.ArchitectureOptions, seed002.architectures,
                            "fc3 / cnn2 / cnn3 / conv × VAE / CVAE: parameters, s/epoch, NLL, judge scores, "
                            "samples at std 1 and 0.1, t-SNE", "seed 002"),
    "semisupervised": Recipe(semisupervised.SemiSupervisedOptions, semisupervised.semisupervised,
                             "M1 (+SVM), M2, M1+M2 test error with 100…3000 labels, mean ± sd over seeds",
                             "Kingma et al. 2014"),
    "aae": Recipe(seed003.AAEOptions, seed003.aae,
                  "AAE with a Gaussian or 10-Gaussian prior, labels in the regulariser, supervised style: codes, "
                  "manifolds, Parzen, judge accuracy", "seed 003"),
    "aae-semisupervised": Recipe(seed003.AAESemiOptions, seed003.aae_semisupervised,
                                 "semi-supervised AAE: test error with 100 / 1000 / all labels", "seed 003"),
    "quadrants": Recipe(sohn.QuadrantOptions, sohn.quadrants,
                        "complete digits from 1, 2, 3 quadrants: NN baseline vs Sohn's CVAE, CLL table", "seed 004"),
}


def recipe_list() -> str:
    width = max(map(len, RECIPES))
    return "\n".join(f"{name:<{width}}  {r.summary} ({r.source})" for name, r in RECIPES.items())
