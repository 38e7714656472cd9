"""`genae reproduce`: every recipe, with a quick or a full budget, then one HTML report.

    genae reproduce --quick        # small budgets → runs/quick/report/index.html
    genae reproduce --full         # every recipe at its defaults (the README's numbers) → runs/full/report/index.html

Each step is one recipe with options changed from its defaults (the plan below; a dotted name
changes a model's option, e.g. "m2.epochs"). A step whose results.json exists and whose options
are unchanged (how it runs aside: --device, --quiet, --graphs) is skipped (`--force` redoes it); a killed
reproduce starts again at the step it was in, and that recipe resumes its half-trained models
from their checkpoints. The state lives in OUT/reproduce.json; the report reads only files
(results.json, eval.json, figures/), so `--report-only` rebuilds it at any time.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from genae.errors import UserError
from genae.experiments import RECIPES
from genae.files import read_json, write_json
from genae.train.steps import CaptureFailed

Mode = Literal["quick", "full"]
STATE_FILE = "reproduce.json"


class StepsFailed(RuntimeError):
    """Some steps raised an error; the others ran and the report was written."""


@dataclass(frozen=True)
class Step:
    recipe: str
    quick: dict = field(default_factory=dict)   # option changes for --quick
    full: dict = field(default_factory=dict)    # option changes for --full


# Quick budgets: a few epochs on real MNIST (fewer training images where a model is slow), so that
# every figure and table exists within minutes; their numbers show the method works, not the
# papers' values. Full budgets: each recipe's defaults (the README's settings; the AAEs the
# source's 100 epochs).
PLAN: tuple[Step, ...] = (
    Step("reproduce", {"vae.epochs": 5}, {}),
    Step("denoising", {"vae.epochs": 3}, {}),
    Step("manifold", {"vae.epochs": 5}, {}),
    Step("analogy-random", {"vae.epochs": 5}, {}),
    Step("analogy-image", {"vae.epochs": 5}, {}),
    Step("beta", {"vae.epochs": 5}, {}),
    Step("sigma", {"vae.epochs": 2, "seeds": (0, 1)}, {}),
    Step("architectures", {"vae.epochs": 2, "data.limit": 5000, "iw_samples": 20, "judge_samples": 200,
                           "tsne_images": 1000}, {}),
    Step("likelihood", {"vae.epochs": 3, "data.limit": 10000, "iw_samples": 50}, {}),
    Step("semisupervised", {"n_labels": (100,), "seeds": (0,), "m1.epochs": 3, "m2.epochs": 3, "m2.lr_decay_epochs": 0,
                            "m1m2.epochs": 3, "data.limit": 20000}, {}),
    Step("aae", {"aae.epochs": 5, "data.limit": 10000, "guided_labels": 2000, "parzen_samples": 2000,
                 "n_images": 2000}, {"aae.epochs": 100}),
    Step("aae-semisupervised", {"n_labels": (100, 1000), "seeds": (0,), "aae.epochs": 5, "aae.precision": "fp32",
                                "data.limit": 10000}, {"n_labels": (100, 1000, 0)}),
    Step("quadrants", {"baseline.epochs": 4, "cvae.epochs": 4, "data.limit": 5000}, {}),
)
PREFIXLESS = ("compute", "data")   # nested options whose flags carry no prefix (--device, --limit)


def with_changes(options, changes: dict):
    """`options` with `changes` applied; a dotted name ("m2.epochs") changes a nested config."""
    top: dict = {}
    nested: dict[str, dict] = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            top[key] = value
    for head, sub in nested.items():
        top[head] = dataclasses.replace(getattr(options, head), **sub)
    return dataclasses.replace(options, **top)


def step_options(step: Step, mode: Mode, out: Path, common: dict) -> object:
    """The recipe's options object: its defaults, the plan's changes for `mode`, then `common`
    (seed, device, data directory, quiet, and a --limit that caps the plan's own)."""
    changes = dict(step.quick if mode == "quick" else step.full)
    changes["out"] = Path(out)
    for key, value in common.items():
        if value is None:
            continue
        if key == "data.limit" and changes.get("data.limit") is not None:
            value = min(value, changes["data.limit"])
        changes[key] = value
    return with_changes(RECIPES[step.recipe].defaults(), changes)


def equivalent_command(step: Step, options) -> str:
    """`genae run RECIPE ...` with every option that differs from the recipe's default."""
    words = ["genae", "run", step.recipe] + _flags(options, RECIPES[step.recipe].defaults(), "")
    return " ".join(shlex.quote(w) for w in words)


def _flags(options, defaults, prefix: str) -> list[str]:
    words: list[str] = []
    for f in dataclasses.fields(options):
        value, default = getattr(options, f.name), getattr(defaults, f.name)
        if f.name == "quiet" or value == default:
            continue
        if dataclasses.is_dataclass(value):
            words += _flags(value, default, "" if f.name in PREFIXLESS else f"{prefix}{f.name}.")
            continue
        flag = "--" + prefix + f.name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else f"--{prefix}no-" + f.name.replace("_", "-"))
        elif isinstance(value, (tuple, list)):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return words


def _jsonable(options) -> dict:
    return _jsonable_value(dataclasses.asdict(options))


def _jsonable_value(value):
    return json.loads(json.dumps(value, default=str))


HOW_TO_RUN = "compute"   # device, quiet, graphs: how a step runs, not what it computes


def same_options(recorded: dict | None, options) -> bool:
    """Whether a step recorded with `recorded` ran with `options`, the compute options (device,
    --quiet, --graphs) aside. An option the recipe gained after the step was recorded matches at its
    default, so adding an option does not redo finished steps."""
    if recorded is None:
        return False
    recorded = {k: v for k, v in recorded.items() if k != HOW_TO_RUN}
    now, defaults = _jsonable(options), _jsonable(type(options)())
    return _same(recorded, {k: v for k, v in now.items() if k != HOW_TO_RUN}, defaults)


def _same(recorded: dict, now: dict, defaults: dict) -> bool:
    """`same_options` at one level of the options, and in the nested ones (a model's config gains options too)."""
    later = {k for k in now.keys() - recorded.keys() if k in defaults and defaults[k] == now[k]}
    if recorded.keys() != now.keys() - later:
        return False
    return all(_same(old, now[k], defaults.get(k) or {}) if isinstance(old, dict) and isinstance(now[k], dict)
               else old == now[k] for k, old in recorded.items())


def results_file(options, recipe: str) -> Path:
    return Path(options.out) / recipe / "results.json"


def read_state(out: Path) -> dict:
    path = Path(out) / STATE_FILE
    return read_json(path) if path.is_file() else {"steps": {}}


def _write_state(out: Path, state: dict) -> None:
    write_json(Path(out) / STATE_FILE, state)


def reproduce(out: Path, mode: Mode = "quick", *, only: Optional[list[str]] = None, force: bool = False,
              judge: Literal["auto", "train"] = "auto", seed: int = 0, data_dir: Optional[str] = None,
              limit: Optional[int] = None, device: str = "auto", quiet: bool = False, graphs: bool = True,
              report_only: bool = False) -> Path:
    """Run the plan's steps (all, or `only`) into `out`, then write out/report/index.html."""
    from genae.experiments.html_report import write_report

    out = Path(out)
    unknown = sorted(set(only or ()) - {s.recipe for s in PLAN})
    if unknown:
        raise UserError(f"--only {' '.join(unknown)}: no such recipe; choose from {', '.join(s.recipe for s in PLAN)}")
    out.mkdir(parents=True, exist_ok=True)
    state = read_state(out)
    if state.get("mode", mode) != mode:
        raise UserError(f"{out} holds a --{state['mode']} reproduction; use another --out for --{mode}")
    state["mode"] = mode
    if not report_only:
        state["cwd"] = str(Path.cwd())   # the paths recipes record are relative to it
    steps = [s for s in PLAN if not only or s.recipe in only]
    if not report_only:
        _maybe_train_judge(judge, mode, data_dir, device, quiet, graphs)
        common = {"seed": seed, "data.data_dir": data_dir, "data.limit": limit, "compute.device": device,
                  "compute.quiet": quiet, "compute.graphs": graphs}
        for i, step in enumerate(steps, 1):
            options = step_options(step, mode, out, common)
            record = state["steps"].get(step.recipe, {})
            done = same_options(record.get("options"), options) and results_file(options, step.recipe).is_file()
            if done and not force:
                _say(quiet, f"[{i}/{len(steps)}] {step.recipe}: done earlier, skipped (--force redoes it)")
                continue
            command = equivalent_command(step, options)
            _say(quiet, f"[{i}/{len(steps)}] {step.recipe}: {command}")
            results_file(options, step.recipe).unlink(missing_ok=True)   # a redo is not 'done' until it ends
            state["steps"][step.recipe] = {"options": _jsonable(options), "command": command, "status": "running"}
            _write_state(out, state)
            start = time.perf_counter()
            try:
                RECIPES[step.recipe].run(options)
            except CaptureFailed:   # CUDA's state after a failed capture is not to be trusted: stop here
                raise
            except Exception as err:   # one failed recipe must not cost the others (a full run takes days)
                state["steps"][step.recipe].update(status=f"failed: {type(err).__name__}: {err}")
                _write_state(out, state)
                _say(quiet, f"[{i}/{len(steps)}] {step.recipe} failed: {err}")
                continue
            state["steps"][step.recipe].update(status="done", wall_seconds=round(time.perf_counter() - start, 1))
            _write_state(out, state)
    report = write_report(out, state, [s.recipe for s in steps])
    failed = [s.recipe for s in steps if state["steps"].get(s.recipe, {}).get("status", "").startswith("failed")]
    if failed:
        raise StepsFailed(f"{', '.join(failed)} failed (see {out / STATE_FILE}); the report {report} shows the rest")
    return report


def _maybe_train_judge(judge: str, mode: Mode, data_dir, device: str, quiet: bool, graphs: bool) -> None:
    """--judge train, or --full with no cached judge: train the reference judge first."""
    from genae.data import DataSource
    from genae.evaluate.judge import JUDGE_FILE, judge_dir
    from genae.experiments.judge import train_judge

    cached = (judge_dir() / JUDGE_FILE).is_file()
    if judge == "train" or (judge == "auto" and mode == "full" and not cached):
        _say(quiet, "judge: training the reference judge (genae judge train)")
        train_judge(data=DataSource(data_dir=data_dir), device=device, quiet=quiet, graphs=graphs)
    elif not cached:
        _say(quiet, "judge: none cached, so judge scores are left out (`genae judge train` adds them)")


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)
