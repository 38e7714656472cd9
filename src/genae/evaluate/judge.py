"""The cached reference judge: its weights' sha256 checked on every load, and the scores it gives
a conditional model's samples. Training it: genae.experiments.judge (`genae judge train`).

    from genae.evaluate.judge import load_judge; judge = load_judge()

judge.json records the weights' sha256 and the judge's test accuracy; a judge whose weights no
longer match is refused (retrain it) rather than silently scoring with something else.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from genae.data.mnist import cache_dir
from genae.errors import UserError
from genae.files import read_json
from genae.rundir import MODEL_FILE, load_model

JUDGE_FILE = "judge.json"


def judge_dir() -> Path:
    return cache_dir() / "judge"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@torch.no_grad()
def accuracy(judge, x: torch.Tensor, y: torch.Tensor) -> float:
    return (judge.predict(x) == y).float().mean().item()


def load_judge(where: Path | None = None, device: str = "cpu"):
    """The trained judge, its weights checked against judge.json."""
    where = Path(where) if where is not None else judge_dir()
    record_path = where / JUDGE_FILE
    if not record_path.is_file():
        raise UserError(f"{record_path}: no trained judge; run `genae judge train` first")
    record = read_json(record_path)
    if not isinstance(record, dict) or not {"sha256", "test_accuracy"} <= set(record):
        raise UserError(f"{record_path}: not a judge record (sha256, test_accuracy); retrain with `genae judge train`")
    if not (where / MODEL_FILE).is_file():
        raise UserError(f"{where / MODEL_FILE}: the judge's weights are missing; retrain with `genae judge train`")
    actual = sha256_of(where / MODEL_FILE)
    if actual != record["sha256"]:
        raise UserError(f"{where / MODEL_FILE}: sha256 {actual[:12]}… does not match judge.json "
                         f"({record['sha256'][:12]}…); retrain with `genae judge train`")
    judge = load_model(where, device)
    judge.record = record
    return judge


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a^½ Σ_b Σ_a^½)^½) between two sets of feature rows.

    The Fréchet distance of Gaussians fitted to the two sets (as in FID), in float64; the matrix
    square root comes from symmetric eigendecompositions, so no SciPy is needed.
    """
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    middle = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    return ((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * middle).item()


@torch.no_grad()
def judge_generated(model, judge, real: torch.Tensor, *, per_label: int = 1000, seed: int = 0) -> dict:
    """Score a conditional model's samples with the judge: how often a sample drawn for label y is
    classified as y, and the Fréchet distance between judge features of samples and real images."""
    torch.manual_seed(seed)
    device = next(judge.parameters()).device
    y = torch.arange(10, device=device).repeat_interleave(per_label)
    samples = torch.cat([model.sample(len(part), part) for part in y.split(2000)]).to(device)
    per_class = (judge.predict(samples) == y).float().view(10, per_label).mean(1)
    embed = lambda x: torch.cat([judge.embed(part) for part in x.split(2000)])  # noqa: E731
    return {"conditional_accuracy": per_class.mean().item(),
            "conditional_accuracy_per_label": [round(v, 4) for v in per_class.tolist()],
            "judge_frechet_distance": frechet_distance(embed(samples), embed(real.to(device))),
            "samples_per_label": per_label,
            "judge_note": "judge = genae's MNIST CNN classifier (genae judge train); the Fréchet distance uses its "
                          "256 penultimate features: an MNIST-judge distance, not Inception FID"}
