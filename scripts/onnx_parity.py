"""The largest difference between onnxruntime and PyTorch for every model family and every --arch:
a short training of each on real MNIST (the first --limit images), then `genae export`, whose manifest
records the largest absolute difference of each network over random and real test inputs.

    .venv/bin/python scripts/onnx_parity.py [--limit 2000] [--epochs 1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from genae.export import export_run

RUNS = {   # row → `genae train` arguments
    **{f"vae --arch {a}": ["vae", "--arch", a, "--dim-z", "20"] for a in ("mlp", "fc3", "cnn2", "cnn3", "conv")},
    **{f"cvae --arch {a}": ["cvae", "--arch", a, "--dim-z", "20"] for a in ("mlp", "fc3", "cnn2", "cnn3", "conv")},
    "m2": ["m2", "--n-labels", "100"],
    "m1+m2": ["m2", "--n-labels", "100", "--m1-run", "{root}/vae --arch mlp"],
    "aae": ["aae"],
    "aae --label-prior": ["aae", "--prior", "gmm", "--label-prior", "--n-labels", "1000"],
    "aae supervised": ["aae", "--mode", "supervised"],
    "aae semisupervised": ["aae", "--mode", "semisupervised", "--n-labels", "100", "--dim-z", "10"],
    "sohn-baseline": ["sohn-baseline"],
    "sohn-cvae": ["sohn-cvae", "--baseline", "{root}/sohn-baseline"],
    "judge": ["judge"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    print("| model | network | inputs | largest absolute difference |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        for row, words in RUNS.items():
            run = Path(root) / row
            words = [w.format(root=root) for w in words]
            subprocess.run([sys.executable, "-m", "genae", "train", *words, "--limit", str(args.limit), "--epochs",
                            str(args.epochs), "--quiet", "--out", str(run)], check=True, stdout=subprocess.DEVNULL)
            manifest = export_run(run, run / "onnx")
            for name, net in manifest["networks"].items():
                print(f"| {row} | {name} | {', '.join(net['inputs'])} | {net['max_abs_difference']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
