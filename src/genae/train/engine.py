"""The one training engine. It knows phases, not models.

A model declares `phases()`: each `Phase` is a name, an optimizer (which holds the phase's
parameters) and a function from a `Batch` to (scalar loss, {name: detached scalar}). For every
batch the engine runs the phases in order (a phase with `every=K` only on the run's K-th, 2K-th, …
step): zero grads, loss, backward, (average gradients across processes), step. After each epoch
it evaluates the model's `validation_metrics` on the validation split, appends a line to
`metrics.jsonl`, keeps the best weights in `model.safetensors` and writes
`checkpoint.safetensors` (see genae.train.checkpoint).

    from genae.train.engine import fit
    history = fit(model, load_mnist(), Path("runs/vae"), device=torch.device("cpu"))
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from genae.data.batches import epoch_batches, n_batches
from genae.data.mnist import MNIST, Split
from genae.train import distributed
from genae.train.checkpoint import (CHECKPOINT_FILE, MODEL_FILE, load_checkpoint, load_weights, save_checkpoint,
                                    save_weights)
from genae.train.config import check_config, write_config

METRICS_FILE = "metrics.jsonl"
VALIDATION_SEED = 1234  # validation transforms (e.g. binarization) are the same every epoch
EVAL_BATCH = 1000
CHECK_EVERY = 20  # steps between finiteness checks and progress-bar updates

LossFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class Phase:
    name: str
    optimizer: torch.optim.Optimizer
    loss: LossFn
    every: int = 1
    """The phase runs on the run's steps every, 2·every, … only, counted across epochs so that it runs
    on exactly one step in `every` (its logged means are over the steps it ran)."""

    @property
    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]


def distinct_optimizers(phases: list[Phase]) -> dict[str, torch.optim.Optimizer]:
    """Each optimizer once, under the name of the first phase that steps it (phases may share one, as
    the AAE's with --encoder-optimizer shared): checkpoints hold every state once, and a learning
    rate is set once per optimizer."""
    named: dict[str, torch.optim.Optimizer] = {}
    for phase in phases:
        if all(phase.optimizer is not seen for seen in named.values()):
            named[phase.name] = phase.optimizer
    return named


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def adam(params, lr: float, betas: tuple[float, float] = (0.9, 0.999), lr_scale: float = 1.0) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all parameters per step). Its rate is lr·lr_scale;
    the scale stays in the parameter group (and its checkpoint), so a schedule of --lr keeps it."""
    return torch.optim.Adam([{"params": list(params), "lr_scale": lr_scale}], lr=lr * lr_scale, betas=betas,
                            fused=True)


def resolve_device(name: str | torch.device) -> torch.device:
    """'auto' → CUDA if available, else CPU; 'cuda' without a GPU is an error, not a fallback.
    'cuda' is the local rank's GPU (torchrun); 'cuda:N', what str() of a resolved device gives
    (recipes pass it on), is GPU N."""
    name = str(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    kind, colon, index = name.partition(":")
    if kind != "cuda" or (colon and not index.isdigit()):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu or cuda (or cuda:N)")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name} was asked for, but torch sees no CUDA GPU")
    if colon and int(index) >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device("cuda", int(index) if colon else distributed.local_rank())


def slow_bf16_warning(device: torch.device) -> str | None:
    """Why --precision bf16 would be slow here, or None. CPUs without bf16 matrix instructions
    (avx512_bf16 or AMX) emulate bf16 products: on a 2-core AVX2 EPYC an M2 epoch took 337 s in
    bf16 against 26 s in fp32 (the README's Results intro gives the command)."""
    if device.type != "cpu" or platform.machine().lower() not in ("x86_64", "amd64"):
        return None   # torch's flags describe x86 only; ARM CPUs may have bf16 of their own
    native = [getattr(torch.cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported",
                                                                     "_is_amx_tile_supported")]
    if any(native):
        return None
    return (f"--precision bf16: this CPU ({torch.backends.cpu.get_cpu_capability()}) has neither avx512_bf16 "
            "nor AMX, so bfloat16 products are emulated and run several times slower than fp32; "
            "use --precision fp32 here")


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
    for idx in share.split(EVAL_BATCH):
        x, y = split.x[idx].to(device), split.y[idx].to(device)
        for key, value in model.validation_metrics(model.prepare(x, y, generator)).items():
            sums[key] = sums.get(key, 0) + value.detach().double() * len(idx)
    model.train(was_training)
    keys = sorted(sums)
    total = distributed.sum_across(torch.stack([sums[k] for k in keys] + [torch.tensor(
        float(len(share)), dtype=torch.float64, device=device)]))
    return {k: (total[i] / total[-1]).item() for i, k in enumerate(keys)}


def flush_denormals() -> None:
    """Treat subnormal floats as zero (FTZ/DAZ) on this thread and the threads it starts later.

    Adam's decaying moments of never-used weights (MNIST's blank border pixels) go subnormal,
    which makes CPU arithmetic 1.5–2× slower. The flag is per thread and OpenMP workers copy it
    when they are created, so call this before any parallel torch work (`genae.cli.main` does it
    first); otherwise the workers keep exact subnormals while the main thread flushes them, and
    the numbers depend on which thread did which chunk.
    """
    torch.set_flush_denormal(True)


def fit(model, data: MNIST, out: Path, *, device: torch.device, resume: bool = False,
        quiet: bool = False) -> list[dict]:
    """Train `model` (already on `device`) per its config; returns the metrics of every epoch."""
    config = model.config
    check_config(config)
    out = Path(out)
    flush_denormals()
    rank, world = distributed.init_from_env(device)
    phases = model.phases()
    optimizers = distinct_optimizers(phases)
    state = {"epoch": 0, "best_loss": math.inf, "best_epoch": 0, "bad_epochs": 0, "stopped": False}
    ckpt = out / CHECKPOINT_FILE
    metrics_path = out / METRICS_FILE
    if resume:
        if not ckpt.is_file():
            raise FileNotFoundError(f"{ckpt}: no checkpoint to resume from")
        state.update(load_checkpoint(ckpt, model, optimizers))
        _truncate_metrics(metrics_path, state["epoch"], rank)
    elif ckpt.exists():
        raise FileExistsError(f"{out} already holds a run; resume it with --resume {out} or choose "
                              "another --out")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_config(out / "config.json", config, model.name)

    train_x, train_y = data.train.x.to(device), data.train.y.to(device)
    n_train = len(train_y)
    steps = n_batches(n_train, config.batch_size)
    for phase in phases:
        if not 1 <= phase.every <= steps * config.epochs:
            raise ValueError(f"phase '{phase.name}' runs every {phase.every} steps, but training has "
                             f"{steps * config.epochs} ({config.epochs} epochs of {steps}): it would never run")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    if config.precision == "bf16" and rank == 0 and (warning := slow_bf16_warning(device)):
        print(f"warning: {warning}", file=sys.stderr)
    model.train()
    while state["epoch"] < config.epochs and not state["stopped"]:
        epoch = state["epoch"] + 1
        torch.manual_seed(epoch_seed(config.seed, epoch, rank))
        order = torch.Generator().manual_seed(epoch_seed(config.seed, epoch, -1))
        set_learning_rate(optimizers, config, epoch)
        sums: dict[str, torch.Tensor | None] = {p.name: None for p in phases}
        keys: dict[str, list[str]] = {}
        phase_counted = {p.name: 0 for p in phases}
        start = time.perf_counter()
        bar = tqdm(total=steps, desc=f"epoch {epoch}/{config.epochs}", leave=False,
                   disable=not _show_progress(quiet, rank))
        for step, idx in enumerate(epoch_batches(n_train, config.batch_size, generator=order,
                                                 rank=rank, world_size=world), start=1):
            idx = idx.to(device)
            batch = model.prepare(train_x[idx], train_y[idx])
            weight = len(idx) / min(config.batch_size, n_train - (step - 1) * config.batch_size)
            for phase in phases:
                if ((epoch - 1) * steps + step) % phase.every:
                    continue
                phase_counted[phase.name] += len(idx)
                phase.optimizer.zero_grad(set_to_none=True)
                with autocast:
                    loss, parts = phase.loss(batch)
                loss.backward()
                if world > 1:
                    distributed.average_gradients(phase.parameters, weight)
                phase.optimizer.step()
                # one stacked add per phase and step: the engine's own cost stays small
                values = torch.stack(list(parts.values())).detach().double() * len(idx)
                sums[phase.name] = values if sums[phase.name] is None else sums[phase.name] + values
                keys[phase.name] = list(parts)
            bar.update()
            if step % CHECK_EVERY == 0 or step == steps:
                parts_so_far = _named(sums, keys)
                _check_finite(parts_so_far, epoch, step, ckpt)
                if not bar.disable:
                    bar.set_postfix({k: f"{v.item() / max(phase_counted[phases[0].name], 1):.2f}"
                                    for k, v in parts_so_far[phases[0].name].items()})
        bar.close()
        train_seconds = time.perf_counter() - start
        train_means = {name: _global_means(acc, phase_counted[name]) for name, acc in _named(sums, keys).items()}
        valid = evaluate(model, data.valid, device, rank=rank, world=world)
        if not math.isfinite(valid["loss"]):
            raise TrainingDiverged(f"validation loss is {valid['loss']} after epoch {epoch}; "
                                   f"the last good checkpoint is {ckpt}")
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
                save_weights(model, out / MODEL_FILE, model_name=model.name, epoch=epoch)
            if epoch in config.snapshots:
                save_weights(model, out / snapshot_file(epoch), model_name=model.name, epoch=epoch)
            with open(metrics_path, "a") as f:
                f.write(json.dumps(line) + "\n")
            save_checkpoint(ckpt, model, optimizers, **state)
            if not quiet:
                main = {k: round(v, 2) for k, v in train_means[phases[0].name].items()}
                print(f"epoch {epoch}: train {main} | valid loss {valid['loss']:.2f} "
                      f"| {train_seconds:.1f}s{' | best' if improved else ''}", file=sys.stderr)
    if state["stopped"] and rank == 0 and not quiet:
        print(f"early stop: no better validation loss for {config.patience} epochs "
              f"(best epoch {state['best_epoch']})", file=sys.stderr)
    if (out / MODEL_FILE).is_file():
        load_weights(model, out / MODEL_FILE)
    return read_metrics(out)


def snapshot_file(epoch: int) -> str:
    """Weights kept after `epoch` when the config's `snapshots` names it."""
    return f"model-epoch{epoch}.safetensors"


def set_learning_rate(optimizers: dict[str, torch.optim.Optimizer], config, epoch: int) -> None:
    """The rate for `epoch` (1-based): --lr, or its half-cosine decay to 0 over --epochs, or --lr held
    and then decayed along a half cosine over the last --lr-decay-epochs; times each parameter group's
    lr_scale (see `adam`)."""
    if config.lr_schedule == "cosine":
        rate = config.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / config.epochs))
    elif config.lr_decay_epochs:
        into_decay = max(epoch - (config.epochs - config.lr_decay_epochs), 0)
        rate = config.lr * 0.5 * (1 + math.cos(math.pi * into_decay / (config.lr_decay_epochs + 1)))
    else:
        return
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = rate * group.get("lr_scale", 1.0)


def _named(sums: dict[str, torch.Tensor | None], keys: dict[str, list[str]]) -> dict[str, dict[str, torch.Tensor]]:
    return {name: {} if acc is None else dict(zip(keys[name], acc)) for name, acc in sums.items()}


def _global_means(acc: dict[str, torch.Tensor], counted: int) -> dict[str, float]:
    keys = sorted(acc)
    if not keys:
        return {}
    total = distributed.sum_across(torch.stack([acc[k] for k in keys] + [
        torch.tensor(float(counted), dtype=torch.float64, device=acc[keys[0]].device)]))
    return {k: (total[i] / total[-1]).item() for i, k in enumerate(keys)}


def _check_finite(sums: dict[str, dict[str, torch.Tensor]], epoch: int, step: int, ckpt: Path) -> None:
    for phase, acc in sums.items():
        for key, value in acc.items():
            if not torch.isfinite(value):
                raise TrainingDiverged(
                    f"phase '{phase}' produced a non-finite {key} ({value.item()}) in epoch {epoch} "
                    f"by step {step}; the last good checkpoint is {ckpt if ckpt.exists() else 'none yet'}")


def read_metrics(out: Path) -> list[dict]:
    path = Path(out) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _truncate_metrics(path: Path, epoch: int, rank: int) -> None:
    """Drop lines of epochs after the checkpoint (a run killed after logging, before saving)."""
    if rank != 0 or not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= epoch]
    path.write_text("".join(line + "\n" for line in kept))
