"""Options shared by every model's training: each model's config extends `TrainConfig`.

Every field's docstring becomes its `--help` line (tyro); the whole config is saved in the run's
`config.json`, which is all `genae.load` needs to rebuild the model.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Literal

from genae.errors import UserError


@dataclass
class TrainConfig:
    epochs: int = 20
    """Maximum number of passes over the training split."""
    batch_size: int = 128
    """Images per optimisation step, at most 10,000 (the global batch, split across processes under torchrun)."""
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
    """Seeds every random choice (0 … 2³¹−1); on CPU the same seed gives the same numbers."""


MAX_BATCH = 10_000
"""Images per step at most: more would only cost memory (a batch of 10,000 already holds a fifth of MNIST)."""
MAX_SEED = 2**31 - 1


def check_config(config: TrainConfig) -> None:
    """Reject values no run can use, naming the option."""
    if config.epochs < 1:
        raise UserError(f"--epochs {config.epochs}: need at least 1")
    if not 1 <= config.batch_size <= MAX_BATCH:
        raise UserError(f"--batch-size {config.batch_size}: must be in 1..{MAX_BATCH:,}")
    if not (config.lr > 0 and math.isfinite(config.lr)):
        raise UserError(f"--lr {config.lr}: must be a finite number > 0")
    if not 0 <= config.seed <= MAX_SEED:
        raise UserError(f"--seed {config.seed}: must be in 0..{MAX_SEED}")
    if not 0 <= config.lr_decay_epochs <= config.epochs:
        raise UserError(f"--lr-decay-epochs {config.lr_decay_epochs}: must be between 0 and --epochs "
                         f"({config.epochs})")
    if config.lr_decay_epochs and config.lr_schedule != "constant":
        raise UserError(f"--lr-decay-epochs {config.lr_decay_epochs} decays a constant rate; "
                         f"--lr-schedule {config.lr_schedule} has its own decay")
    if config.patience < 0:
        raise UserError(f"--patience {config.patience}: must be >= 0")
    if not 0 <= config.noise <= 1:
        raise UserError(f"--noise {config.noise}: a salt-and-pepper rate must be in [0, 1]")
    if any(not 1 <= e <= config.epochs for e in config.snapshots):
        raise UserError(f"--snapshots {' '.join(map(str, config.snapshots))}: epochs must be in 1..{config.epochs}")


def config_from_dict(cls: type, values: dict):
    """Rebuild a config dataclass from JSON values, naming any key the class does not know and any
    value of the wrong type."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"unknown options {unknown} for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    checked = {}
    for key, value in values.items():
        try:
            checked[key] = _typed(value, hints[key])
        except TypeError:
            raise UserError(f"option {key!r} is {value!r}, not {_type_words(hints[key])}") from None
    return cls(**checked)


def _typed(value, hint):
    """`value` as the type `hint` asks for (a JSON list becomes a tuple); TypeError when it is not one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        return _typed(value, next(a for a in args if a is not type(None)))
    if origin is typing.Literal:
        if value in args and type(value) is type(args[args.index(value)]):
            return value
        raise TypeError
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError
        return tuple(_typed(v, args[0]) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError
    return value


def _type_words(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return " or ".join(_type_words(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin is tuple:
        return f"a list of {_type_words(args[0])}"
    return {type(None): "null", bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint)))


def require_positive(**options: int) -> None:
    """A UserError naming the first of these whole-number options below 1 (as typed: --dim-z)."""
    for name, value in options.items():
        if value < 1:
            raise UserError(f"--{name.replace('_', '-')} {value}: need at least 1")


def require_fraction(option: str, value: float, *, closed: bool = False) -> None:
    """A UserError unless 0 <= value < 1 (<= 1 when closed), naming the option."""
    if not (0 <= value <= 1 if closed else 0 <= value < 1):
        raise UserError(f"--{option} {value}: must be in [0, 1{']' if closed else ')'}")


MAX_KL_WEIGHT = 1e6
"""Largest β: beyond it the KL term outweighs any reconstruction by many orders of magnitude."""


def check_kl_weight(beta: float) -> None:
    if not (0 <= beta <= MAX_KL_WEIGHT):
        raise UserError(f"--beta {beta}: a KL weight must be in [0, {MAX_KL_WEIGHT:g}]")
