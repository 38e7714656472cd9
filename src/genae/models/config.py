"""Options shared by every model's training: each model's config extends `TrainConfig`.

Every field's docstring becomes its `--help` line (tyro); the whole config is saved in the run's
`config.json`, which is all `genae.load` needs to rebuild the model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal


@dataclass
class TrainConfig:
    epochs: int = 20
    """Maximum number of passes over the training split."""
    batch_size: int = 128
    """Images per optimisation step (the global batch, split across processes under torchrun)."""
    lr: float = 1e-3
    """Adam learning rate."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """'cosine': the rate falls from --lr to 0 over --epochs along a half cosine, set per epoch."""
    lr_decay_epochs: int = 0
    """With a constant schedule: hold --lr, then decay it along a half cosine over the last N epochs
    (0: none)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16: matrix products in bfloat16 (weights, Adam, losses stay float32); fast on CPUs with
    avx512_bf16 or AMX, slow elsewhere."""
    patience: int = 0
    """Stop after this many epochs without a better validation loss (0: never stop early)."""
    binarize: Literal["none", "dynamic"] = "none"
    """dynamic: binary pixels drawn from the grey levels every batch (for likelihoods); none: BCE on
    grey levels."""
    noise: float = 0.0
    """Salt-and-pepper rate on the encoder's input (each pixel → 0 or 1 with this probability); the
    target stays clean: a denoising autoencoder. 0: off."""
    snapshots: tuple[int, ...] = ()
    """Also keep the weights after these epochs as model-epoch<N>.safetensors (e.g. 1 20)."""
    seed: int = 0
    """Seeds every random choice; on CPU the same seed gives the same numbers."""


def check_config(config: TrainConfig) -> None:
    """Reject values no run can use, naming the option."""
    if config.epochs < 1:
        raise ValueError(f"--epochs {config.epochs}: need at least 1")
    if config.batch_size < 1:
        raise ValueError(f"--batch-size {config.batch_size}: need at least 1")
    if not (config.lr > 0 and math.isfinite(config.lr)):
        raise ValueError(f"--lr {config.lr}: must be a finite number > 0")
    if not 0 <= config.lr_decay_epochs <= config.epochs:
        raise ValueError(f"--lr-decay-epochs {config.lr_decay_epochs}: must be between 0 and --epochs "
                         f"({config.epochs})")
    if config.lr_decay_epochs and config.lr_schedule != "constant":
        raise ValueError(f"--lr-decay-epochs {config.lr_decay_epochs} decays a constant rate; "
                         f"--lr-schedule {config.lr_schedule} has its own decay")
    if config.patience < 0:
        raise ValueError(f"--patience {config.patience}: must be >= 0")
    if not 0 <= config.noise <= 1:
        raise ValueError(f"--noise {config.noise}: a salt-and-pepper rate must be in [0, 1]")
    if any(not 1 <= e <= config.epochs for e in config.snapshots):
        raise ValueError(f"--snapshots {' '.join(map(str, config.snapshots))}: epochs must be in 1..{config.epochs}")


def config_from_dict(cls: type, values: dict):
    """Rebuild a config dataclass, naming any key the class does not know."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown options {unknown} for {cls.__name__}")
    if "snapshots" in values:
        values = {**values, "snapshots": tuple(values["snapshots"])}
    return cls(**values)
