"""The reproduction report: one self-contained HTML file (figures embedded as PNG data URIs).

It is generated only from files: each recipe's results.json (its tables, numbers, figures, the
runs it used), each run's eval.json, and OUT/reproduce.json (the commands, options, wall times).
No number is typed here. Every number cell carries its exact value in `data-value`, so a test can
check the page against the files it came from. Printing the page from a browser gives a PDF.
"""

from __future__ import annotations

import base64
import html
import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

import torch

from genae.experiments import RECIPES, SOURCES
from genae.experiments.common import format_cell
from genae.files import write_text

REPORT_DIR = "report"

SECTIONS = {   # source (genae.experiments.SOURCES) → section title
    "TF CVAE": "Conditional VAE vs VAE on MNIST (after Kingma et al. 2014's M2 with every label)",
    "TF VAE concepts": "β-VAE and the encoder's standard deviation",
    "CVAE architectures": "CVAE architectures (3 FC, 2 CNN, 3 CNN)",
    "Burda et al. 2016": "The VAE's test log-likelihood (Burda et al. 2016)",
    "Kingma et al. 2014": "Semi-supervised M1, M2, M1+M2 (Kingma et al. 2014)",
    "TF AAE": "Adversarial autoencoders (Makhzani et al. 2015)",
    "Pyro CVAE": "Sohn et al. 2015's CVAE for structured output prediction",
}

SOURCE_SHOWED = {   # what each source document showed for the recipe's figures (their images are not ours to copy)
    "reproduce": "Input | CVAE | VAE reconstructions after epoch 1 and epoch 20 (dim z = 2): the CVAE, which "
                 "also sees the label, reproduces the inputs better than the VAE.",
    "denoising": "Original | salt-and-pepper input | restored by the CVAE | restored by the VAE.",
    "manifold": "The learned MNIST manifold (Kingma et al.'s Fig. 1a): a 2-D z-grid decoded with the label fixed "
                "to 2, 3 and 4 — the style varies smoothly, the digit stays.",
    "analogy-random": "Analogies (Fig. 1b): the leftmost column holds images from random z-vectors; each row keeps "
                      "that z and changes the label.",
    "analogy-image": "A test digit is encoded to z; the same z decoded with each label gives all ten digits in the "
                     "test digit's style.",
    "beta": "β = 0: codes spread far apart, good reconstructions, poor samples. β = 200: every code at the prior, "
            "no clusters, blurry images. β = 12: clusters packed densely.",
    "sigma": "z = μ + σ ⊙ ε with σ = exp(½ log σ²) is 'less stable' than σ = log(1 + exp(ρ)); no numbers given.",
    "architectures": "Reconstructions (3 CNN), digits generated at std 0.1, and 2-D latent spaces of CVAE and VAE; "
                     "the 3 FC model 'behaves very well as a generative model'. No likelihoods given.",
    "semisupervised": "Test error with 100 / 600 / 1000 / 3000 labels (paper, Table 1): M2 11.97 / 4.94 / 3.60 / "
                      "3.92 %, M1+M2 3.33 / 2.59 / 2.40 / 2.18 %.",
    "aae": "Codes of the test set beside samples of the prior (Gaussian; mixture of 10 Gaussians), the learned "
           "manifold, label-guided mixtures with all labels and with 10k labels, supervised style grids for code "
           "dim 2 and 10. Paper: Parzen log-likelihood 340 ± 2.",
    "aae-semisupervised": "Paper (Table 2): 1.90 / 1.60 / 0.85 % test error with 100 / 1000 / all labels; the "
                          "AAE source shows the architecture and trains the classification phase every tenth step "
                          "with 1000 labels, without a number.",
    "likelihood": "Burda et al. 2016, Table 1: a VAE of this size reaches −log p(x) ≈ 86.76 nats (K = 5000) after "
                  "3280 epochs.",
    "quadrants": "Input | truth | NN baseline | CVAE samples: the baseline is blurry, CVAE samples are sharp and "
                 "diverse. CLL (nats): NN 100.4 / 61.9 / 25.4, CVAE 71.8 / 51.0 / 24.2 for 1 / 2 / 3 quadrants.",
}

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #aaa; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f4f4f4; padding: 0 0.2em; word-break: break-word; }
.side { display: flex; gap: 1.5em; align-items: flex-start; }
.source { flex: 0 0 28%; background: #f7f7ee; border-left: 4px solid #bb9; padding: 0.5em 0.8em; }
.ours { flex: 1; display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; max-width: 100%; } figure img { max-width: 100%; max-height: 520px; }
figcaption { font-size: 0.85em; color: #555; max-width: 480px; }
.missing { color: #a00; }
@media print { .side { display: block; } figure { break-inside: avoid; } h2 { break-before: page; } }
"""


def write_report(out: Path, state: dict, recipes: list[str]) -> Path:
    """Write OUT/report/index.html for `recipes` (in the plan's order) and return its path."""
    out = Path(out)
    steps = state.get("steps", {})
    parts = [f"<h1>genae — reproduction report ({html.escape(state.get('mode', '?'))})</h1>",
             _preamble(state), _summary_table(recipes, steps)]
    for source, title in SECTIONS.items():
        names = [r for r in recipes if RECIPES[r].source == source]
        if not names:
            continue
        parts.append(f"<h2>{html.escape(title)}</h2><p><em>Source: {html.escape(SOURCES[source])}.</em></p>")
        parts += [_recipe_section(name, state) for name in names]
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>genae reproduction report</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>\n")
    path = out / REPORT_DIR / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, page)


def locate(state: dict, path) -> Path:
    """A path a recipe recorded, found from any working directory: relative paths are relative to the
    directory reproduce ran in."""
    path = Path(path)
    return path if path.is_absolute() else Path(state.get("cwd", ".")) / path


def results_path(state: dict, recipe: str) -> Path:
    options_out = state.get("steps", {}).get(recipe, {}).get("options", {}).get("out", ".")
    return locate(state, options_out) / recipe / "results.json"


def _recipe_section(name: str, state: dict) -> str:
    recipe = RECIPES[name]
    step = state.get("steps", {}).get(name, {})
    path = results_path(state, name)
    head = f"<h3 id='{name}'>{html.escape(name)}</h3><p>{html.escape(recipe.summary)}.</p>"
    if not path.is_file():
        status = step.get("status", "not run")
        why = f"It {status}." if status.startswith("failed") else "Not run yet."
        return head + f"<p class='missing'>{html.escape(why)} <code>{html.escape(str(path))}</code> is missing.</p>"
    results = json.loads(path.read_text())
    folder = path.parent
    lines = [head, f"<p>Command: <code>{html.escape(step.get('command', results['command']))}</code>; wall time "
                   f"{_number(step.get('wall_seconds', results['wall_seconds']))} s; seed "
                   f"{_number(step.get('options', {}).get('seed', 0))}"
                   + _limit_note(step.get("options", {})) + ".</p>"]
    for table in results.get("tables", []):
        lines.append(_table(table["header"], table["rows"], table.get("caption", ""), "recipe-table"))
    lines.append(_runs_table(results, state))
    figures = "".join(_figure(folder, f, c) for f, c in zip(results["figures"], results.get("figure_captions",
                                                                                         results["figures"])))
    lines.append(f"<div class='side'><div class='source'><strong>The source showed</strong><br>"
                 f"{html.escape(SOURCE_SHOWED.get(name, '—'))}</div><div class='ours'>{figures}</div></div>")
    return "\n".join(lines)


def _limit_note(options: dict) -> str:
    limit = options.get("limit")
    return f"; only the first {limit} images of each split (train, validation, test)" if limit else ""


def eval_rows(results: dict, state: dict) -> list[list]:
    """Rows (run, eval.json, metric, value) of every number in the eval.json of each run a recipe used."""
    rows = []
    for name, run_dir in results.get("runs", {}).items():
        path = Path(run_dir) / "eval.json"
        if not locate(state, path).is_file():
            continue
        for key, value in json.loads(locate(state, path).read_text()).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append([name, str(path), key, value])
    return rows


def _runs_table(results: dict, state: dict) -> str:
    training = results.get("training", {})
    rows = [[name, run_dir, training.get(name, {}).get("epochs", "—"), training.get(name, {}).get("train_seconds", "—")]
            for name, run_dir in results.get("runs", {}).items()]
    parts = [_table(["run", "directory", "epochs", "training seconds"], rows, "Model runs", "runs-table")] if rows else []
    evals = eval_rows(results, state)
    if evals:
        parts.append(_table(["run", "eval.json", "metric", "value"], evals,
                            "Every number in the runs' eval.json files", "eval-table"))
    return "\n".join(parts)


def _table(header: list, rows: list[list], caption: str, css: str) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table class='{css}'>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"<td class='num' data-value='{json.dumps(value)}'>{html.escape(format_cell(value))}</td>"
    return f"<td>{html.escape(format_cell(value))}</td>"


def _number(value) -> str:
    return html.escape(format_cell(value))


def _figure(folder: Path, name: str, caption: str) -> str:
    """One figure of a recipe's folder, embedded; a name that leaves the folder (an absolute path, a
    '..', a link pointing out) or is not a PNG is refused, not read."""
    path = folder / name
    inside = (not Path(name).is_absolute() and ".." not in Path(name).parts and path.suffix == ".png"
              and path.resolve().is_relative_to(folder.resolve()))
    if not inside:
        return f"<figure class='missing'>refused figure {html.escape(name)}: not a PNG inside {html.escape(str(folder))}</figure>"
    if not path.is_file():
        return f"<figure class='missing'>missing figure {html.escape(str(path))}</figure>"
    data = base64.b64encode(path.read_bytes()).decode()
    return (f"<figure><img alt='{html.escape(caption, quote=True)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _summary_table(recipes: list[str], steps: dict) -> str:
    rows = [[name, RECIPES[name].source, steps.get(name, {}).get("status", "not run"),
             steps.get(name, {}).get("wall_seconds", "—"), steps.get(name, {}).get("command", "—")] for name in recipes]
    table = _table(["recipe", "source", "status", "wall seconds", "command"], rows, "Steps of this reproduction",
                   "steps-table")
    links = " · ".join(f"<a href='#{n}'>{html.escape(n)}</a>" for n in recipes)
    total = sum(steps.get(n, {}).get("wall_seconds", 0) for n in recipes)
    return (f"{table}<p>Total wall time of these steps, as last run: {total / 60:.1f} min (a step that reused "
            f"models trained by an earlier step is fast).</p><p>{links}</p>")


def _preamble(state: dict) -> str:
    versions = {name: _version(name) for name in ("genae", "torch", "numpy", "matplotlib", "scikit-learn", "tyro")}
    commit = _git_commit()
    judge = _judge_line()
    machine = (f"{platform.platform()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"
               + (f", CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no CUDA device"))
    items = [f"Generated {time.strftime('%Y-%m-%d %H:%M %Z')} by <code>genae reproduce --{state.get('mode', 'quick')}"
             "</code> from the runs' results.json and eval.json files.",
             f"Machine: {html.escape(machine)}.",
             "Versions: Python " + platform.python_version() + ", "
             + ", ".join(f"{k} {html.escape(v)}" for k, v in versions.items())
             + (f"; git commit <code>{commit}</code>" if commit else "") + ".",
             f"Reference judge: {judge}",
             "Quick runs use a few epochs (and, where a model is slow, fewer images): their numbers show that "
             "each method works, not the papers' values; <code>genae reproduce --full</code> runs every recipe at "
             "its defaults." if state.get("mode") == "quick" else "Full budgets: every recipe at its defaults "
             "(the README's settings)."]
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _judge_line() -> str:
    from genae.evaluate.judge import JUDGE_FILE, judge_dir

    path = judge_dir() / JUDGE_FILE
    if not path.is_file():
        return "none cached, so judge scores are missing (<code>genae judge train</code> adds them)."
    record = json.loads(path.read_text())
    return (f"test accuracy {format_cell(100 * record['test_accuracy'])} % after {record['epochs']} epochs, "
            f"weights sha256 <code>{record['sha256'][:12]}…</code>.")

