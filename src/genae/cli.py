"""The `genae` command.

    genae train --help                 # the models
    genae train cvae --help            # every option, with its default
    genae train cvae --dim-z 2 --epochs 20 --out runs/cvae
    genae eval runs/cvae --iw-samples 1000
    genae sample runs/cvae -n 10 --label 3 --out threes.png
    genae plot runs/cvae reconstruction
    genae run --list                   # the recipes that reproduce the source documents' figures
    genae run manifold --vae.epochs 20
    genae demo
    genae reproduce --quick            # every recipe, small budgets, → runs/quick/report/index.html
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import re
import sys
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import tyro

from genae.data import DataSource
from genae.errors import UserError
from genae.models.config import MAX_SEED
from genae.models.registry import MODELS
from genae.options import Compute, TrainCompute, cli_view
from genae.runtime import configure_process

Common = tyro.conf.OmitArgPrefixes[Compute]
TrainCommon = tyro.conf.OmitArgPrefixes[TrainCompute]
Data = tyro.conf.OmitArgPrefixes[DataSource]


@dataclass
class RunOptions:
    out: Optional[Path] = None
    """Run directory (default: runs/<model>-z<dim>-s<seed>-<time>)."""
    resume: Optional[Path] = None
    """Continue the killed or finished run in this directory with its own options (only --epochs may change)."""
    force: bool = False
    """Start over in an --out that holds a run: its files (weights, metrics, eval, figures) are deleted first."""
    dry_run: bool = False
    """Print the parameter counts of this model's layers and of every --arch, then exit (no training)."""
    compute: TrainCommon = field(default_factory=TrainCompute)
    data: Data = field(default_factory=DataSource)


def _train_command(name: str):
    spec = MODELS[name]
    cls = make_dataclass(f"Train_{name}", [], bases=(RunOptions, cli_view(spec.config)))
    cls.model_name = name
    return Annotated[cls, tyro.conf.subcommand(name, description=spec.summary)]


TrainCommand = Union[tuple(_train_command(name) for name in MODELS)]  # type: ignore[misc]


def train(model: tyro.conf.OmitArgPrefixes[tyro.conf.OmitSubcommandPrefixes[TrainCommand]]):  # type: ignore[valid-type]
    """Train a model into a run directory (config.json, model.safetensors, metrics.jsonl)."""
    return functools.partial(train_command, model)


def train_command(model) -> None:
    from genae.train.trainer import train_model

    name = type(model).model_name
    config_fields = {f.name for f in dataclasses.fields(MODELS[name].config)}
    config = MODELS[name].config(**{k: v for k, v in dataclasses.asdict(model).items() if k in config_fields})
    if model.dry_run:
        print(dry_run_report(name, config))
        return
    typed = typed_options(ARGS)
    if model.resume is not None:
        if model.out is not None and Path(model.out).resolve() != Path(model.resume).resolve():
            raise UserError(f"--out {model.out}: --resume {model.resume} continues that run in place; leave out --out")
        if model.force:
            raise UserError(f"--force with --resume {model.resume}: choose one (continue the run, or start over)")
        given = {k: getattr(model, k) for k in typed & config_fields}
        given |= {k: getattr(model.data, k) for k in typed & {"data_dir", "limit"}}
        out, history = train_model(name, config, model.resume, resume=True, given=given,
                                   device=model.compute.device, quiet=model.compute.quiet,
                                   graphs=model.compute.graphs)
    else:
        out, history = train_model(name, config, model.out, data=model.data, force=model.force,
                                   device=model.compute.device, quiet=model.compute.quiet,
                                   graphs=model.compute.graphs)
    last = history[-1] if history else {}
    print(f"{name}: {len(history)} epochs in {out} (validation loss {last.get('valid', {}).get('loss', float('nan')):.3f})")


def typed_options(args: list[str]) -> set[str]:
    """The option names typed on a command line (`--lr-schedule` → lr_schedule, `--no-x` → x)."""
    names = set()
    for word in args:
        if word.startswith("--") and len(word) > 2:
            name = word[2:].split("=", 1)[0].replace("-", "_")
            names.add(name)
            if name.startswith("no_"):
                names.add(name[3:])
    return names


def dry_run_report(name: str, config) -> str:
    """The parameter tables `genae train MODEL --dry-run` prints."""
    from genae.models.vae import VAEConfig
    from genae.nets import count_parameters
    from genae.rundir import build_model

    model = build_model(name, config)
    lines = [f"{name}: {count_parameters(model):,} parameters"]
    if not isinstance(config, VAEConfig):   # the tables below describe the VAE family's encoder/decoder pairs
        parts = [(part, count_parameters(net)) for part, net in model.named_children()]
        lines += [f"  {part}: {n:,}" for part, n in parts if n]
    else:
        from genae.nets.summary import architecture_table, layer_table

        cond = 10 if model.capabilities.conditional else 0
        sizes = dict(dim_z=config.dim_z, n_hidden=config.n_hidden, n_layers=config.n_layers, cond_dim=cond)
        lines += ["", f"layers of --arch {config.arch}:", layer_table(config.arch, **sizes), "",
                  f"every --arch at dim_z={config.dim_z}, n_hidden={config.n_hidden} (* = this one):",
                  architecture_table(mark=config.arch, **sizes)]
    return "\n".join(lines)


@dataclass
class Eval:
    """Evaluate a run on the test set (ELBO, importance-sampled NLL); writes DIR/eval.json."""

    run_dir: tyro.conf.Positional[Path]
    """Run directory."""
    iw_samples: int = 1000
    """Importance samples K per image for the IWAE bound on the NLL (1 … 100,000)."""
    split: Literal["test", "valid"] = "test"
    """Which split to evaluate."""
    limit: Optional[int] = None
    """Evaluate only the first N images."""
    judge: Literal["auto", "on", "off"] = "auto"
    """Score a conditional model's samples with the reference judge: auto (if cached), on, off."""
    compute: Common = field(default_factory=Compute)

    def __call__(self) -> None:
        from genae.device import resolve_device
        from genae.evaluate import evaluate_run

        result = evaluate_run(self.run_dir, iw_samples=self.iw_samples, split=self.split,
                              device=str(resolve_device(self.compute.device)), limit=self.limit, judge=self.judge,
                              progress=None if not self.compute.quiet else False)
        print(json.dumps(result, indent=2))


SAMPLE_LIMITS = {".png": 1_000, ".npy": 10_000}


def check_std(std: float) -> None:
    if not 0 <= std <= 100:
        raise UserError(f"--std {std}: the scale of z must be in [0, 100]")


@dataclass
class Sample:
    """Draw images from a trained model into a .png grid or a .npy array (N×28×28 in [0, 1])."""

    run_dir: tyro.conf.Positional[Path]
    """Run directory."""
    out: Path
    """Output file: .png (a grid) or .npy (the array)."""
    n: Annotated[int, tyro.conf.arg(aliases=("-n",))] = 64
    """Number of images: at most 1,000 in a .png grid, 10,000 in a .npy array."""
    label: Optional[int] = None
    """Digit to generate (conditional models only; default: labels 0..9 in turn)."""
    seed: int = 0
    """Random seed for the latent draws."""
    std: float = 1.0
    """Scale of z, 0 … 100: z ~ N(0, std²·I) (1 = the prior; 0.1 stays near its mean; 0 decodes z = 0)."""
    compute: Common = field(default_factory=Compute)

    def __call__(self) -> None:
        import numpy as np
        import torch

        from genae.device import resolve_device
        from genae.files import replacing
        from genae.plots.grids import save_grid
        from genae.rundir import load_model

        if self.out.suffix not in (".png", ".npy"):
            raise UserError(f"--out {self.out}: the file must end in .png or .npy")
        most = SAMPLE_LIMITS[self.out.suffix]
        if not 1 <= self.n <= most:
            raise UserError(f"-n {self.n}: a {self.out.suffix} holds 1 to {most:,} images")
        check_std(self.std)
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"--seed {self.seed}: must be in 0..{MAX_SEED}")
        model = load_model(self.run_dir, str(resolve_device(self.compute.device)))
        model.capabilities.require("samples", model.name)
        if self.label is not None:
            if not model.capabilities.conditional:
                raise UserError(f"--label {self.label}: {self.run_dir} holds a {model.name}, "
                                 "which is not conditional")
            if not 0 <= self.label <= 9:
                raise UserError(f"--label {self.label}: labels are 0..9")
        torch.manual_seed(self.seed)
        images = torch.cat([model.sample(len(part), self.label if self.label is not None else part % 10,
                                         std=self.std).cpu() for part in torch.arange(self.n).split(1000)])
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if self.out.suffix == ".npy":
            with replacing(self.out) as tmp:
                np.save(tmp, images[:, 0].numpy())
        else:
            what = f"label {self.label}" if self.label is not None else "samples"
            save_grid(self.out, images, min(10, self.n), f"{model.name.upper()} {what}")
        print(self.out)


@dataclass
class Plot:
    """Write one figure family of a run into DIR/figures/."""

    run_dir: tyro.conf.Positional[Path]
    """Run directory."""
    kind: tyro.conf.Positional[Literal["reconstruction", "samples", "latent"]]
    """reconstruction: test inputs beside reconstructions; samples: decoded z ~ N(0, std²·I), one row
    per label for a conditional model; latent: encoder means coloured by label (t-SNE if dim_z > 2)."""
    std: float = 1.0
    """samples: scale of z (1 = the prior; 0.1 stays near its mean; 0 decodes z = 0)."""
    split: Literal["test", "valid", "train"] = "test"
    """latent: which split to encode."""
    n: Annotated[int, tyro.conf.arg(aliases=("-n",))] = 3000
    """latent: how many images of the split to encode (1 … 10,000)."""
    seed: int = 0
    """Random seed (latent draws, t-SNE)."""
    compute: Common = field(default_factory=Compute)

    def __call__(self) -> None:
        from genae.device import resolve_device
        from genae.plots.figures import plot

        check_std(self.std)
        if not 1 <= self.n <= 10_000:
            raise UserError(f"-n {self.n}: encode 1 to 10,000 images")
        options = {"samples": dict(std=self.std, seed=self.seed),
                   "latent": dict(split=self.split, n=self.n, seed=self.seed)}.get(self.kind, {})
        print(plot(self.run_dir, self.kind, device=str(resolve_device(self.compute.device)), **options))


@dataclass
class Export:
    """Write a run's networks as ONNX files, with manifest.json saying what each expects; each file is
    checked against PyTorch with onnxruntime."""

    run_dir: tyro.conf.Positional[Path]
    """Run directory."""
    out: Path
    """Folder for the .onnx files and manifest.json."""

    def __call__(self) -> None:
        from genae.export import export_run

        manifest = export_run(self.run_dir, self.out)
        for name, net in manifest["networks"].items():
            print(f"{self.out / net['file']}: {name} ({', '.join(net['inputs'])} → {', '.join(net['outputs'])}; "
                  f"largest difference from PyTorch {net['max_abs_difference']:.1e})")


@dataclass
class Explore:
    """See and touch trained models in the browser: latent maps, labels, drawing, completion,
    interpolation, training curves (the networks run in the page, with onnxruntime-web)."""

    runs: tyro.conf.Positional[tuple[Path, ...]]
    """Run directories, or folders searched for them (e.g. runs/demo)."""
    port: int = 8765
    """Local port to serve the page on (0: any free one)."""
    static: Optional[Path] = None
    """Write the page as a folder any static web host can serve, and stop (no server)."""
    browser: bool = True
    """Open the page in the default browser (--no-browser: only print its address)."""
    quiet: bool = False
    """No line per exported run."""

    def __call__(self) -> None:
        import tempfile

        from genae.explorer import build_site, serve

        if self.static is not None:
            print(f"explore: {build_site(list(self.runs), self.static, quiet=self.quiet)}/index.html")
            return
        with tempfile.TemporaryDirectory(prefix="genae-explore-") as tmp:
            serve(build_site(list(self.runs), Path(tmp), quiet=self.quiet), self.port, browser=self.browser)


@dataclass
class Demo:
    """Quick demo on real MNIST: a CVAE and a VAE with a 2-D z, figures and report.md."""

    out: Path = Path("runs/demo")
    """Where the two runs, the figures and the report go (an existing demo is resumed)."""
    epochs: int = 5
    """Epochs per model."""
    iw_samples: int = 100
    """Importance samples per test image for the NLL."""
    compute: TrainCommon = field(default_factory=TrainCompute)
    data: Data = field(default_factory=DataSource)

    def __call__(self) -> None:
        from genae.demo import run_demo

        report = run_demo(self.out, epochs=self.epochs, iw_samples=self.iw_samples, data=self.data,
                          device=self.compute.device, quiet=self.compute.quiet, graphs=self.compute.graphs)
        print(f"report: {report}\nfigures: {report.parent / 'figures'}")


def run(recipe: tyro.conf.Positional[str]) -> None:
    """Run one recipe of the source documents into OUT/<recipe>/ (figures/, results.json, report.md):
    `genae run --list` names them, `genae run RECIPE --help` gives a recipe's options."""


def run_recipe(args: list[str]) -> None:
    """`genae run RECIPE [--setting S] [options]`: the recipe's options at the defaults of setting S."""
    from genae.experiments import RECIPES, SOURCES, recipe_list

    if not args or args[0] in ("-h", "--help", "--list"):
        print("usage: genae run RECIPE [--setting ours|source] [options]   (genae run RECIPE --help)\n\n"
              + recipe_list())
        return
    name, rest = args[0], args[1:]
    if name not in RECIPES:
        raise UserError(f"genae run {name}: no such recipe; `genae run --list` names them")
    recipe = RECIPES[name]
    setting, kept = "ours", []
    for i, word in enumerate(rest):
        if word == "--setting" and i + 1 < len(rest):
            setting = rest[i + 1]
        elif word.startswith("--setting="):
            setting = word.partition("=")[2]
        elif not (i > 0 and rest[i - 1] == "--setting"):
            kept.append(word)
    defaults = recipe.defaults(setting)
    if not recipe.settings:   # a recipe without settings of its own takes "--setting ours" and nothing else
        rest = kept
    with one_line_parse_errors():
        options = tyro.cli(type(defaults), default=defaults, args=rest, prog=f"genae run {name}",
                           description=f"{recipe.summary}. Source: {SOURCES[recipe.source]}.")
    result = recipe.run(options)
    print(f"report: {result.report}\nfigures: {result.report.parent / 'figures'}")


@dataclass
class Reproduce:
    """Run every recipe of the source documents, then write one self-contained HTML report
    (OUT/report/index.html: figures embedded, each table beside the paper's numbers, the command
    and wall time of each). Finished recipes are skipped, so a killed reproduce resumes."""

    quick: bool = False
    """Small budgets: every figure and table exists, the numbers are not the papers' (the default mode)."""
    full: bool = False
    """Every recipe at its defaults, the README's settings (days on 2 CPU cores; docs/speed.md)."""
    out: Optional[Path] = None
    """Root of the runs and the report (default: runs/quick or runs/full)."""
    only: tuple[str, ...] = ()
    """Run only these recipes (names from `genae run --list`); the report covers the same ones."""
    force: bool = False
    """Redo recipes that already finished (their trained models are still reused when unchanged)."""
    report_only: bool = False
    """Train nothing: rebuild the report from the runs already in OUT."""
    gallery: Optional[Path] = None
    """Also copy a few figures, shrunk, into this folder (the README's gallery: docs/gallery)."""
    judge: Literal["auto", "train"] = "auto"
    """auto: use the cached reference judge, training it first only for --full; train: retrain it first."""
    seed: int = 0
    """Seed of every recipe."""
    compute: TrainCommon = field(default_factory=TrainCompute)
    data: Data = field(default_factory=DataSource)

    def __call__(self) -> None:
        from genae.experiments.gallery import write_gallery
        from genae.experiments.reproduce import StepsFailed, reproduce

        if self.quick and self.full:
            raise UserError("--quick and --full: choose one")
        mode = "full" if self.full else "quick"
        out = self.out or Path("runs") / mode
        try:
            report = reproduce(out, mode, only=list(self.only) or None, force=self.force, judge=self.judge,
                               seed=self.seed, data_dir=self.data.data_dir, limit=self.data.limit,
                               device=self.compute.device, quiet=self.compute.quiet, graphs=self.compute.graphs,
                               report_only=self.report_only)
        except StepsFailed as err:
            print(f"genae: {err}", file=sys.stderr)
            sys.exit(1)
        print(f"report: {report}")
        if self.gallery:
            print(f"gallery: {write_gallery(out, self.gallery)}")


def _judge_config():
    from genae.models.judge import JudgeConfig

    return cli_view(JudgeConfig)


@dataclass
class JudgeCommand(_judge_config()):
    """The reference judge (a CNN digit classifier that scores generated images): `genae judge
    train` trains it once into $GENAE_DATA/judge/ with a sha256 of its weights; `genae judge show`
    prints its record (test accuracy, checksum)."""

    action: tyro.conf.Positional[Literal["train", "show"]] = "show"
    """train: (re)train the judge; show: print the cached judge's record."""
    out: Optional[Path] = None
    """Where the judge lives (default: $GENAE_DATA/judge, i.e. ~/.cache/genae/judge)."""
    compute: TrainCommon = field(default_factory=TrainCompute)
    data: Data = field(default_factory=DataSource)

    def __call__(self) -> None:
        from genae.evaluate.judge import load_judge
        from genae.experiments.judge import train_judge
        from genae.models.judge import JudgeConfig

        if self.action == "train":
            names = {f.name for f in dataclasses.fields(JudgeConfig)}
            config = JudgeConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})
            record = train_judge(config, self.out, data=self.data, device=self.compute.device,
                                 quiet=self.compute.quiet, graphs=self.compute.graphs)
        else:
            record = load_judge(self.out).record
        print(json.dumps(record, indent=2))


COMMANDS = {"train": train, "eval": Eval, "sample": Sample, "plot": Plot, "export": Export, "explore": Explore,
            "run": run, "judge": JudgeCommand, "demo": Demo, "reproduce": Reproduce}
ARGS: list[str] = []   # the command line of this call (train compares what was typed with a resumed run)
BOX = "│╭╮╰╯─ "


def _blocks(text: str) -> tuple[list[list[str]], str]:
    """tyro's message box as blocks of text lines (split at its separators), and the box's title. The
    box is drawn with rules (─, │) on a terminal and with dashes elsewhere."""
    blocks: list[list[str]] = [[]]
    title = ""
    for raw in text.splitlines():
        line = raw.strip(BOX)
        if raw.lstrip().startswith("╭"):
            title = line
        elif raw.lstrip().startswith("╰"):
            continue
        elif not line or set(line) <= set(BOX + "-"):
            blocks.append([])
        else:
            blocks[-1].append(line)
    blocks = [b for b in blocks if b]
    if not title and len(blocks) > 1 and len(blocks[0]) == 1:   # without rules the title is a block of its own
        title = blocks[0][0]
    return blocks, title


@contextlib.contextmanager
def one_line_parse_errors():
    """tyro's parse errors (an unknown option, a value of the wrong type) as one line, like every
    other user error: the first paragraph of its message box, without the box."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except SystemExit as stop:
        if stop.code in (0, None):
            raise
        blocks, title = _blocks(captured.getvalue())
        help_hint = ""
        for block in blocks:
            joined = " ".join(block)
            if "For full helptext" in joined:
                help_hint = re.sub(r"^.*?For full helptext, (see|run):?\s*", "", joined)
        body = [b for b in blocks if "For full helptext" not in " ".join(b) and " ".join(b) != title]
        text = " ".join(body[0]).replace("Error parsing ", "") if body else "could not parse the command"
        raise UserError(text + (f" (see {help_hint})" if help_hint else "")) from None
    sys.stderr.write(captured.getvalue())


def main(argv: list[str] | None = None) -> None:
    """`genae …`: user errors end in one line `genae: <file or option>: <what>[; what to do]` and exit 2
    (130 when interrupted); `--debug` anywhere shows the traceback instead."""
    configure_process()  # first: FTZ before any parallel work (every OpenMP worker inherits it), malloc
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    ARGS[:] = args
    try:
        if args[:1] == ["run"]:
            run_recipe(args[1:])
        else:
            with one_line_parse_errors():
                command = tyro.extras.subcommand_cli_from_dict(
                    COMMANDS, prog="genae", args=args,
                    description="Conditional generative autoencoders on MNIST: train, evaluate, sample, plot. "
                                "Add --debug to see the traceback of an error.")
            if command is not None:
                command()
    except UserError as err:
        if debug:
            raise
        print(f"genae: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        print("genae: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:   # `genae … | head`: the reader left; nothing more to say
        sys.stderr.close()
        sys.exit(0)
    except OSError as err:
        if debug or not err.filename:
            raise
        print(f"genae: {err.filename}: {err.strerror}" + ("; choose a path genae may write" if isinstance(
            err, PermissionError) else ""), file=sys.stderr)
        sys.exit(2)
    from genae.train.distributed import end_worker

    end_worker()   # a torchrun worker whose command finished ends here
