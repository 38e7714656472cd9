"""Model names → (config class, constructor). The CLI and `genae.load` go through here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from genae.models.aae import AAE, AAEConfig
from genae.models.judge import Judge, JudgeConfig
from genae.models.semisupervised import M2, M2Config
from genae.models.sohn import SohnBaseline, SohnConfig, SohnCVAE, SohnCVAEConfig
from genae.models.vae import VAE, VAEConfig
from genae.train.checkpoint import MODEL_FILE, load_weights
from genae.train.config import TrainConfig, config_from_dict


@dataclass(frozen=True)
class ModelSpec:
    config: type[TrainConfig]
    build: Callable
    summary: str


MODELS: dict[str, ModelSpec] = {
    "vae": ModelSpec(VAEConfig, lambda c: VAE(c, conditional=False),
                     "VAE / β-VAE: p(z)=N(0,I), Bernoulli decoder p(x|z), Gaussian encoder q(z|x)"),
    "cvae": ModelSpec(VAEConfig, lambda c: VAE(c, conditional=True),
                      "conditional VAE (M2, all labels observed): p(x|z,y), q(z|x,y)"),
    "sohn-baseline": ModelSpec(SohnConfig, SohnBaseline,
                               "Sohn et al.'s deterministic baseline: complete a digit from 1-3 quadrants"),
    "sohn-cvae": ModelSpec(SohnCVAEConfig, SohnCVAE,
                           "Sohn et al.'s CVAE: p(z|x), q(z|x,y), p(y|x,z) for digit completion"),
    "m2": ModelSpec(M2Config, M2, "Kingma et al.'s semi-supervised M2 (or M1+M2 with --m1-run): q(y|x), "
                                  "q(z|x,y), p(x|y,z) trained on a few labels and many unlabeled images"),
    "aae": ModelSpec(AAEConfig, AAE, "adversarial autoencoder (Makhzani et al.): a discriminator matches the codes "
                                     "to a Gaussian or 10-Gaussian prior; --mode supervised | semisupervised"),
    "judge": ModelSpec(JudgeConfig, Judge, "the reference judge: a CNN digit classifier that scores generated images"),
}


def build(name: str, config: TrainConfig | None = None):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    spec = MODELS[name]
    return spec.build(config if config is not None else spec.config())


def read_run_config(run_dir: Path) -> tuple[str, TrainConfig]:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a run directory (no config.json)")
    values = json.loads(path.read_text())
    name = values.pop("model")
    if name not in MODELS:
        raise ValueError(f"{path}: unknown model {name!r}")
    return name, config_from_dict(MODELS[name].config, values)


def load(run_dir: str | Path, device: str = "cpu", *, epoch: int | None = None):
    """The trained model of a run directory in eval mode: the best validation weights, or with
    `epoch` the snapshot kept after that epoch (see TrainConfig.snapshots)."""
    from genae.train.engine import snapshot_file

    run_dir = Path(run_dir)
    name, config = read_run_config(run_dir)
    weights = run_dir / (MODEL_FILE if epoch is None else snapshot_file(epoch))
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: the run has no such trained weights")
    model = build(name, config).to(device)
    load_weights(model, weights)
    return model.eval()
