#!/usr/bin/env bash
# Create .venv and install ragtune with pinned dependencies. Idempotent: a second run with
# unchanged requirements.lock / pyproject.toml only checks a stamp and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
stamp_want=$(cat requirements.lock pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
stamp_file=$VENV/.ragtune-installed
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp_want" ]; then
  exit 0
fi
echo "ragtune setup: installing into $VENV (first run takes a few minutes)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# pip's output goes to a log shown only on failure (this machine's pip config prints a
# warning line per package otherwise).
pip() {
  local log; log=$(mktemp)
  if ! "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2; rm -f "$log"; return 1
  fi
  rm -f "$log"
}
# torch first and alone: 2.13.0 is the CPU wheel on this machine's disk; any looser spec
# (or a package pulled in before it) would fetch a multi-GB CUDA build.
pip install torch==2.13.0
pip install -r requirements.lock
# Declared deps of unstructured-inference pull timm/torchvision (a CUDA torch); the "fast"
# PDF strategy only needs the module to import, and its runtime deps are in the lock.
pip install --no-deps unstructured-inference==1.6.14
pip install --no-deps -e .
"$VENV/bin/python" -c "import torch, faiss, unstructured, sentence_transformers, assistant" \
  || { echo "ragtune setup: install check failed" >&2; exit 1; }
echo "$stamp_want" > "$stamp_file"
echo "ragtune setup: done"
