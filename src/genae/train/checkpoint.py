"""Run-directory files, each written atomically (write to a temporary name, then rename).

- model.safetensors       the weights of the best validation epoch (what `genae.load` returns)
- checkpoint.safetensors  everything to resume: weights, every optimizer's state, the epoch,
                          early-stopping state. Random numbers need no saved state: the engine
                          reseeds from (seed, epoch, rank) at the start of every epoch.
Non-tensor values travel as JSON in the safetensors metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file

MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"


def atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(tensors, str(tmp), metadata={k: json.dumps(v) for k, v in metadata.items()})
    os.replace(tmp, path)


def read_metadata(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return {k: json.loads(v) for k, v in (f.metadata() or {}).items()}


def save_weights(model: torch.nn.Module, path: Path, **metadata) -> None:
    atomic_save(dict(model.state_dict()), path, metadata)


def load_weights(model: torch.nn.Module, path: Path) -> dict:
    model.load_state_dict(load_file(str(path), device=str(model_device(model))))
    return read_metadata(path)


def model_device(model: torch.nn.Module) -> torch.device:
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
    atomic_save(tensors, path, {"param_groups": groups, "optim_scalars": scalars, **state})


def load_checkpoint(path: Path, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer]) -> dict:
    """Restore weights and optimizers in place; return the other saved state (epoch, …)."""
    meta = read_metadata(path)
    tensors = load_file(str(path), device=str(model_device(model)))
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
