"""`genae reproduce`: every recipe, with a quick or a full budget, then one HTML report.

    genae reproduce --quick        # ~20 minutes on 2 CPU cores → runs/quick/report/index.html
    genae reproduce --full         # the papers' budgets (days on 2 CPU cores) → runs/full/report/index.html

Each step is one recipe with options changed from its defaults (the plan below). A step whose
results.json exists and whose options are unchanged is skipped (`--force` redoes it); a killed
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

from genae.experiments import RECIPES

Mode = Literal["quick", "full"]
STATE_FILE = "reproduce.json"


class StepsFailed(RuntimeError):
    """Some steps raised an error; the others ran and the report was written."""


@dataclass(frozen=True)
class Step:
    recipe: str
    quick: dict = field(default_factory=dict)   # option changes for --quick
    full: dict = field(default_factory=dict)    # option changes for --full
    full_hours: float = 0.0                     # expected wall time of the full step on 2 CPU cores


# Quick budgets: a few epochs on real MNIST (fewer training images where a model is slow), so that
# every figure and table exists within ~20 minutes; their numbers show the method works, not the
# papers' values. Full budgets: the source documents' own settings.
PLAN: tuple[Step, ...] = (
    Step("reproduce", {"epochs": 5}, {}, 0.1),
    Step("denoising", {"epochs": 3}, {}, 0.2),
    Step("manifold", {"epochs": 5}, {}, 0.0),
    Step("analogy-random", {"epochs": 5}, {}, 0.0),
    Step("analogy-image", {"epochs": 5}, {}, 0.0),
    Step("beta", {"epochs": 5}, {}, 0.1),
    Step("sigma", {"epochs": 2, "seeds": (0, 1)}, {}, 0.1),
    Step("architectures", {"epochs": 2, "limit": 5000, "iw_samples": 20, "judge_samples": 200,
                           "tsne_images": 1000}, {}, 1.2),
    Step("semisupervised", {"n_labels": (100,), "seeds": (0,), "epochs": 10, "m1_epochs": 10, "limit": 20000},
         {}, 20.0),
    Step("aae", {"epochs": 5, "limit": 10000, "guided_labels": 2000, "parzen_samples": 2000, "n_images": 2000},
         {"epochs": 100}, 3.5),
    Step("aae-semisupervised", {"n_labels": (100, 1000), "epochs": 5, "limit": 10000}, {"seeds": (0, 1, 2)}, 8.5),
    Step("quadrants", {"epochs": 4, "limit": 5000}, {}, 1.5),
)
FULL_HOURS = sum(step.full_hours for step in PLAN)


def step_options(step: Step, mode: Mode, out: Path, common: dict) -> object:
    """The recipe's options object: its defaults, the plan's changes for `mode`, then `common`
    (seed, device, data directory, quiet, and a --limit that caps the plan's own)."""
    recipe = RECIPES[step.recipe]
    changes = dict(step.quick if mode == "quick" else step.full)
    default_out = Path(recipe.options.__dataclass_fields__["out"].default)
    changes["out"] = Path(out) / default_out.name
    for key, value in common.items():
        if value is None:
            continue
        if key == "limit" and changes.get("limit") is not None:
            value = min(value, changes["limit"])
        changes[key] = value
    return recipe.options(**changes)


def equivalent_command(step: Step, options) -> str:
    """`genae run RECIPE ...` with every option that differs from the recipe's default."""
    defaults = RECIPES[step.recipe].options()
    words = ["genae", "run", step.recipe]
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if value == getattr(defaults, f.name) or f.name == "quiet":
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif isinstance(value, (tuple, list)):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return " ".join(shlex.quote(w) for w in words)


def _jsonable(options) -> dict:
    return _jsonable_value(dataclasses.asdict(options))


def _jsonable_value(value):
    return json.loads(json.dumps(value, default=str))


def same_options(recorded: dict | None, options) -> bool:
    """Whether a step recorded with `recorded` ran with `options`. An option the recipe gained after the
    step was recorded matches at its default, so adding an option does not redo finished steps."""
    if recorded is None:
        return False
    now = _jsonable(options)
    defaults = {f.name: f.default for f in dataclasses.fields(options)}
    later = {k for k in now.keys() - recorded.keys() if _jsonable_value(defaults[k]) == now[k]}
    return {k: v for k, v in now.items() if k not in later} == recorded


def results_file(options, recipe: str) -> Path:
    return Path(options.out) / recipe / "results.json"


def read_state(out: Path) -> dict:
    path = Path(out) / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {"steps": {}}


def _write_state(out: Path, state: dict) -> None:
    path = Path(out) / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


def reproduce(out: Path, mode: Mode = "quick", *, only: Optional[list[str]] = None, force: bool = False,
              judge: Literal["auto", "train"] = "auto", seed: int = 0, data_dir: Optional[str] = None,
              limit: Optional[int] = None, device: str = "auto", quiet: bool = False,
              report_only: bool = False) -> Path:
    """Run the plan's steps (all, or `only`) into `out`, then write out/report/index.html."""
    from genae.experiments.html_report import write_report

    out = Path(out)
    unknown = sorted(set(only or ()) - {s.recipe for s in PLAN})
    if unknown:
        raise ValueError(f"--only {' '.join(unknown)}: no such recipe; choose from {', '.join(s.recipe for s in PLAN)}")
    out.mkdir(parents=True, exist_ok=True)
    state = read_state(out)
    if state.get("mode", mode) != mode:
        raise ValueError(f"{out} holds a --{state['mode']} reproduction; use another --out for --{mode}")
    state["mode"] = mode
    if not report_only:
        state["cwd"] = str(Path.cwd())   # the paths recipes record are relative to it
    steps = [s for s in PLAN if not only or s.recipe in only]
    if not report_only:
        _maybe_train_judge(judge, mode, data_dir, device, quiet)
        common = {"seed": seed, "data_dir": data_dir, "limit": limit, "device": device, "quiet": quiet}
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


def _maybe_train_judge(judge: str, mode: Mode, data_dir, device: str, quiet: bool) -> None:
    """--judge train, or --full with no cached judge: train the reference judge first (~6 min)."""
    from genae.evaluate.judge import JUDGE_FILE, judge_dir, train_judge
    from genae.models.judge import JudgeConfig

    cached = (judge_dir() / JUDGE_FILE).is_file()
    if judge == "train" or (judge == "auto" and mode == "full" and not cached):
        _say(quiet, "judge: training the reference judge (genae judge train)")
        train_judge(JudgeConfig(data_dir=data_dir), device=device, quiet=quiet)
    elif not cached:
        _say(quiet, "judge: none cached, so judge scores are left out (`genae judge train`, ~6 min, adds them)")


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)
