"""The test log-likelihood of a VAE on dynamically binarized MNIST, the benchmark of Burda et al.
2016 (IWAE): 784-500-500-50, trained with dynamic binarization, its −log p(x) bounded by importance
sampling with K samples (genae.evaluate.likelihood).

    genae run likelihood                                 # 100 epochs, cosine learning rate, K = 1000
    genae run likelihood --models vae cvae --vae.dim-z 20 --vae.epochs 20
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genae.errors import UserError
from genae.evaluate import evaluate_run
from genae.experiments.common import RecipeOptions, RecipeResult, as_config, model_options, recipe_start, train
from genae.models.vae import VAEConfig

BURDA = {"vae": "86.76 (VAE, K = 5000, 3280 epochs; Burda et al. 2016, Table 1)"}


@dataclass
class LikelihoodOptions(RecipeOptions):
    models: tuple[Literal["vae", "cvae"], ...] = ("vae",)
    """Models to train and bound (the CVAE's is the conditional −log p(x | y))."""
    vae: VAEConfig = model_options(VAEConfig, "seed", dim_z=50, epochs=100, binarize="dynamic",
                                   lr_schedule="cosine")
    """The networks and their training (784-500-500-50, dynamic binarization)."""
    iw_samples: int = 1000
    """Importance samples K per test image."""


def likelihood(opts: LikelihoodOptions) -> RecipeResult:
    if opts.vae.binarize != "dynamic":
        raise UserError(f"--vae.binarize {opts.vae.binarize}: a likelihood of binary MNIST needs dynamic "
                         "binarization")
    device, rep, _ = recipe_start(opts, "likelihood", "Test log-likelihood on binarized MNIST (IWAE bound)")
    runs, rows = {}, []
    for name in opts.models:
        run = runs[name] = train(opts, name, as_config(opts.vae, seed=opts.seed), tag=f"z{opts.vae.dim_z}")
        result = evaluate_run(run, iw_samples=opts.iw_samples, device=device, progress=not opts.compute.quiet)
        key = "conditional_nll" if name == "cvae" else "nll"
        rep.numbers[name] = {k: result[k] for k in ("elbo", key, "iw_samples", "n_images", "seconds")}
        rows.append([name.upper(), result["n_images"], result["elbo"], result[key], BURDA.get(name, "—")])
    rep.table(["model", "test images", "test ELBO (nats)", f"test NLL, IWAE bound K = {opts.iw_samples} (nats)",
               "reference"], rows,
              f"{opts.vae.n_layers} hidden layers of {opts.vae.n_hidden}, z {opts.vae.dim_z}, {opts.vae.epochs} epochs "
              f"({opts.vae.lr_schedule} learning rate from {opts.vae.lr:g}); the test set binarized once; the CVAE's "
              "bound is of −log p(x | y).")
    return RecipeResult(rep.write(runs), rep.numbers, {})
