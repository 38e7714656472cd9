"""Sohn et al.'s CVAE completes MNIST digits from 1, 2 or 3 quadrants (the Pyro tutorial, the source).

    genae run quadrants                      # all three settings: baseline, CVAE, CLL table, figures
    genae run quadrants --quadrants 1 --baseline.epochs 5 --cvae.epochs 5

For each setting the deterministic baseline is trained first (early stopping, patience 3), then
the CVAE with that baseline frozen inside its prior network. Test numbers: the baseline's
−log p(y|x) (BCE over the output pixels), the CVAE's −CLL by importance sampling (S samples) and
its −ELBO (the mean of the same S log-weights), which is what the tutorial's table calls CLL (there
estimated from 10 samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from genae.data.transforms import VALIDATION_SEED
from genae.evaluate import evaluate_run
from genae.experiments.common import RecipeOptions, RecipeResult, Report, as_config, model_options, recipe_start, train
from genae.models.sohn import GIVEN, SohnConfig, SohnCVAEConfig
from genae.plots.grids import save_grid
from genae.rundir import load_model as load

TUTORIAL = {"NN baseline": {1: 100.4, 2: 61.9, 3: 25.4}, "CVAE": {1: 71.8, 2: 51.0, 3: 24.2}}
NOT_GIVEN_SHADE = 0.2  # how the figure paints the pixels the input does not give


@dataclass
class QuadrantOptions(RecipeOptions):
    quadrants: tuple[int, ...] = (1, 2, 3)
    """Settings to run: number of quadrants given as input (1 bottom-left, 2 left half, 3 all but bottom-right)."""
    baseline: SohnConfig = model_options(SohnConfig, "seed", "quadrants")
    """The deterministic baseline (early stopping, patience 3)."""
    cvae: SohnCVAEConfig = model_options(SohnCVAEConfig, "seed", "quadrants", "baseline")
    """The CVAE, its prior network fed the frozen baseline's prediction."""
    iw_samples: int = 100
    """Importance samples S per test image for the CLL."""
    n_digits: int = 8
    """Test digits in each figure (rows)."""
    n_completions: int = 6
    """CVAE samples per digit in the figure."""


def quadrants(opts: QuadrantOptions) -> RecipeResult:
    device, rep, data = recipe_start(opts, "quadrants",
                                     "Completing MNIST digits from quadrants: NN baseline vs Sohn et al.'s CVAE")
    runs, arrays = {}, {}
    test = data.test
    for q in opts.quadrants:
        nn_run = train(opts, "sohn-baseline", as_config(opts.baseline, quadrants=q, seed=opts.seed), tag=f"q{q}")
        cvae_config = as_config(opts.cvae, quadrants=q, seed=opts.seed, baseline=str(nn_run))
        cvae_run = train(opts, "sohn-cvae", cvae_config, tag=f"q{q}")
        runs.update({f"baseline q{q}": nn_run, f"cvae q{q}": cvae_run})
        nn_eval = evaluate_run(nn_run, device=device, progress=False)
        cvae_eval = evaluate_run(cvae_run, iw_samples=opts.iw_samples, device=device, progress=False)
        rep.numbers[f"quadrants={q}"] = {"given": list(GIVEN[q]), "baseline_nll": nn_eval["nll"],
                                         "cvae_cll": cvae_eval["cll"], "cvae_neg_elbo": -cvae_eval["elbo"],
                                         "iw_samples": opts.iw_samples, "eval_seconds": cvae_eval["seconds"]}
        arrays[q] = _figure(rep, q, nn_run, cvae_run, test, opts, device)
    rows = []
    for label, key in (("NN baseline: BCE of the prediction", "baseline_nll"),
                       (f"CVAE: −CLL, importance sampled (S={opts.iw_samples})", "cvae_cll"),
                       (f"CVAE: −ELBO, mean of the S={opts.iw_samples} log-weights (the tutorial's 'CLL')",
                        "cvae_neg_elbo")):
        paper = TUTORIAL["NN baseline" if key == "baseline_nll" else "CVAE"]
        rows.append([label] + [f"{rep.numbers[f'quadrants={q}'][key]:.1f} ({paper[q]})" for q in opts.quadrants])
    rep.table(["test set, nats per image: ours (tutorial)"] + [f"{q} quadrant{'s' * (q > 1)}" for q in opts.quadrants],
              rows, "−log p(y|x) over the output pixels (lower is better), grey-level pixels with a Bernoulli "
                    "likelihood as in the tutorial. Given quadrants: " + "; ".join(
                        f"{q}: {', '.join(GIVEN[q])}" for q in opts.quadrants) + ".")
    return RecipeResult(rep.write(runs), rep.numbers, arrays)


@torch.no_grad()
def _figure(rep: Report, q: int, nn_run: Path, cvae_run: Path, test, opts: QuadrantOptions, device: str) -> torch.Tensor:
    """Rows: input (not-given pixels shaded) | truth | baseline | several CVAE completions."""
    nn, cvae = load(nn_run, device), load(cvae_run, device)
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(opts.seed))[:opts.n_digits]
    batch = cvae.prepare(test.x[pick].to(device), test.y[pick].to(device),
                         torch.Generator(device=device).manual_seed(VALIDATION_SEED))
    shown_input = torch.where(batch.x < 0, torch.full_like(batch.x, NOT_GIVEN_SHADE), batch.x)
    torch.manual_seed(opts.seed)
    completions = cvae.complete(batch.x, opts.n_completions).transpose(0, 1)  # B×n×1×28×28
    grid = torch.cat([shown_input.unsqueeze(1), batch.target.unsqueeze(1), nn.predict(batch.x).unsqueeze(1),
                      completions], dim=1)
    cols = ["input", "truth", "NN"] + [f"CVAE {i + 1}" for i in range(opts.n_completions)]
    rep.figure(save_grid(rep.figure_dir / f"quadrants_{q}.png", grid.flatten(0, 1), len(cols),
                         f"{q} quadrant{'s' * (q > 1)} given ({', '.join(GIVEN[q])}; the rest shaded in the input): "
                         "the baseline's single prediction vs CVAE samples z ~ p(z|x)", col_labels=cols, scale=2.0),
               f"{q} quadrant{'s' * (q > 1)} given")
    return grid
