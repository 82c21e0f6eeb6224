#!/usr/bin/env bash
# The main job on the embedded defaults: ingest the sample knowledge base, then answer a
# retrieval query from the CLI. (Later stages — fine-tune, evaluate, serve — join here as
# they are built.) A second run skips every unchanged document.
set -euo pipefail
cd "$(dirname "$0")/.."
RAGTUNE=.venv/bin/ragtune
export RAGTUNE_HOME=${RAGTUNE_HOME:-.ragtune}
echo "== ragtune demo (home: $RAGTUNE_HOME) =="
echo "-- 1/2 ingest samples/kestrel/docs into collection 'kestrel'"
status=0
$RAGTUNE ingest samples/kestrel/docs --collection kestrel --prune || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then exit "$status"; fi
question=${RAGTUNE_DEMO_QUESTION:-"How many days of parental leave do employees get?"}
echo "-- 2/2 search: $question"
$RAGTUNE search "$question" --collection kestrel --k 3
echo "== done. Try: $RAGTUNE search \"your question\" --collection kestrel --json =="
