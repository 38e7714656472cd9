#!/usr/bin/env bash
# Creates .venv (once) and installs genae with every dependency pinned by constraints.txt.
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
