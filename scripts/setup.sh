#!/usr/bin/env bash
# Creates .venv (once) and installs genae with every dependency pinned by constraints.txt, and the
# explorer's page runtime (npm).
# torch==2.13.0 comes from the CPU wheel on this kind of machine; see README.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.genae-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  if ! .venv/bin/python -m pip install --disable-pip-version-check -c constraints.txt -e '.[test]' \
      >.venv/pip.log 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" .venv/pip.log >&2
    echo "setup: pip install failed (full log: .venv/pip.log)" >&2
    exit 1
  fi
  .venv/bin/python -c "import genae, torch" && touch "$stamp"
fi
# The explorer's page runtime: onnxruntime-web at the version its package-lock.json pins (genae explore).
web=src/genae/explorer/web
if [ ! -f "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  if command -v npm >/dev/null; then
    npm ci --prefix "$web" --no-audit --no-fund --loglevel=error >.venv/npm.log 2>&1 \
      || { cat .venv/npm.log >&2; echo "setup: npm ci failed; everything but genae explore works" >&2; }
  else
    echo "setup: npm not found; everything but genae explore works (it needs: npm ci --prefix $web)" >&2
  fi
fi
