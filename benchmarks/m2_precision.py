"""Which of M2's networks needs float32 when the rest trains in bf16: validation error per epoch and
seconds per epoch of short M2 runs (100 labels, --n-layers 2, β 3, lr 1e-3, seed 0 by default).

    .venv/bin/python benchmarks/m2_precision.py                       # every row, 10 epochs each (~20 min)
    .venv/bin/python benchmarks/m2_precision.py --epochs 2 --rows fp32 bf16

Rows: `fp32`; `bf16` (--precision bf16 as genae trains it: matrix products in bfloat16 except in the
classifier q(y|x), which M2._logits keeps in float32); `bf16-all` (the classifier in bf16
too, as before that choice); `bf16-decoder-fp32` (the classifier in bf16, the decoder p(x|y,z) in
float32). A row other than fp32 needs a CPU with avx512_bf16 or AMX: elsewhere bf16 is emulated and
very slow. --limit N (the first N images of each split) is for smoke tests: it needs N ≥ about 1000
for a balanced subset of 100 labels.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
from pathlib import Path

import torch

from genae.data import load_mnist
from genae.models.semisupervised import M2, M2Config
from genae.nets import Decoder
from genae.runtime import configure_process
from genae.train.engine import fit

ROWS = ("fp32", "bf16", "bf16-all", "bf16-decoder-fp32")


def in_float32(method):
    """`method` run with autocast off and its tensor arguments in float32."""
    def wrapped(self, *args, **kwargs):
        with torch.autocast(next(self.parameters()).device.type, enabled=False):
            args = [a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args]
            return method(self, *args, **kwargs)
    return wrapped


def classifier_in_bf16(self, x):
    """M2._logits without its float32 guard: the classifier's products in bf16 under autocast."""
    return self.classifier(x.flatten(1))


@contextlib.contextmanager
def variant(row: str):
    """Patch M2 (and the decoder) for one row; undone on exit."""
    saved = (M2._logits, Decoder.forward)
    if row in ("bf16-all", "bf16-decoder-fp32"):
        M2._logits = classifier_in_bf16
    if row == "bf16-decoder-fp32":
        Decoder.forward = in_float32(Decoder.forward)
    try:
        yield
    finally:
        M2._logits, Decoder.forward = saved


def run_row(row: str, data, epochs: int, seed: int) -> list[dict]:
    config = M2Config(n_labels=100, n_layers=2, beta=3.0, lr=1e-3, epochs=epochs, seed=seed,
                      precision="fp32" if row == "fp32" else "bf16")
    torch.manual_seed(seed)
    model = M2(config)
    prepared = model.prepare_data(data)
    with variant(row), tempfile.TemporaryDirectory() as tmp:
        return fit(model, prepared, Path(tmp), device=torch.device("cpu"), quiet=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10, help="training epochs per row")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS,
                        help="rows to run (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="label subset and initialisation")
    parser.add_argument("--limit", type=int, default=0,
                        help="first N images of each split only (0: all; a smoke test, N >= about 1000)")
    args = parser.parse_args()
    configure_process()
    data = load_mnist().head(args.limit) if args.limit else load_mnist()
    print(f"M2, 100 labels, --n-layers 2, β 3, lr 1e-3, seed {args.seed}, {args.epochs} epochs; "
          f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads\n")
    print("| row | validation error % per epoch | lowest | s / epoch (median) |")
    print("|---|---|---|---|")
    for row in args.rows:
        metrics = run_row(row, data, args.epochs, args.seed)
        errors = [100 * m["valid"]["error"] for m in metrics]
        seconds = statistics.median(m["train_seconds"] for m in metrics)
        per_epoch = " ".join(f"{e:.2f}" for e in errors)
        print(f"| {row} | {per_epoch} | {min(errors):.2f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
