"""Evaluation speed: importance-sampled likelihoods over the 10,000 test images.

    .venv/bin/python benchmarks/eval_speed.py                    # every row, full test set
    .venv/bin/python benchmarks/eval_speed.py --rows vae-z50 --images 2000

Rows: the VAE of the NLL benchmark (784-500-500, z = 50) with K = 1000 importance samples, the
CVAE (z = 20) with K = 1000, and Sohn et al.'s CVAE (1 quadrant given, z = 200) with S = 100.
Weights are freshly initialised: the work per image does not depend on them. With --images N the
time is measured on N images and scaled to 10,000 (say so when you quote it).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from genae.data import load_mnist
from genae.data.transforms import binarize
from genae.evaluate.likelihood import likelihood_bounds
from genae.models.registry import MODELS, build
from genae.runtime import configure_process

ROWS = {  # row → (model, config options, importance samples)
    "vae-z50": ("vae", dict(dim_z=50, n_hidden=500, n_layers=2), 1000),
    "cvae-z20": ("cvae", dict(dim_z=20, n_hidden=500, n_layers=2), 1000),
    "sohn-cvae-q1": ("sohn-cvae", dict(quadrants=1), 100),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), help="rows to run")
    parser.add_argument("--images", type=int, default=10_000, help="test images to time (scaled to 10,000)")
    args = parser.parse_args()
    configure_process()
    test = load_mnist().test
    x = binarize(test.x[:args.images], torch.Generator().manual_seed(0))
    y = test.y[:args.images]
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {len(x)} test images timed, scaled to 10,000\n")
    print("| row | samples per image | seconds for 10,000 images |")
    print("|---|---|---|")
    for row in args.rows:
        name, kw, k = ROWS[row]
        torch.manual_seed(0)
        model = build(name, MODELS[name].config(**kw)).eval()
        start = time.perf_counter()
        likelihood_bounds(model, model.prepare(x, y), k)
        seconds = (time.perf_counter() - start) * 10_000 / len(x)
        print(f"| {row} | {k} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
