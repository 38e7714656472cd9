"""Recipes: one per figure or table of the source documents, run by `genae run NAME`.

    genae run --list
    genae run manifold --vae.epochs 20
    from genae.experiments import RECIPES; RECIPES["manifold"].run(RECIPES["manifold"].options())

A recipe's defaults give the README's number; a recipe whose defaults depart from its source's
settings also offers them as `--setting source`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from genae.errors import UserError
from genae.experiments import aae, architectures, beta_sigma, cvae_vs_vae, likelihood, quadrants, semisupervised

SOURCES = {   # short name → what the source document is
    "TF CVAE": "the TensorFlow MNIST CVAE project (after Kingma et al. 2014's M2 with every label)",
    "TF VAE concepts": "the TensorFlow (C)VAE concepts project: β and the encoder's σ",
    "CVAE architectures": "asahi417's ConditionalVariationalAutoEncoder: fully connected and convolutional networks",
    "Kingma et al. 2014": "Semi-Supervised Learning with Deep Generative Models, Table 1",
    "TF AAE": "a TensorFlow reproduction of Makhzani et al. 2015's adversarial autoencoders",
    "Pyro CVAE": "the Pyro tutorial of Sohn et al. 2015's CVAE",
    "Burda et al. 2016": "Importance Weighted Autoencoders: the VAE's test log-likelihood",
}


@dataclass(frozen=True)
class Recipe:
    options: type
    run: Callable
    summary: str
    source: str
    settings: dict[str, Callable] = field(default_factory=dict)
    """Named sets of defaults (`--setting NAME`); the options class's own defaults are 'ours'."""

    def defaults(self, setting: str = "ours"):
        """The recipe's options at the defaults of `setting`."""
        if setting == "ours":
            return self.options()
        if setting not in self.settings:
            raise UserError(f"--setting {setting}: choose one of {', '.join(['ours', *self.settings])}"
                            + ("" if self.settings else " (this recipe's defaults are its source's)"))
        return self.settings[setting]()


RECIPES: dict[str, Recipe] = {
    "reproduce": Recipe(cvae_vs_vae.PairOptions, cvae_vs_vae.reproduce,
                        "inputs | CVAE | VAE reconstructions after epoch 1 and the last epoch, with test BCE and ELBO",
                        "TF CVAE"),
    "denoising": Recipe(cvae_vs_vae.DenoisingOptions, cvae_vs_vae.denoising,
                        "salt-and-pepper input, clean target: restored images, BCE and PSNR per noise rate",
                        "TF CVAE"),
    "manifold": Recipe(cvae_vs_vae.PairOptions, cvae_vs_vae.manifold,
                       "decoded 2-D z-grid per label (CVAE) and for the VAE, scatter of the encoded test set",
                       "TF CVAE"),
    "analogy-random": Recipe(cvae_vs_vae.PairOptions, cvae_vs_vae.analogy_random,
                             "rows of random z, columns the ten labels", "TF CVAE"),
    "analogy-image": Recipe(cvae_vs_vae.PairOptions, cvae_vs_vae.analogy_image,
                            "a test image's z decoded with each of the ten labels", "TF CVAE"),
    "beta": Recipe(beta_sigma.BetaOptions, beta_sigma.beta,
                   "β = 0 … 200: 2-D latent space, reconstructions, samples, test reconstruction and KL",
                   "TF VAE concepts"),
    "sigma": Recipe(beta_sigma.SigmaOptions, beta_sigma.sigma,
                    "σ = exp(½·logvar) vs softplus(ρ) at high learning rates: divergences and ELBO", "TF VAE concepts"),
    "architectures": Recipe(architectures.ArchitectureOptions, architectures.architectures,
                            "fc3 / cnn2 / cnn3 / conv × VAE / CVAE: parameters, s/epoch, NLL, judge scores, "
                            "samples at std 1 and 0.1, t-SNE", "CVAE architectures"),
    "likelihood": Recipe(likelihood.LikelihoodOptions, likelihood.likelihood,
                         "VAE 784-500-500-50 on binarized MNIST: test NLL by importance sampling (K = 1000)",
                         "Burda et al. 2016"),
    "semisupervised": Recipe(semisupervised.SemiSupervisedOptions, semisupervised.semisupervised,
                             "M1 (+SVM), M2, M1+M2 test error with 100…3000 labels, mean ± sd over seeds",
                             "Kingma et al. 2014", settings=semisupervised.SETTINGS),
    "aae": Recipe(aae.AAEOptions, aae.aae,
                  "AAE with a Gaussian or 10-Gaussian prior, labels in the regulariser, supervised style: codes, "
                  "manifolds, Parzen, judge accuracy", "TF AAE"),
    "aae-semisupervised": Recipe(aae.AAESemiOptions, aae.aae_semisupervised,
                                 "semi-supervised AAE: test error with 100 labels (or 1000, or all)", "TF AAE",
                                 settings=aae.SETTINGS),
    "quadrants": Recipe(quadrants.QuadrantOptions, quadrants.quadrants,
                        "complete digits from 1, 2, 3 quadrants: NN baseline vs Sohn's CVAE, CLL table", "Pyro CVAE"),
}


def recipe_list() -> str:
    width = max(map(len, RECIPES))
    return "\n".join(f"{name:<{width}}  {r.summary} ({r.source})" for name, r in RECIPES.items())
