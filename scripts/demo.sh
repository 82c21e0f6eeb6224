#!/usr/bin/env bash
# The main job on the embedded defaults (`make demo`): `ragtune up` over the sample Kestrel Labs knowledge
# base — ingest, synthetic QA, LoRA fine-tune of Gemma 3 270M on the CPU, a scorecard of base+RAG against
# LoRA+RAG, promotion if the adapter wins — then the server with the chat page, its URL and an API key.
# A second run skips every stage whose inputs are unchanged and goes straight to serving.
# RAGTUNE_HOME (default .ragtune) holds all state; arguments are passed on (`make demo ARGS=--no-serve`).
set -euo pipefail
cd "$(dirname "$0")/.."
export RAGTUNE_HOME=${RAGTUNE_HOME:-.ragtune}
exec .venv/bin/ragtune up "$@"
