"""The README's main job: a CVAE and a VAE with a 2-D z on real MNIST, figures and report.md.

    genae demo                 # writes runs/demo/report.md and runs/demo/figures/
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from genae.data import DataSource
from genae.device import resolve_device
from genae.evaluate import evaluate_run, likelihood_note
from genae.files import write_text
from genae.models.vae import VAEConfig
from genae.plots import figures
from genae.plots.grids import save_panels
from genae.rundir import EVAL_FILE, RunDir, is_finished, load_model, read_metrics
from genae.train.trainer import train_model

MODELS = ("cvae", "vae")


def run_demo(out: Path, *, epochs: int = 5, iw_samples: int = 100, data: DataSource | None = None,
             device: str = "auto", quiet: bool = False, graphs: bool = True) -> Path:
    out = Path(out)
    data = data if data is not None else DataSource()
    dev = str(resolve_device(device))
    rows = []
    for name in MODELS:
        run_dir = out / name
        config = VAEConfig(dim_z=2, epochs=epochs, seed=0)
        resume = RunDir(run_dir).checkpoint.is_file()
        if resume and not quiet:
            print(f"{run_dir}: resuming the existing run", flush=True)
        start = time.perf_counter()
        if not (resume and is_finished(run_dir)):
            train_model(name, config, run_dir, data=data, resume=resume, force=not resume, device=dev, quiet=quiet,
                        graphs=graphs)
        wall = time.perf_counter() - start
        result = evaluate_run(run_dir, iw_samples=iw_samples, device=dev, progress=False)
        figures.reconstruction(run_dir, device=dev)
        figures.samples(run_dir, device=dev)
        history = read_metrics(run_dir)
        rows.append((name, history, result, wall))
    comparison = _comparison_figure(out, data, dev)
    return _write_report(out, rows, comparison, iw_samples)


@torch.no_grad()
def _comparison_figure(out: Path, data: DataSource, device: str) -> Path:
    """The CVAE source's 'Reproduce' figure: test inputs | CVAE | VAE reconstructions."""
    test = data.load().test
    x, y = test.x[:100].to(device), test.y[:100].to(device)
    panels = {"input": x}
    for name in MODELS:
        model = load_model(out / name, device)
        panels[name.upper()] = model.reconstruct(x, y)
    return save_panels(out / "figures" / "reconstruction_cvae_vs_vae.png", panels, 10,
                       "Test images and their reconstructions, dim_z = 2")


def _write_report(out: Path, rows, comparison: Path, k: int) -> Path:
    lines = [
        "# genae demo: CVAE vs VAE with a 2-D latent space on MNIST",
        "",
        "Made by `genae demo` (the README's first command). "
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "",
        f"Likelihood: {likelihood_note('none')}. NLL = −IWAE bound with K = {k} importance samples "
        "(for the CVAE the conditional −log p(x|y)).",
        "",
        "| model | epochs | s / epoch (median) | test ELBO | test NLL (K=%d) | wall time |" % k,
        "|---|---|---|---|---|---|",
    ]
    for name, history, result, wall in rows:
        seconds = sorted(h["train_seconds"] for h in history)
        median = seconds[len(seconds) // 2] if seconds else float("nan")
        nll = result.get("conditional_nll", result.get("nll"))
        lines.append(f"| {name.upper()} | {len(history)} | {median:.1f} | {result['elbo']:.2f} | "
                     f"{nll:.2f} | {wall:.0f} s |")
    lines += [
        "",
        "Lower NLL is better. The CVAE is told the label, so it needs fewer nats: its z only has to "
        "hold the style.",
        "",
        f"![Reconstructions]({comparison.relative_to(out)})",
        "",
    ]
    for name, *_ in rows:
        lines += [f"## {name.upper()}", "",
                  f"![{name} reconstruction]({name}/figures/reconstruction.png)",
                  f"![{name} samples]({name}/figures/samples.png)", "",
                  f"Run directory: `{out / name}` (config.json, metrics.jsonl, {EVAL_FILE}).", ""]
    return write_text(out / "report.md", "\n".join(lines))
