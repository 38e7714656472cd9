#!/usr/bin/env bash
# The lent GPU machine's Python and PyTorch, rehearsed here on the CPU before device time is spent.
# That machine (../.library/device/KINDS.md, nvidia-h200) runs Python 3.12 with its own torch 2.11.0+cu130,
# not the pinned 2.13.0, and has no network. In a clone of HEAD under DIR this script:
#   1. makes DIR/venv: Python 3.12, torch $TORCH from PyPI (the CUDA build; it runs on the CPU here),
#      and every other package of constraints.txt except the five that scripts/offline_bundle.sh
#      carries (tyro, docstring_parser, typeguard, typing_extensions, platformdirs): what that machine
#      has, near enough;
#   2. runs the device call of docs/speed.md#cuda-graphs word for word, with DEVICE=cpu LIMIT=1000
#      SPEED_MODELS=vae: the offline bundle installed with --target, genae from PYTHONPATH=src;
#   3. installs those five wheels and runs the whole test suite under these versions.
#
#   bash scripts/device_rehearsal.sh [DIR]    # DIR: default /tmp/genae-rehearsal (must not exist yet)
#
# Needs the network (PyPI: about 5 GB with torch's CUDA libraries; npm for the explorer's tests) and
# .offline from scripts/offline_bundle.sh. Environment: PYTHON312 (default python3.12), TORCH (2.11.0).
# Exits 1 when the rehearsal or a test fails; DIR/rehearsal.log and DIR/pytest.log keep the output.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/genae-rehearsal}
python312=${PYTHON312:-python3.12}
if ! "$python312" --version >/dev/null 2>&1 && [ -z "${PYTHON312:-}" ] && command -v pyenv >/dev/null; then
    python312=$(ls -d "$(pyenv root)"/versions/3.12*/bin/python 2>/dev/null | tail -1)   # a pyenv shim refuses it
fi
if ! "${python312:-python3.12}" --version >/dev/null 2>&1; then
    echo "device_rehearsal: no Python 3.12 found; set PYTHON312 to one" >&2; exit 2
fi
torch_version=${TORCH:-2.11.0}
if [ -e "$dir" ]; then echo "device_rehearsal: $dir exists; give a new DIR" >&2; exit 2; fi
if [ ! -d .offline/wheels ] || [ ! -d .offline/data ]; then
    echo "device_rehearsal: .offline is missing; run \`bash scripts/offline_bundle.sh\` first" >&2; exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
git clone -q . "$dir/genae"
cp -r .offline "$dir/genae/"

echo "1. $dir/venv: $($python312 --version), torch==$torch_version"
"$python312" -m venv "$dir/venv"
export PATH="$dir/venv/bin:$PATH"
pip() {   # quiet; on a failure its output, less this machine's notes on absent local indexes
    python3 -m pip --disable-pip-version-check -q "$@" > "$dir/pip.log" 2>&1 \
        || { grep -v "is ignored: it is neither" "$dir/pip.log" >&2; echo "device_rehearsal: pip install $* failed" >&2; exit 1; }
}
pip install "torch==$torch_version"
carried=$(ls .offline/wheels | sed 's/-.*//' | paste -sd'|')   # the bundle's wheels, by name
grep -v -i -E "^(torch|$carried)==" constraints.txt > "$dir/others.txt"
pip install -r "$dir/others.txt"
python3 -c "import torch, sys; print('  torch', torch.__version__, 'on Python', sys.version.split()[0])"
if python3 -c "import tyro" 2>/dev/null; then echo "device_rehearsal: tyro is in the venv; the rehearsal would not show a missing wheel" >&2; exit 1; fi

cd "$dir/genae"
status=0
echo "2. the device call, DEVICE=cpu LIMIT=1000 SPEED_MODELS=vae (log: $dir/rehearsal.log)"
start=$(date +%s)
if (python3 -m pip install -q --no-index --no-deps --target "$dir/site" .offline/wheels/*.whl &&
    PYTHONPATH="src:$dir/site" GENAE_DATA=.offline/data PYTHON=python3 DEVICE=cpu LIMIT=1000 SPEED_MODELS=vae \
    timeout 420 bash scripts/cuda_check.sh runs/cc) > "$dir/rehearsal.log" 2>&1; then
    echo "  passed in $(( $(date +%s) - start )) s"
else
    echo "  FAILED (exit $?); the end of its log:"; tail -20 "$dir/rehearsal.log"; status=1
fi

echo "3. the test suite (log: $dir/pytest.log)"
pip install --no-deps .offline/wheels/*.whl
npm ci --prefix src/genae/explorer/web --no-audit --no-fund --loglevel=error > /dev/null 2>&1 \
    || echo "  npm ci failed: the explorer's tests will fail"
if PYTHONPATH="$PWD/src" python3 -m pytest -q -p no:cacheprovider > "$dir/pytest.log" 2>&1; then
    echo "  $(tail -1 "$dir/pytest.log")"
else
    echo "  FAILED:"; grep -E "^(FAILED|ERROR)|passed|failed" "$dir/pytest.log" | tail -20; status=1
fi
exit $status
