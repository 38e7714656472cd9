#!/usr/bin/env bash
# How often a 2-process torchrun job fails although its work is done (a worker dying at interpreter
# exit: "terminate called without an active exception", SIGABRT). Runs the job N times, one after
# another, and counts the failures.
#
#   bash benchmarks/torchrun_exit.sh 30 tests/ddp_worker.py          # genae's engine, as the tests run it
#   bash benchmarks/torchrun_exit.sh 50 benchmarks/gloo_exit.py        # gloo alone, the group never left
#   bash benchmarks/torchrun_exit.sh 30 benchmarks/gloo_exit.py --destroy
set -uo pipefail
cd "$(dirname "$0")/.."
n=$1; shift
py=${PYTHON:-.venv/bin/python}
fails=0
for _ in $(seq 1 "$n"); do
    tmp=$(mktemp -d)
    args=("$@")
    [ "$1" = tests/ddp_worker.py ] && args+=("$tmp/run")   # the worker's run directory
    OMP_NUM_THREADS=1 "$py" -m torch.distributed.run --standalone --nproc-per-node=2 "${args[@]}" > "$tmp/log" 2>&1 \
        || { fails=$((fails + 1)); grep -m1 -h "terminate called\|Error" "$tmp/log"; }
    rm -rf "$tmp"
done
echo "$* : $fails of $n jobs failed"
