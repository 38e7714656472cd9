"""Model names → (config class, constructor, one-line summary). Nothing else: loading a trained
model from its run directory is genae.rundir's job.

    model = build("cvae", VAEConfig(dim_z=2))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch

from genae.errors import UserError
from genae.models.aae import AAE, AAEConfig
from genae.models.base import LoadRun, Model
from genae.models.config import TrainConfig
from genae.models.judge import Judge, JudgeConfig
from genae.models.semisupervised import M2, M2Config
from genae.models.sohn import SohnBaseline, SohnConfig, SohnCVAE, SohnCVAEConfig
from genae.models.vae import VAE, VAEConfig


@dataclass(frozen=True)
class ModelSpec:
    config: type[TrainConfig]
    build: Callable[[TrainConfig, LoadRun | None], Model]
    summary: str


MODELS: dict[str, ModelSpec] = {
    "vae": ModelSpec(VAEConfig, lambda c, _: VAE(c, conditional=False),
                     "VAE / β-VAE: p(z)=N(0,I), Bernoulli decoder p(x|z), Gaussian encoder q(z|x)"),
    "cvae": ModelSpec(VAEConfig, lambda c, _: VAE(c, conditional=True),
                      "conditional VAE (M2, all labels observed): p(x|z,y), q(z|x,y)"),
    "sohn-baseline": ModelSpec(SohnConfig, lambda c, _: SohnBaseline(c),
                               "Sohn et al.'s deterministic baseline: complete a digit from 1-3 quadrants"),
    "sohn-cvae": ModelSpec(SohnCVAEConfig, lambda c, _: SohnCVAE(c),
                           "Sohn et al.'s CVAE: p(z|x), q(z|x,y), p(y|x,z) for digit completion"),
    "m2": ModelSpec(M2Config, lambda c, load: M2(c, load),
                    "Kingma et al.'s semi-supervised M2 (or M1+M2 with --m1-run): q(y|x), q(z|x,y), p(x|y,z) "
                    "trained on a few labels and many unlabeled images"),
    "aae": ModelSpec(AAEConfig, lambda c, _: AAE(c),
                     "adversarial autoencoder (Makhzani et al.): a discriminator matches the codes to a Gaussian "
                     "or 10-Gaussian prior; --mode supervised | semisupervised"),
    "judge": ModelSpec(JudgeConfig, lambda c, _: Judge(c),
                       "the reference judge: a CNN digit classifier that scores generated images"),
}


MAX_PARAMETERS = 50_000_000
"""The largest model genae builds (with gradients and Adam's two moments about 0.8 GB)."""
SIZE_OPTIONS = ("n_hidden", "n_layers", "dim_z", "arch")


def build(name: str, config: TrainConfig | None = None, *, load_run: LoadRun | None = None) -> Model:
    """A fresh `name` model with `config` (default: its config's defaults); `load_run` loads the
    runs some models are built from (M1+M2's M1). Its size is counted first on the meta device, so a
    model over MAX_PARAMETERS is refused before any memory is taken."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    spec = MODELS[name]
    config = config if config is not None else spec.config()

    def load_on_cpu(run_dir: str) -> Model:
        with torch.device("cpu"):
            return load_run(run_dir)

    with torch.random.fork_rng(devices=[]), torch.device("meta"):   # leaves the caller's random stream alone
        size = sum(p.numel() for p in spec.build(config, load_on_cpu if load_run else None).parameters())
    if size > MAX_PARAMETERS:
        given = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in dataclasses.asdict(config).items()
                          if k in SIZE_OPTIONS)
        raise UserError(f"{given}: a {name} of {size:,} parameters; genae builds at most {MAX_PARAMETERS:,} "
                        "(make the networks smaller)")
    return spec.build(config, load_run)
