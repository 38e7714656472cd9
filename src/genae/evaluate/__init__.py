"""Evaluation of a run directory: `evaluate_run` writes DIR/eval.json."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from genae.data import load_mnist
from genae.evaluate.likelihood import likelihood_bounds
from genae.models.registry import load, read_run_config
from genae.train.engine import VALIDATION_SEED

EVAL_FILE = "eval.json"


def likelihood_note(binarize: str) -> str:
    if binarize == "dynamic":
        return ("Bernoulli likelihood of binary pixels (the test set binarized once, seed "
                f"{VALIDATION_SEED}); trained with dynamic binarization")
    return "Bernoulli likelihood on grey-level pixels (BCE with logits): not a likelihood of binary MNIST"


def evaluate_run(run_dir: str | Path, *, iw_samples: int = 1000, split: str = "test", device: str = "cpu",
                 limit: int | None = None, progress: bool | None = None, judge: str = "auto",
                 judge_samples: int = 1000) -> dict:
    """Test-set ELBO and importance-sampled NLL (conditional for the CVAE), or a model's own
    test_metrics (M2's error, Sohn's CLL, …); writes eval.json.

    judge: 'auto' scores a conditional model's samples (CVAE, M2, a label-driven AAE) with the
    cached reference judge if one exists (genae judge train), 'on' requires it, 'off' skips it."""
    run_dir = Path(run_dir)
    name, config = read_run_config(run_dir)
    model = load(run_dir, device)
    data = load_mnist(config.data_dir)
    part = data.split(split)
    n = len(part) if limit is None else min(limit, len(part))
    generator = torch.Generator(device=device).manual_seed(VALIDATION_SEED)
    batch = model.prepare(part.x[:n].to(device), part.y[:n].to(device), generator)
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    if hasattr(model, "test_metrics"):  # models with their own test quantities (Sohn's CLL, …)
        result = {"model": name, "split": split, "n_images": n, **model.test_metrics(batch, iw_samples),
                  "seconds": round(time.perf_counter() - start, 1)}
        if getattr(model, "conditional", False) and hasattr(model, "sample") and judge != "off":
            result.update(judge_scores(model, part.x[:n], judge, device, config.seed, judge_samples))
        (run_dir / EVAL_FILE).write_text(json.dumps(result, indent=2) + "\n")
        return result
    progress = sys.stderr.isatty() if progress is None else progress
    bounds = likelihood_bounds(model, batch.x, batch.y, iw_samples, progress=progress)
    conditional = getattr(model, "conditional", False)
    result = {
        "model": name,
        "split": split,
        "n_images": n,
        "likelihood": likelihood_note(config.binarize),
        "iw_samples": iw_samples,
        "elbo": bounds["elbo"].mean().item(),
        ("conditional_nll" if conditional else "nll"): -bounds["iwae"].mean().item(),
        "nll_meaning": (f"-log p(x|y) by importance sampling, IWAE bound with K={iw_samples}" if conditional
                        else f"-log p(x) by importance sampling, IWAE bound with K={iw_samples}"),
        "seconds": round(time.perf_counter() - start, 1),
    }
    if conditional and judge != "off":
        result.update(judge_scores(model, part.x[:n], judge, device, config.seed, judge_samples))
    (run_dir / EVAL_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return result


def judge_scores(model, real: torch.Tensor, mode: str, device: str, seed: int, per_label: int) -> dict:
    from genae.evaluate.judge import judge_dir, judge_generated, load_judge

    if mode == "auto" and not (judge_dir() / "judge.json").is_file():
        return {"judge": "not scored: no cached judge (run `genae judge train`)"}
    judge = load_judge(device=device)
    return {**judge_generated(model, judge, real, per_label=per_label, seed=seed),
            "judge_test_accuracy": judge.record["test_accuracy"]}
