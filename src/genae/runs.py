"""Train a model into a run directory (new or resumed): what `genae train` and the demo call."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from genae.data import load_mnist
from genae.models.registry import build, read_run_config
from genae.train.checkpoint import CHECKPOINT_FILE
from genae.train.config import TrainConfig
from genae.train.engine import fit, resolve_device


def default_run_dir(name: str, config: TrainConfig) -> Path:
    """runs/<model>-z<dim>-s<seed>-<time>: a name that says what ran."""
    dim = getattr(config, "dim_z", None)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{name}{f'-z{dim}' if dim else ''}-s{config.seed}-{stamp}"


def train_run(name: str, config: TrainConfig | None, out: Path | None = None, *, resume: bool = False,
              device: str = "auto", quiet: bool = False) -> tuple[Path, list[dict]]:
    """Train `name` with `config` into `out`; with resume, config and model come from `out`."""
    if resume:
        if out is None:
            raise ValueError("resume needs the run directory")
        stored_name, config = read_run_config(out)
        if stored_name != name:
            raise ValueError(f"{out} holds a {stored_name!r} run, not {name!r}")
    out = Path(out) if out is not None else default_run_dir(name, config)
    dev = resolve_device(device)
    data = load_mnist(config.data_dir)
    if config.limit:
        data = data.head(config.limit)
    torch.manual_seed(config.seed)  # initial weights
    model = build(name, config)
    if hasattr(model, "prepare_data"):
        data = model.prepare_data(data)  # e.g. M2 hides the labels outside its labeled subset
    if not resume and hasattr(model, "load_pretrained"):
        model.load_pretrained()  # e.g. the frozen baseline inside Sohn's CVAE
    model = model.to(dev)
    history = fit(model, data, out, device=dev, resume=resume, quiet=quiet)
    return out, history


def is_finished(run_dir: Path) -> bool:
    from genae.train.checkpoint import read_metadata

    ckpt = Path(run_dir) / CHECKPOINT_FILE
    if not ckpt.is_file():
        return False
    meta = read_metadata(ckpt)
    _, config = read_run_config(run_dir)
    return meta["stopped"] or meta["epoch"] >= config.epochs
