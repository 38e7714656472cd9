"""What every recipe shares: its options (common ones, and its models' own configs), training (or
reusing) a model run, the recipe's folder, its report.

A recipe writes into `<root>/<recipe>/`: `figures/*.png`, `results.json` (every number) and
`report.md` (the numbers as tables beside the source's, the figures, the command, the wall time).
Trained models live in `<root>/models/<model>-<what>-<hash of the config>/` (genae.rundir), so
recipes with the same training settings share one run, and a rerun (or a killed run) resumes.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import tyro

from genae.data import DataSource
from genae.data.mnist import MNIST
from genae.device import resolve_device
from genae.files import write_json, write_text
from genae.models.config import TrainConfig
from genae.options import TrainCompute, base_class, cli_view
from genae.rundir import read_metrics
from genae.train.trainer import trained


@dataclass
class RecipeOptions:
    """Options every recipe has; each recipe's options class adds its own and its models' configs."""

    out: Path = Path("runs/recipes")
    """Root folder: <recipe>/ (figures/, results.json, report.md) and models/ (trained runs, shared
    by every recipe with the same settings)."""
    seed: int = 0
    """Seeds training and every random choice in the figures: a rerun gives the same figure."""
    compute: tyro.conf.OmitArgPrefixes[TrainCompute] = field(default_factory=TrainCompute)
    data: tyro.conf.OmitArgPrefixes[DataSource] = field(default_factory=DataSource)


def model_options(cls: type[TrainConfig], *set_by_recipe: str, **defaults):
    """A dataclass field holding a model config of class `cls` with `defaults`; the fields named in
    `set_by_recipe` (the recipe sets them per run) are left out of --help."""
    view = cli_view(cls, hidden=set_by_recipe)
    return field(default_factory=lambda: view(**defaults))


def as_config(options: TrainConfig, **changes) -> TrainConfig:
    """A model config of the model's own class (not the command line's view of it), with `changes`."""
    cls = base_class(options)
    return cls(**{**{f.name: getattr(options, f.name) for f in dataclasses.fields(cls)}, **changes})


def schedule_words(config: TrainConfig) -> str:
    """The learning-rate path in a report's words: 'constant', 'cosine', or 'constant, cosine decay over
    the last N epochs'."""
    if config.lr_decay_epochs:
        return f"{config.lr_schedule}, cosine decay over the last {config.lr_decay_epochs} epochs"
    return config.lr_schedule


@dataclass
class RecipeResult:
    report: Path
    numbers: dict
    arrays: dict  # the tensors behind the figures, for tests and notebooks


def recipe_start(opts: RecipeOptions, recipe: str, title: str) -> tuple[str, "Report", MNIST]:
    """What a recipe needs first: the resolved device, its report in OUT/<recipe>/, and MNIST (the
    first --limit images of each split when given)."""
    return str(resolve_device(opts.compute.device)), Report(recipe, title, Path(opts.out) / recipe), opts.data.load()


def train(opts: RecipeOptions, name: str, config: TrainConfig, *, tag: str = "") -> Path:
    """The recipe's run of `name` with `config`, trained if needed (genae.train.trainer.trained)."""
    return trained(opts.out, name, as_config(config), opts.data, tag=tag, device=str(resolve_device(opts.compute.device)),
                   quiet=opts.compute.quiet, graphs=opts.compute.graphs)


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
        write_json(self.folder / "results.json", result)
        head = [f"# {self.title}", "", f"Command: `{command}` — wall time {wall:.0f} s (training included only for models "
                f"not already trained; each run's own training time is below). Machine: {result['machine']}.", "",
                "| run | directory | epochs | training time (sum of epochs) |", "|---|---|---|---|"]
        head += [f"| {k} | `{v}` | {trainings[k]['epochs']} | {trainings[k]['train_seconds']:.0f} s |"
                 for k, v in runs.items()] + [""]
        path = self.folder / "report.md"
        write_text(path, "\n".join(head) + "\n" + "\n\n".join(self.sections + self.figure_sections) + "\n")
        return path


def _training_summary(run: Path) -> dict:
    history = read_metrics(run)
    return {"epochs": len(history), "train_seconds": round(sum(h["train_seconds"] for h in history), 1)}


def format_cell(value) -> str:
    """How a number is shown in every report table (markdown and HTML alike)."""
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)
