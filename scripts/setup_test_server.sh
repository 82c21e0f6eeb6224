#!/usr/bin/env bash
# Install llama-cpp-python's OpenAI-compatible server into .venv for the `openai` backend test.
# It compiles llama.cpp (about 10 minutes on 2 cores, once; pip caches the wheel). A failed build
# is not fatal: the test then skips and says why. Tried once per requirements change (stamp).
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
stamp_file=$VENV/.ragtune-test-server
want=$(cat pyproject.toml scripts/setup_test_server.sh | sha256sum | cut -c1-16)
[ "$(cat "$stamp_file" 2>/dev/null)" = "$want" ] && exit 0
if ! "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
  echo "ragtune test setup: building llama-cpp-python[server] for the openai-backend test (about 10 minutes, once)"
  log=$(mktemp)
  if ! CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
      "$VENV/bin/python" -m pip --disable-pip-version-check -q install "llama-cpp-python[server]==0.3.36" >"$log" 2>&1; then
    echo "ragtune test setup: llama-cpp-python did not build; the openai-backend server test will skip" >&2
    grep -v "^WARNING: Location" "$log" | tail -5 >&2
  fi
  rm -f "$log"
fi
echo "$want" > "$stamp_file"
