#!/usr/bin/env bash
# The checks that need a CUDA GPU: the engine's speed there, then every recipe at its quick budget
# (each model trains, evaluates and plots on the GPU; the report lands in OUT/report/index.html).
#   bash scripts/cuda_check.sh [OUT]     # OUT: default runs/cuda-check
# Runs with the `python3` on PATH: it needs a CUDA build of torch and genae importable
# (installed, or PYTHONPATH=src). Writes OUT/bench.txt and OUT/reproduce.log; exits non-zero
# at the first failing step. A second run into the same OUT skips the finished recipes: give a
# fresh OUT for timings.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/cuda-check}
mkdir -p "$out"
python3 -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA GPU'; \
print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())"
python3 benchmarks/train_speed.py --device cuda --epochs 3 \
    --models vae m2 m2-bf16 m2-l2 m2-l2-bf16 aae aae-bf16 aae-semi aae-semi-bf16 sohn-cvae \
    2>&1 | tee "$out/bench.txt"
python3 -m genae reproduce --quick --device cuda --quiet --out "$out" 2>&1 | tee "$out/reproduce.log"
