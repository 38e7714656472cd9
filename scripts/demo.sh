#!/usr/bin/env bash
# The main job: install (once), then train a CVAE and a VAE on real MNIST and write runs/demo/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/genae demo "$@"
