"""Evaluation of a run directory on its test (or validation) split: `evaluate_run` writes DIR/eval.json.

What it measures is what the model declares (genae.models.base.Capabilities):
  likelihood  the ELBO and an importance-sampled bound with K samples (genae.evaluate.likelihood),
              named as the model says: nll (−log p(x)), conditional_nll (−log p(x|y)), cll
  always      the model's own test_metrics (M2's error, the AAE's reconstruction error, …)
  conditional and samples: the reference judge's scores of its samples, when a judge is cached.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from genae.data.transforms import VALIDATION_SEED
from genae.errors import UserError
from genae.evaluate.likelihood import likelihood_bounds
from genae.rundir import RunDir, load_model, read_record

MAX_IW_SAMPLES = 100_000   # one image's K samples at once through the decoder: at most ~0.3 GB
IW_ROWS = {"cpu": 5_000, "cuda": 200_000}
"""Importance samples (image × sample rows) per pass through the networks, by device type: a GPU
evaluates 200 images × K = 1000 at once (about 2 GB for 784-pixel outputs)."""
MEANINGS = {
    "nll": "-log p(x) by importance sampling, IWAE bound with K={k}",
    "conditional_nll": "-log p(x|y) by importance sampling, IWAE bound with K={k}",
    "cll": "-log p(y|x) of the output pixels y given the others x, by importance sampling with q(z|x,y), S={k}",
}


def likelihood_note(binarize: str) -> str:
    if binarize == "dynamic":
        return ("Bernoulli likelihood of binary pixels (the test set binarized once, seed "
                f"{VALIDATION_SEED}); trained with dynamic binarization")
    return "Bernoulli likelihood on grey-level pixels (BCE with logits): not a likelihood of binary MNIST"


def evaluate_run(run_dir: str | Path, *, iw_samples: int = 1000, split: str = "test", device: str = "cpu",
                 limit: int | None = None, progress: bool | None = None, judge: str = "auto",
                 judge_samples: int = 1000) -> dict:
    """The run's test numbers (see the module docstring), written to eval.json and returned.

    judge: 'auto' scores a conditional model's samples (CVAE, M2, a label-driven AAE) with the
    cached reference judge if one exists (genae judge train), 'on' requires it, 'off' skips it."""
    if not 1 <= iw_samples <= MAX_IW_SAMPLES:
        raise UserError(f"--iw-samples {iw_samples}: must be in 1..{MAX_IW_SAMPLES:,}")
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: need at least 1 image")
    run_dir = Path(run_dir)
    name, config, data = read_record(run_dir)
    model = load_model(run_dir, device)
    part = data.load().split(split)
    n = len(part) if limit is None else min(limit, len(part))
    generator = torch.Generator(device=device).manual_seed(VALIDATION_SEED)
    batch = model.prepare(part.x[:n].to(device), part.y[:n].to(device), generator)
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    caps = model.capabilities
    result = {"model": name, "split": split, "n_images": n}
    if caps.likelihood:
        progress = sys.stderr.isatty() if progress is None else progress
        bounds = likelihood_bounds(model, batch, iw_samples, progress=progress,
                                   rows=IW_ROWS.get(torch.device(device).type, IW_ROWS["cpu"]))
        result.update({"likelihood": likelihood_note(config.binarize), "iw_samples": iw_samples,
                       "elbo": bounds["elbo"].mean().item(), caps.likelihood: -bounds["iwae"].mean().item(),
                       "nll_meaning": MEANINGS[caps.likelihood].format(k=iw_samples)})
    result.update(model.test_metrics(batch))
    result["seconds"] = round(time.perf_counter() - start, 1)
    if caps.conditional and caps.samples and judge != "off":
        result.update(judge_scores(model, part.x[:n], judge, device, config.seed, judge_samples))
    RunDir(run_dir).write_eval(result)
    return result


def judge_scores(model, real: torch.Tensor, mode: str, device: str, seed: int, per_label: int) -> dict:
    from genae.evaluate.judge import JUDGE_FILE, judge_dir, judge_generated, load_judge

    if mode == "auto" and not (judge_dir() / JUDGE_FILE).is_file():
        return {"judge": "not scored: no cached judge (run `genae judge train`)"}
    judge = load_judge(device=device)
    return {**judge_generated(model, judge, real, per_label=per_label, seed=seed),
            "judge_test_accuracy": judge.record["test_accuracy"]}
