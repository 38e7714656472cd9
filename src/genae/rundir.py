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
Every file is written whole and renamed into place (genae.files). One process at a time owns a run
directory (`owned`: an OS lock on its `.lock` file, released on any exit). A file that cannot be
read, or does not fit its run, is a `UserError` naming it.

    model = load_model("runs/cvae")
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from genae.data import DataSource
from genae.errors import UserError
from genae.files import append_line, replacing, write_json, write_text
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


LOCK_FILE = ".lock"
RUN_FILES = (CONFIG_FILE, MODEL_FILE, CHECKPOINT_FILE, METRICS_FILE, EVAL_FILE)
"""The files that make a directory hold a run (with snapshots and figures/, cleared by --force)."""
RESUMABLE = ("epochs",)
"""Options a resumed run may change (recorded in its config.json): more epochs extend it."""


# ---------------------------------------------------------------------------------- files
def _save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with replacing(path) as tmp:
        save_file(tensors, str(tmp), metadata={k: json.dumps(v) for k, v in metadata.items()})


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn a damaged or unreadable safetensors file into a UserError naming it."""
    try:
        yield
    except (SafetensorError, json.JSONDecodeError, OSError, KeyError) as err:
        raise UserError(f"{path}: damaged or not a genae safetensors file ({type(err).__name__}: {err}); restore "
                        "it, or train the run again") from err


def read_metadata(path: Path) -> dict:
    with _reading(path), safe_open(str(path), framework="pt") as f:
        return {k: json.loads(v) for k, v in (f.metadata() or {}).items()}


def save_weights(model: torch.nn.Module, path: Path, **metadata) -> None:
    _save_tensors(dict(model.state_dict()), Path(path), metadata)


def _load_state(model: torch.nn.Module, state: dict, path: Path) -> None:
    """load_state_dict, or a UserError saying the file and the run's config.json do not fit together."""
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise UserError(f"{path}: its tensors do not fit the model {Path(path).parent / CONFIG_FILE} describes "
                        f"({first}); was config.json edited? Restore it, or train the run again") from err


def load_weights(model: torch.nn.Module, path: Path) -> dict:
    with _reading(path):
        state = load_file(str(path), device=str(_device(model)))
    _load_state(model, state, path)
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
    with _reading(path):
        tensors = load_file(str(path), device=str(_device(model)))
    _load_state(model, {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}, path)
    if set(optimizers) != set(meta.get("param_groups", {})):
        raise UserError(f"{path}: holds the optimizers {sorted(meta.get('param_groups', {}))}, the model trains "
                        f"{sorted(optimizers)}; was config.json edited? Restore it, or train the run again")
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
        try:
            opt.load_state_dict({"state": per_param, "param_groups": meta["param_groups"][name]})
        except (ValueError, KeyError) as err:
            raise UserError(f"{path}: the optimizer state of phase '{name}' does not fit the model ({err}); was "
                            "config.json edited? Restore it, or train the run again") from err
    return {k: v for k, v in meta.items() if k not in ("param_groups", "optim_scalars")}


# ---------------------------------------------------------------------------------- one run
class RunDir:
    """One run directory and the data it was trained on."""

    def __init__(self, path: str | Path, data: DataSource | None = None):
        self.path = Path(path)
        self.data = data if data is not None else DataSource()

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
        append_line(self.metrics, json.dumps(line))

    def truncate_metrics(self, epoch: int) -> None:
        """Drop lines of epochs after the checkpoint (a run killed after logging, before saving)."""
        if self.metrics.is_file():
            kept = [line for line in read_metrics(self.path) if line["epoch"] <= epoch]
            write_text(self.metrics, "".join(json.dumps(line) + "\n" for line in kept))

    def holds_run(self) -> bool:
        """Whether the directory holds (part of) a run: any of its files."""
        return any((self.path / name).exists() for name in RUN_FILES) or any(self.path.glob("model-epoch*.safetensors"))

    def clear(self) -> None:
        """Delete the run's files (--force): config, weights, checkpoint, metrics, eval, snapshots, figures."""
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        for snapshot in self.path.glob("model-epoch*.safetensors"):
            snapshot.unlink()
        if self.figures.is_symlink():
            self.figures.unlink()
        elif self.figures.is_dir():
            shutil.rmtree(self.figures)

    def save_best(self, model: Model, epoch: int) -> None:
        save_weights(model, self.best_weights, model_name=model.name, epoch=epoch)

    def save_snapshot(self, model: Model, epoch: int) -> None:
        save_weights(model, self.path / snapshot_file(epoch), model_name=model.name, epoch=epoch)

    def write_eval(self, result: dict) -> Path:
        return write_json(self.path / EVAL_FILE, result)


def config_record(name: str, config: TrainConfig, data: DataSource) -> dict:
    """The content of config.json: the model's name, its data and its whole config."""
    return {"model": name, "data": data.record(), **dataclasses.asdict(config)}


def read_record(run_dir: str | Path) -> tuple[str, TrainConfig, DataSource]:
    """(model name, config, data source) of a run directory."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{path}: not a run directory (no {CONFIG_FILE})")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err}); restore it, or train the run again") from err
    if not isinstance(values, dict) or not isinstance(values.get("model"), str):
        raise UserError(f"{path}: not a genae config (no \"model\" name); restore it, or train the run again")
    name = values.pop("model")
    if name not in MODELS:
        raise UserError(f"{path}: unknown model {name!r}; genae knows {', '.join(MODELS)}")
    data = values.pop("data", {})
    if not isinstance(data, dict) or set(data) - {"data_dir", "limit"}:
        raise UserError(f"{path}: \"data\" must hold data_dir and limit, found {data!r}")
    try:
        return name, config_from_dict(MODELS[name].config, values), DataSource(**data)
    except UserError as err:
        raise UserError(f"{path}: {err}") from err


def read_run_config(run_dir: str | Path) -> tuple[str, TrainConfig]:
    name, config, _ = read_record(run_dir)
    return name, config


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: line {number} is not JSON ({err.msg}); delete that line, or train the run "
                            "again") from err
        if not isinstance(entry, dict) or not isinstance(entry.get("epoch"), int):
            raise UserError(f"{path}: line {number} has no epoch number; delete that line, or train the run again")
        lines.append(entry)
    return lines


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
    return build(name, config, load_run=load_dependency)


def load_dependency(run_dir: str) -> Model:
    """A run another model is built from (M1+M2's M1) or takes weights from (Sohn's baseline), on the CPU."""
    return load_model(run_dir, "cpu")


def load_model(run_dir: str | Path, device: str | torch.device = "cpu", *, epoch: int | None = None) -> Model:
    """The trained model of a run directory in eval mode: the best validation weights, or with
    `epoch` the snapshot kept after that epoch (see TrainConfig.snapshots)."""
    run_dir = Path(run_dir)
    name, config = read_run_config(run_dir)
    weights = run_dir / (MODEL_FILE if epoch is None else snapshot_file(epoch))
    if not weights.is_file():
        raise UserError(f"{weights}: the run has no such trained weights")
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
    """Make `out` (owned by the caller) a copy of the finished `shorter` run with `config`'s longer
    budget, ready to resume. The checkpoint is copied last: a copy killed half-way has none, so it is
    not taken for a run to resume."""
    run = RunDir(out, data)
    run.clear()
    names = [n for n in (MODEL_FILE, METRICS_FILE, CHECKPOINT_FILE) if (shorter / n).is_file()]
    for snapshot in sorted(shorter.glob("model-epoch*.safetensors")):
        names.insert(0, snapshot.name)
    run.write_config(name, config)   # the new budget; resume reads it from there
    for n in names:   # not the shorter run's eval.json or figures: they are not this run's
        with replacing(out / n) as tmp:
            shutil.copyfile(shorter / n, tmp)


def _jsonable(value):
    return json.loads(json.dumps(value))


# ---------------------------------------------------------------------------------- ownership
_HELD: dict[Path, tuple[int, int]] = {}   # run directory → (lock file descriptor, times taken) in this process


@contextlib.contextmanager
def owned(run_dir: str | Path) -> Iterator[Path]:
    """Hold the run directory (created if needed) for this process: an exclusive `flock` on its
    .lock file, which names the holder. Another process asking for it gets a UserError naming that
    holder at once. Re-entrant within a process; released when the block ends or the process dies."""
    path = Path(run_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{path}: cannot create the run directory ({err.strerror}); choose another --out") from err
    key = path.resolve()
    if key in _HELD:
        fd, count = _HELD[key]
        _HELD[key] = (fd, count + 1)
    else:
        lock = path / LOCK_FILE
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            why = "a link" if err.errno == errno.ELOOP else err.strerror
            raise UserError(f"{lock}: cannot open the run's lock file ({why}); choose another --out") from err
        for attempt in range(20):   # holder()'s probe takes the lock for an instant: try again a moment later
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 19:
                    who = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                    os.close(fd)
                    raise UserError(f"{path}: in use by {who}; wait for it to finish, or choose another --out") from None
                time.sleep(0.01)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"genae process {os.getpid()} (since {time.strftime('%Y-%m-%d %H:%M:%S')})\n".encode(), 0)
        _HELD[key] = (fd, 1)
    try:
        yield path
    finally:
        fd, count = _HELD[key]
        if count > 1:
            _HELD[key] = (fd, count - 1)
        else:
            del _HELD[key]
            os.ftruncate(fd, 0)
            os.close(fd)   # closing releases the lock


def holder(run_dir: str | Path) -> str | None:
    """Who owns the run directory now (another process's description), or None; creates nothing."""
    lock = Path(run_dir) / LOCK_FILE
    if Path(run_dir).resolve() in _HELD or not lock.is_file() or lock.is_symlink():
        return None
    fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
    finally:
        os.close(fd)


def check_free(run_dir: str | Path) -> None:
    """A UserError naming the holder when another process owns the run directory."""
    if (who := holder(run_dir)) is not None:
        raise UserError(f"{run_dir}: in use by {who}; wait for it to finish, or choose another --out")


def resumed_config(run_dir: str | Path, name: str, given: dict) -> tuple[TrainConfig, DataSource]:
    """The config and data a resumed run continues with: its own, except for the options of RESUMABLE
    that `given` (the options typed on the command line: config fields, data_dir, limit) changes. Any
    other option that differs from the run's is refused, each named."""
    stored_name, config, stored_data = read_record(run_dir)
    if stored_name != name:
        raise UserError(f"--resume {run_dir}: holds a {stored_name!r} run, not {name!r}")
    stored = {**dataclasses.asdict(config), **dataclasses.asdict(stored_data)}
    differ = [k for k, v in given.items() if k in stored and _jsonable(v) != _jsonable(stored[k])]
    refused = [k for k in differ if k not in RESUMABLE]
    if refused:
        shown = ", ".join(f"--{k.replace('_', '-')} {given[k]} (the run's: {stored[k]})" for k in refused)
        raise UserError(f"--resume {run_dir}: {shown}: a run continues with its own options; only "
                        f"{', '.join('--' + k for k in RESUMABLE)} may change (start a new run with another --out)")
    return dataclasses.replace(config, **{k: given[k] for k in differ if k in RESUMABLE}), stored_data
