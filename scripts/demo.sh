#!/usr/bin/env bash
# The main job on its embedded default: a node in front of a real llama-server
# running a tiny random-weight model, on http://127.0.0.1:9337/v1.
# Installs what is missing, builds, and runs until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j"$(nproc)"
eval "$(scripts/build-llama.sh | tail -2)"
PORT=${PORT:-9337}
CONSOLE=${CONSOLE:-3131}
cat <<MSG

sealmesh demo: model "tiny" (random weights: the text is gibberish, the
inference is real) on http://127.0.0.1:$PORT/v1

  curl -N http://127.0.0.1:$PORT/v1/chat/completions \\
    -d '{"model":"tiny","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'
  curl http://127.0.0.1:$CONSOLE/api/status

MSG
exec build/sealmesh serve --gguf "$TINY_GGUF" --llama-server "$LLAMA_SERVER" \
	--port "$PORT" --console "$CONSOLE" "$@"
