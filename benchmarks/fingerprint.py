"""A fingerprint of what each model family learns from a fixed seed: one short training per model
through the `genae` command, then the sha256 of the trained weights and the last validation line.

    python benchmarks/fingerprint.py [--out runs/fingerprint] [--limit 2000] [--epochs 1]

Run it before and after a change that should not alter the maths: on the same CPU the digests
must be equal (bit-identical weights). Only the command line is used, so any two versions of genae
with the same options can be compared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from safetensors.numpy import load_file

from genae.files import write_json

RUNS = {   # name -> `genae train` arguments (the data options are added below)
    "vae": ["vae", "--dim-z", "10"],
    "cvae": ["cvae", "--dim-z", "10", "--binarize", "dynamic"],
    "m2": ["m2", "--n-labels", "100", "--n-layers", "2", "--beta", "3"],
    "aae": ["aae", "--prior", "gmm", "--label-prior", "--n-labels", "1000"],
    "m2-every": ["m2", "--n-labels", "300", "--labeled-every", "3", "--labeled-weight", "share"],
    "aae-semi": ["aae", "--mode", "semisupervised", "--n-labels", "100", "--dim-z", "10"],
    "aae-semi-every": ["aae", "--mode", "semisupervised", "--n-labels", "300", "--classify-every", "2"],
    "sohn-baseline": ["sohn-baseline", "--quadrants", "1"],
    "sohn-cvae": ["sohn-cvae", "--quadrants", "1", "--dim-z", "20"],
}


def weights_digest(path: Path) -> str:
    """sha256 over the tensors (sorted by name), not the file's metadata."""
    digest = hashlib.sha256()
    for name, array in sorted(load_file(str(path)).items()):
        digest.update(name.encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/fingerprint"))
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    result = {}
    for name, words in RUNS.items():
        run = args.out / name
        extra = ["--baseline", str(args.out / "sohn-baseline")] if name == "sohn-cvae" else []
        cmd = [sys.executable, "-m", "genae", "train", *words, *extra, "--limit", str(args.limit),
               "--epochs", str(args.epochs), "--seed", "0", "--quiet", "--out", str(run)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        lines = (run / "metrics.jsonl").read_text().splitlines()
        valid = json.loads(lines[-1])["valid"]
        result[name] = {"weights": weights_digest(run / "model.safetensors"),
                        "valid": {k: round(v, 6) for k, v in sorted(valid.items())}}
        print(name, json.dumps(result[name]), flush=True)
    write_json(args.out / "fingerprint.json", result)


if __name__ == "__main__":
    main()
