"""Train a model into a run directory: a new run, a resumed one, or — for recipes — the run of a
config under a recipe's root, reused when finished and trained on from a shorter finished run
when there is one (the decisions are genae.rundir's; this module carries them out).

    out, history = train_model("cvae", VAEConfig(dim_z=2), "runs/cvae")
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from genae.data import DataSource
from genae.device import resolve_device
from genae.models.config import TrainConfig
from genae.rundir import (RunDir, build_model, continue_from, default_run_dir, is_finished, load_model, read_record,
                          read_run_config, run_dir_for, shorter_run)
from genae.train.engine import fit


def train_model(name: str, config: TrainConfig | None, out: str | Path | None = None, *,
                data: DataSource | None = None, resume: bool = False, device: str = "auto",
                quiet: bool = False) -> tuple[Path, list[dict]]:
    """Train `name` with `config` on `data` into `out`; with resume, the config and the data come
    from `out`'s config.json."""
    if resume:
        if out is None:
            raise ValueError("resume needs the run directory")
        stored_name, config, data = read_record(out)
        if stored_name != name:
            raise ValueError(f"{out} holds a {stored_name!r} run, not {name!r}")
    data = data if data is not None else DataSource()
    out = Path(out) if out is not None else default_run_dir(name, config)
    dev = resolve_device(device)
    mnist = data.load()
    torch.manual_seed(config.seed)  # initial weights
    model = build_model(name, config)
    mnist = model.prepare_data(mnist)  # e.g. M2 hides the labels outside its labeled subset
    if not resume:
        model.initialize(lambda run_dir: load_model(run_dir, "cpu"))  # e.g. Sohn's CVAE copies its baseline
    model = model.to(dev)
    history = fit(model, mnist, RunDir(out, data), device=dev, resume=resume, quiet=quiet)
    return out, history


def trained(root: str | Path, name: str, config: TrainConfig, data: DataSource, *, tag: str = "",
            device: str = "auto", quiet: bool = False) -> Path:
    """The run of `name` with `config` under `root` (genae.rundir.run_dir_for): reused if finished,
    resumed if killed, else trained — from a shorter finished run of the same config when there is one."""
    out = run_dir_for(root, name, config, data, tag)
    resume = RunDir(out).checkpoint.is_file()
    if resume and is_finished(out):
        _say(quiet, f"{name}: reusing the finished run {out}")
        return out
    if not resume and (shorter := shorter_run(root, name, config, data)) is not None:
        _say(quiet, f"{name}: training on from the finished {read_run_config(shorter)[1].epochs}-epoch run {shorter}")
        continue_from(shorter, out, name, config, data)
        resume = True
    _say(quiet, f"{name}: {'resuming' if resume else 'training'} {out} ({config.epochs} epochs)")
    train_model(name, config, out, data=data, resume=resume, device=device, quiet=quiet)
    return out


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr)
