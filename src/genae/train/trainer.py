"""Train a model into a run directory: a new run, a resumed one, or — for recipes — the run of a
config under a recipe's root, reused when finished and trained on from a shorter finished run
when there is one (the decisions are genae.rundir's; this module carries them out).

    out, history = train_model("cvae", VAEConfig(dim_z=2), "runs/cvae")
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path

import torch

from genae.data import DataSource
from genae.device import resolve_device
from genae.errors import Interrupted, UserError
from genae.models.config import TrainConfig
from genae.rundir import (
    RunDir,
    build_model,
    check_free,
    continue_from,
    default_run_dir,
    is_finished,
    load_dependency,
    owned,
    read_metadata,
    read_run_config,
    resumed_config,
    run_dir_for,
    shorter_run,
)
from genae.train import distributed
from genae.train.engine import fit
from genae.train.steps import CaptureFailed


def train_model(name: str, config: TrainConfig | None, out: str | Path | None = None, *,
                data: DataSource | None = None, resume: bool = False, force: bool = False,
                given: dict | None = None, device: str = "auto", quiet: bool = False,
                graphs: bool = True) -> tuple[Path, list[dict]]:
    """Train `name` with `config` on `data` into `out`, which this process owns while it trains
    (genae.rundir.owned).

    New run: `out` must not hold a run already, unless `force` (its files are deleted first).
    resume: the config and the data come from `out`'s config.json; `given` (the options typed on the
    command line) may change only genae.rundir.RESUMABLE ones, and `data`, if given, must be the run's.
    Ctrl-C stops with `Interrupted`, saying how to continue; the last checkpoint stays."""
    if resume and out is None:
        raise UserError("--resume needs the run directory")
    out = Path(out) if out is not None else default_run_dir(name, config)
    dev = resolve_device(device)
    if distributed.rank_from_env() == 0:
        check_free(out)
    if resume:
        typed_data = {} if data is None else dataclasses.asdict(data)
        config, data = resumed_config(out, name, {**typed_data, **(given or {})})
    elif not force and RunDir(out).holds_run():
        raise _holds_run(out)
    data = data if data is not None else DataSource()
    data.check()
    torch.manual_seed(config.seed)  # initial weights
    model = build_model(name, config)   # every option is checked here, before anything is read or written
    mnist = model.prepare_data(data.load())  # e.g. M2 hides the labels outside its labeled subset
    if not resume:
        model.initialize(load_dependency)  # e.g. Sohn's CVAE copies its baseline
    with _owning(out):
        run = RunDir(out, data)
        if not resume and run.holds_run():
            if not force:
                raise _holds_run(out)
            if distributed.rank_from_env() == 0:   # one process clears; every process trains
                run.clear()
        model = model.to(dev)
        try:
            history = fit(model, mnist, run, device=dev, resume=resume, quiet=quiet, graphs=graphs)
        except KeyboardInterrupt:
            if not run.checkpoint.is_file():
                raise Interrupted(f"{out}: interrupted before its first epoch ended (nothing to continue); start "
                                  "it again with --force") from None
            epoch = read_metadata(run.checkpoint).get("epoch", "?")
            raise Interrupted(f"{out}: interrupted; the checkpoint of epoch {epoch} is kept: continue with "
                              f"`genae train {name} --resume {out}`") from None
        except CaptureFailed as err:
            again = (f"continue with `genae train {name} --resume {out} --no-graphs`" if run.checkpoint.is_file()
                     else f"run the command again with --no-graphs --force --out {out}")
            raise CaptureFailed(f"{out}: {err}; {again}") from err
    return out, history


def _holds_run(out: Path) -> UserError:
    return UserError(f"{out}: already holds a run; continue it with --resume {out}, start over with --force (its "
                     "files are deleted), or choose another --out")


def _owning(out: Path):
    """Own the run directory, except in the processes of a torchrun job other than rank 0 (which
    writes every file; the others only read the checkpoint when resuming)."""
    return owned(out) if distributed.rank_from_env() == 0 else contextlib.nullcontext(out)


def trained(root: str | Path, name: str, config: TrainConfig, data: DataSource, *, tag: str = "",
            device: str = "auto", quiet: bool = False, graphs: bool = True) -> Path:
    """The run of `name` with `config` under `root` (genae.rundir.run_dir_for): reused if finished,
    resumed if killed, else trained — from a shorter finished run of the same config when there is one."""
    out = run_dir_for(root, name, config, data, tag)
    with _owning(out):
        resume = RunDir(out).checkpoint.is_file()
        if resume and is_finished(out):
            _say(quiet, f"{name}: reusing the finished run {out}")
            return out
        if not resume and (shorter := shorter_run(root, name, config, data)) is not None:
            _say(quiet, f"{name}: training on from the finished {read_run_config(shorter)[1].epochs}-epoch run "
                        f"{shorter}")
            continue_from(shorter, out, name, config, data)
            resume = True
        _say(quiet, f"{name}: {'resuming' if resume else 'training'} {out} ({config.epochs} epochs)")
        # a run killed before its first checkpoint has nothing to keep: force starts it over
        train_model(name, config, out, data=data, resume=resume, force=True, device=device, quiet=quiet,
                    graphs=graphs)
    return out


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr)
