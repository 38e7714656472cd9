"""The one training engine. It knows the model interface (genae.models.base), not any model.

A model declares `phases()`: each `Phase` is a name, an optimizer (which holds the phase's
parameters) and a function from a `Batch` to (scalar loss, {name: detached scalar}). For every
batch the engine runs the phases in order (a phase with `every=K` only on the run's K-th, 2K-th, …
step): zero grads, loss, backward, (average gradients across processes), step. After each epoch
it evaluates the model's `validation_metrics` on the validation split, appends a line to
`metrics.jsonl`, keeps the best weights in `model.safetensors` and writes
`checkpoint.safetensors` (the files: genae.rundir).

    from genae.train.engine import fit
    history = fit(model, load_mnist(), RunDir("runs/vae"), device=torch.device("cpu"))
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from genae.data.batches import epoch_batches, n_batches, on_device
from genae.data.mnist import MNIST, Split
from genae.data.transforms import VALIDATION_SEED
from genae.device import flush_denormals, slow_bf16_warning
from genae.errors import UserError
from genae.models.base import Model, Phase
from genae.models.config import check_config
from genae.rundir import RunDir, load_checkpoint, load_weights, save_checkpoint
from genae.train import distributed
from genae.train.steps import StepRunner, step_mode

EVAL_BATCH = {"cpu": 1000, "cuda": 10_000}   # validation images per forward pass, by device type
CHECK_EVERY = 20  # steps between finiteness checks and progress-bar updates


def distinct_optimizers(phases: list[Phase]) -> dict[str, torch.optim.Optimizer]:
    """Each optimizer once, under the name of the first phase that steps it (phases may share one, as
    the AAE's with --encoder-optimizer shared): checkpoints hold every state once, and a learning
    rate is set once per optimizer."""
    named: dict[str, torch.optim.Optimizer] = {}
    for phase in phases:
        if all(phase.optimizer is not seen for seen in named.values()):
            named[phase.name] = phase.optimizer
    return named


class TrainingDiverged(UserError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A distinct, reproducible seed per (run seed, epoch, stream); stream = rank, or -1 for order."""
    return (seed * 1_000_003 + epoch * 7_919 + stream + 1) % (2**63)


def _show_progress(quiet: bool, rank: int) -> bool:
    return not quiet and rank == 0 and sys.stderr.isatty()


@torch.no_grad()
def evaluate(model, split: Split, device: torch.device, *, rank: int = 0, world: int = 1) -> dict[str, float]:
    """Means of the model's validation metrics over a split. Its transforms and the model's own
    sampling are seeded (in a forked RNG, leaving the caller's stream alone), so repeatable."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(VALIDATION_SEED + rank)
        return _evaluate(model, split, device, rank=rank, world=world)


def _evaluate(model, split: Split, device: torch.device, *, rank: int, world: int) -> dict[str, float]:
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=device).manual_seed(VALIDATION_SEED)
    share = torch.arange(len(split)).tensor_split(world)[rank]
    sums: dict[str, torch.Tensor] = {}
    for idx in share.split(EVAL_BATCH.get(device.type, EVAL_BATCH["cpu"])):
        x, y = split.x[idx].to(device), split.y[idx].to(device)
        for key, value in model.validation_metrics(model.prepare(x, y, generator)).items():
            sums[key] = sums.get(key, 0) + value.detach().double() * len(idx)
    model.train(was_training)
    keys = sorted(sums)
    total = distributed.sum_across(torch.stack([sums[k] for k in keys] + [torch.tensor(
        float(len(share)), dtype=torch.float64, device=device)]))
    return {k: (total[i] / total[-1]).item() for i, k in enumerate(keys)}


def fit(model: Model, data: MNIST, run: RunDir | Path, *, device: torch.device, resume: bool = False,
        quiet: bool = False, graphs: bool = True) -> list[dict]:
    """Train `model` (already on `device`) per its config into `run`; returns the metrics of every epoch.
    graphs: replay the steps from CUDA graphs where genae.train.steps.step_mode allows (a CUDA GPU)."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    config = model.config
    check_config(config)
    flush_denormals()
    rank, world = distributed.init_from_env(device)
    phases = model.phases()
    optimizers = distinct_optimizers(phases)
    state = {"epoch": 0, "best_loss": math.inf, "best_epoch": 0, "bad_epochs": 0, "stopped": False}
    ckpt = run.checkpoint
    if resume:
        if not ckpt.is_file():
            raise UserError(f"{ckpt}: no checkpoint to resume from (the run stopped before its first epoch ended); "
                            "start it over with --force")
        state.update(load_checkpoint(ckpt, model, optimizers))
        if rank == 0:
            run.truncate_metrics(state["epoch"])
    elif ckpt.exists():
        raise UserError(f"{run.path} already holds a run; resume it with --resume {run.path} or choose "
                              "another --out")
    if rank == 0:
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config(model.name, config)

    train_x, train_y = data.train.x.to(device), data.train.y.to(device)
    n_train = len(train_y)
    steps = n_batches(n_train, config.batch_size)
    for phase in phases:
        if not 1 <= phase.every <= steps * config.epochs:
            raise UserError(f"phase '{phase.name}' runs every {phase.every} steps, but training has "
                             f"{steps * config.epochs} ({config.epochs} epochs of {steps}): it would never run")
    mode = step_mode(device, model, graphs=graphs, world=world)
    bf16 = config.precision == "bf16"
    runner = StepRunner(model, phases, train_x, train_y, batch_size=config.batch_size, mode=mode, world=world,
                        # autocast's cache of cast weights would outlive a graph's capture: off there
                        autocast=lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16,
                                                        cache_enabled=mode == "eager"))
    if bf16 and rank == 0 and (warning := slow_bf16_warning(device)):
        print(f"warning: {warning}", file=sys.stderr)
    model.train()
    while state["epoch"] < config.epochs and not state["stopped"]:
        epoch = state["epoch"] + 1
        torch.manual_seed(epoch_seed(config.seed, epoch, rank))
        order = torch.Generator().manual_seed(epoch_seed(config.seed, epoch, -1))
        set_learning_rate(optimizers, config, epoch)
        runner.start_epoch()
        phase_counted = {p.name: 0 for p in phases}
        start = time.perf_counter()
        bar = tqdm(total=steps, desc=f"epoch {epoch}/{config.epochs}", leave=False,
                   disable=not _show_progress(quiet, rank))
        batches = list(epoch_batches(n_train, config.batch_size, generator=order, rank=rank, world_size=world))
        for step, (host_idx, idx) in enumerate(zip(batches, on_device(batches, device)), start=1):
            weight = len(idx) / min(config.batch_size, n_train - (step - 1) * config.batch_size)
            active = [phase for phase in phases if ((epoch - 1) * steps + step) % phase.every == 0]
            runner.run(host_idx, idx, active, weight)
            for phase in active:
                phase_counted[phase.name] += len(idx)
            bar.update()
            if step % CHECK_EVERY == 0 or step == steps:
                parts_so_far = _named(runner.sums, runner.keys)
                _check_finite(parts_so_far, epoch, step, ckpt)
                if not bar.disable:
                    bar.set_postfix({k: f"{v.item() / max(phase_counted[phases[0].name], 1):.2f}"
                                    for k, v in parts_so_far.get(phases[0].name, {}).items()})
        bar.close()
        train_seconds = time.perf_counter() - start
        train_means = {name: _global_means(acc, phase_counted[name]) if phase_counted[name] else {}
                       for name, acc in _named(runner.sums, runner.keys, phases).items()}
        valid = evaluate(model, data.valid, device, rank=rank, world=world)
        if not math.isfinite(valid["loss"]):
            raise TrainingDiverged(f"{run.path}: the validation loss is {valid['loss']} after epoch {epoch}; "
                                   f"the last good checkpoint is kept in {ckpt.name} (a lower --lr may help)")
        improved = valid["loss"] < state["best_loss"]
        if improved:
            state.update(best_loss=valid["loss"], best_epoch=epoch, bad_epochs=0)
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        state["stopped"] = config.patience > 0 and state["bad_epochs"] >= config.patience
        line = {"epoch": epoch, "train_seconds": round(train_seconds, 3),
                "images_per_second": round(n_train / train_seconds, 1), "train": train_means,
                "valid": valid, "best": improved}
        if rank == 0:
            if improved:
                run.save_best(model, epoch)
            if epoch in config.snapshots:
                run.save_snapshot(model, epoch)
            run.append_metrics(line)
            save_checkpoint(ckpt, model, optimizers, **state)
            if not quiet:
                main = {k: round(v, 2) for k, v in train_means[phases[0].name].items()}
                print(f"epoch {epoch}: train {main} | valid loss {valid['loss']:.2f} "
                      f"| {train_seconds:.1f}s{' | best' if improved else ''}", file=sys.stderr)
    runner.finish()
    if state["stopped"] and rank == 0 and not quiet:
        print(f"early stop: no better validation loss for {config.patience} epochs "
              f"(best epoch {state['best_epoch']})", file=sys.stderr)
    if run.best_weights.is_file():
        load_weights(model, run.best_weights)
    return run.read_metrics()


def set_learning_rate(optimizers: dict[str, torch.optim.Optimizer], config, epoch: int) -> None:
    """The rate for `epoch` (1-based): --lr, or its half-cosine decay to 0 over --epochs, or --lr held
    and then decayed along a half cosine over the last --lr-decay-epochs."""
    if config.lr_schedule == "cosine":
        rate = config.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / config.epochs))
    elif config.lr_decay_epochs:
        into_decay = max(epoch - (config.epochs - config.lr_decay_epochs), 0)
        rate = config.lr * 0.5 * (1 + math.cos(math.pi * into_decay / (config.lr_decay_epochs + 1)))
    else:
        return
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = rate


def _named(sums: dict[str, torch.Tensor], keys: dict[str, list[str]],
           phases: list[Phase] | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """{phase: {part: running sum}}; with `phases`, every phase, {} for one that has not run yet."""
    names = [p.name for p in phases] if phases is not None else list(sums)
    return {name: dict(zip(keys[name], sums[name])) if name in sums else {} for name in names}


def _global_means(acc: dict[str, torch.Tensor], counted: int) -> dict[str, float]:
    keys = sorted(acc)
    if not keys:
        return {}
    total = distributed.sum_across(torch.stack([acc[k] for k in keys] + [
        torch.tensor(float(counted), dtype=torch.float64, device=acc[keys[0]].device)]))
    return {k: (total[i] / total[-1]).item() for i, k in enumerate(keys)}


def _check_finite(sums: dict[str, dict[str, torch.Tensor]], epoch: int, step: int, ckpt: Path) -> None:
    values = [value for acc in sums.values() for value in acc.values()]
    if not values or torch.isfinite(torch.stack(values)).all():   # one wait on the device
        return
    for phase, acc in sums.items():
        for key, value in acc.items():
            if not torch.isfinite(value):
                kept = f"the last good checkpoint is kept in {ckpt}" if ckpt.exists() else "no epoch finished yet"
                raise TrainingDiverged(
                    f"phase '{phase}' produced a non-finite {key} ({value.item()}) in epoch {epoch} by step {step}; "
                    f"{kept} (a lower --lr may help)")
