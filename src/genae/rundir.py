"""Run directories: the layout, every file in them, and every decision about them — whether a run
is new, resumed or finished, the name a recipe gives it, the shorter run a recipe trains on from,
and loading the trained model. Training, evaluation, plots, recipes and the CLI all go through here.

    runs/cvae/
      config.json                 {"model": "cvae", "data": {...}, ...the model's config}
      model.safetensors           the weights of the best validation epoch (what `genae.load` returns)
      checkpoint.safetensors      the last epoch: weights, every optimizer's state, epoch, early-stopping
                                  state (random numbers need none: the engine reseeds every epoch)
      model-epoch<N>.safetensors  snapshots kept with --snapshots
      metrics.jsonl               one line per epoch
      eval.json                   what `genae eval` measured
      figures/                    what `genae plot` drew

Weights and checkpoints are safetensors files; non-tensor values travel as JSON in their metadata.
Every file is written to a temporary name in the same directory and then renamed over the old one.

    model = load_model("runs/cvae")
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file

from genae.data import DataSource
from genae.models.base import Model
from genae.models.config import TrainConfig, config_from_dict
from genae.models.registry import MODELS, build

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
METRICS_FILE = "metrics.jsonl"
EVAL_FILE = "eval.json"
FIGURES = "figures"


def snapshot_file(epoch: int) -> str:
    """Weights kept after `epoch` when the config's `snapshots` names it."""
    return f"model-epoch{epoch}.safetensors"


# ---------------------------------------------------------------------------------- files
def write_text(path: Path, text: str) -> Path:
    """Write a whole file at once: a temporary file beside it, then a rename (never half a file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json(path: Path, value) -> Path:
    return write_text(path, json.dumps(value, indent=2) + "\n")


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(tensors, str(tmp), metadata={k: json.dumps(v) for k, v in metadata.items()})
    os.replace(tmp, path)


def read_metadata(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return {k: json.loads(v) for k, v in (f.metadata() or {}).items()}


def save_weights(model: torch.nn.Module, path: Path, **metadata) -> None:
    _save_tensors(dict(model.state_dict()), Path(path), metadata)


def load_weights(model: torch.nn.Module, path: Path) -> dict:
    model.load_state_dict(load_file(str(path), device=str(_device(model))))
    return read_metadata(path)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _flatten_optimizer(name: str, optimizer: torch.optim.Optimizer, tensors: dict, scalars: dict) -> list:
    state = optimizer.state_dict()
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{name}/{idx}/{key}"] = value
            else:
                scalars[f"{name}/{idx}/{key}"] = value
    return state["param_groups"]


def save_checkpoint(path: Path, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                    **state) -> None:
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    scalars: dict = {}
    groups = {name: _flatten_optimizer(name, opt, tensors, scalars) for name, opt in optimizers.items()}
    _save_tensors(tensors, Path(path), {"param_groups": groups, "optim_scalars": scalars, **state})


def load_checkpoint(path: Path, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer]) -> dict:
    """Restore weights and optimizers in place; return the other saved state (epoch, …)."""
    meta = read_metadata(path)
    tensors = load_file(str(path), device=str(_device(model)))
    model.load_state_dict({k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
    for name, opt in optimizers.items():
        per_param: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith(f"optim/{name}/"):
                _, _, idx, field = key.split("/", 3)
                per_param.setdefault(int(idx), {})[field] = value.clone()  # own memory, not the file's
        for key, value in meta["optim_scalars"].items():
            pname, idx, field = key.split("/", 2)
            if pname == name:
                per_param.setdefault(int(idx), {})[field] = value
        opt.load_state_dict({"state": per_param, "param_groups": meta["param_groups"][name]})
    return {k: v for k, v in meta.items() if k not in ("param_groups", "optim_scalars")}


# ---------------------------------------------------------------------------------- one run
class RunDir:
    """One run directory and the data it was trained on."""

    def __init__(self, path: str | Path, data: DataSource | None = None):
        self.path = Path(path)
        self.data = data if data is not None else DataSource()

    def __fspath__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def best_weights(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def figures(self) -> Path:
        return self.path / FIGURES

    def write_config(self, name: str, config: TrainConfig) -> None:
        write_json(self.path / CONFIG_FILE, config_record(name, config, self.data))

    def read_metrics(self) -> list[dict]:
        return read_metrics(self.path)

    def append_metrics(self, line: dict) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps(line) + "\n")

    def truncate_metrics(self, epoch: int) -> None:
        """Drop lines of epochs after the checkpoint (a run killed after logging, before saving)."""
        if self.metrics.is_file():
            kept = [line for line in self.metrics.read_text().splitlines()
                    if line.strip() and json.loads(line)["epoch"] <= epoch]
            write_text(self.metrics, "".join(line + "\n" for line in kept))

    def save_best(self, model: Model, epoch: int) -> None:
        save_weights(model, self.best_weights, model_name=model.name, epoch=epoch)

    def save_snapshot(self, model: Model, epoch: int) -> None:
        save_weights(model, self.path / snapshot_file(epoch), model_name=model.name, epoch=epoch)

    def write_eval(self, result: dict) -> Path:
        return write_json(self.path / EVAL_FILE, result)

    def is_finished(self) -> bool:
        return is_finished(self.path)


def config_record(name: str, config: TrainConfig, data: DataSource) -> dict:
    """The content of config.json: the model's name, its data and its whole config."""
    return {"model": name, "data": data.record(), **dataclasses.asdict(config)}


def read_record(run_dir: str | Path) -> tuple[str, TrainConfig, DataSource]:
    """(model name, config, data source) of a run directory."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a run directory (no {CONFIG_FILE})")
    values = json.loads(path.read_text())
    name = values.pop("model")
    data = DataSource(**values.pop("data", {}))
    if name not in MODELS:
        raise ValueError(f"{path}: unknown model {name!r}")
    return name, config_from_dict(MODELS[name].config, values), data


def read_run_config(run_dir: str | Path) -> tuple[str, TrainConfig]:
    name, config, _ = read_record(run_dir)
    return name, config


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def is_finished(run_dir: str | Path) -> bool:
    """Whether the run trained all its epochs (or stopped early)."""
    ckpt = Path(run_dir) / CHECKPOINT_FILE
    if not ckpt.is_file():
        return False
    meta = read_metadata(ckpt)
    _, config = read_run_config(run_dir)
    return meta["stopped"] or meta["epoch"] >= config.epochs


def default_run_dir(name: str, config: TrainConfig) -> Path:
    """runs/<model>-z<dim>-s<seed>-<time>: a name that says what ran."""
    dim = dataclasses.asdict(config).get("dim_z")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{name}{f'-z{dim}' if dim else ''}-s{config.seed}-{stamp}"


# ---------------------------------------------------------------------------------- models
def build_model(name: str, config: TrainConfig | None = None) -> Model:
    """A fresh model; runs it is built from (M1+M2's M1) are loaded from their directories."""
    return build(name, config, load_run=_load_dependency)


def _load_dependency(run_dir: str) -> Model:
    return load_model(run_dir, "cpu")


def load_model(run_dir: str | Path, device: str | torch.device = "cpu", *, epoch: int | None = None) -> Model:
    """The trained model of a run directory in eval mode: the best validation weights, or with
    `epoch` the snapshot kept after that epoch (see TrainConfig.snapshots)."""
    run_dir = Path(run_dir)
    name, config = read_run_config(run_dir)
    weights = run_dir / (MODEL_FILE if epoch is None else snapshot_file(epoch))
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: the run has no such trained weights")
    model = build_model(name, config).to(device)
    load_weights(model, weights)
    return model.eval()


# ---------------------------------------------------------------------------------- recipes' runs
def run_dir_for(root: str | Path, name: str, config: TrainConfig, data: DataSource, tag: str = "") -> Path:
    """ROOT/models/<model>-<tag>-<hash of config.json>: recipes with the same settings share a run."""
    digest = hashlib.sha256(json.dumps(config_record(name, config, data), sort_keys=True).encode()).hexdigest()[:8]
    return Path(root) / "models" / f"{name}{f'-{tag}' if tag else ''}-{digest}"


def shorter_run(root: str | Path, name: str, config: TrainConfig, data: DataSource) -> Path | None:
    """The finished run under root/models with the longest budget below config.epochs whose
    config.json is otherwise the same, or None. Only for a constant learning rate without early
    stopping: the engine seeds each epoch from (seed, epoch), so training on from its last
    checkpoint gives the weights a run of config.epochs from scratch would (bit-equal on the same
    CPU; a run trained on another device continues from its own weights). With --lr-decay-epochs N
    the candidate is a constant-rate run (no decay of its own) of at most config.epochs − N epochs:
    the epochs before the decay."""
    if config.lr_schedule != "constant" or config.patience:
        return None
    held = config.epochs - config.lr_decay_epochs
    wanted = {**_jsonable(config_record(name, config, data)), "lr_decay_epochs": 0}
    found: list[tuple[int, Path]] = []
    for path in sorted((Path(root) / "models").glob(f"*/{CONFIG_FILE}")):
        try:
            stored = json.loads(path.read_text())
            same = {**stored, "epochs": config.epochs} == wanted
            if (stored["epochs"] < config.epochs and stored["epochs"] <= held and same
                    and is_finished(path.parent) and not read_metadata(path.parent / CHECKPOINT_FILE).get("stopped")):
                found.append((stored["epochs"], path.parent))
        except Exception:  # noqa: BLE001 - a damaged or foreign folder is not a candidate
            continue
    return max(found)[1] if found else None


def continue_from(shorter: Path, out: Path, name: str, config: TrainConfig, data: DataSource) -> None:
    """Make `out` a copy of the finished `shorter` run with `config`'s longer budget, ready to resume."""
    partial = out.with_name(out.name + ".partial")   # copied whole or not at all
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(shorter, partial)
    RunDir(partial, data).write_config(name, config)   # the new budget; resume reads it from there
    (partial / EVAL_FILE).unlink(missing_ok=True)   # the shorter run's evaluation is not this run's
    shutil.rmtree(out, ignore_errors=True)   # a run killed before its first checkpoint: nothing to keep
    partial.rename(out)


def _jsonable(value):
    return json.loads(json.dumps(value))
