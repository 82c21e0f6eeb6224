#!/usr/bin/env bash
# The main job on the embedded defaults: ingest the sample knowledge base, answer a retrieval
# query from the CLI, then a grounded, cited answer from the local model (Gemma 3 270M; its first
# start converts the GGUF once, about a minute). Fine-tune, evaluate and serve join here as they
# are built. A second run skips every unchanged document and the conversion.
set -euo pipefail
cd "$(dirname "$0")/.."
RAGTUNE=.venv/bin/ragtune
export RAGTUNE_HOME=${RAGTUNE_HOME:-.ragtune}
echo "== ragtune demo (home: $RAGTUNE_HOME) =="
echo "-- 1/3 ingest samples/kestrel/docs into collection 'kestrel'"
status=0
$RAGTUNE ingest samples/kestrel/docs --collection kestrel --prune || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then exit "$status"; fi
question=${RAGTUNE_DEMO_QUESTION:-"How many days of parental leave do employees get?"}
echo "-- 2/3 search: $question"
$RAGTUNE search "$question" --collection kestrel --k 3
echo "-- 3/3 answer (base model + RAG): $question"
printf '%s\n' "$question" | $RAGTUNE chat --collection kestrel
echo "== done. Next: $RAGTUNE chat --collection kestrel, or $RAGTUNE keys create --name me --scopes chat && $RAGTUNE serve =="
