#!/usr/bin/env bash
# The main job on its embedded default: a local two-node mesh. A host node
# runs a real llama-server with a tiny random-weight model; a client node
# joins it and serves the mesh's models on http://127.0.0.1:9337/v1, so every
# request crosses a TLS 1.3 mesh link, sealed end to end.
# Installs what is missing, builds, and runs until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j"$(nproc)"
eval "$(scripts/build-llama.sh | tail -2)"
PORT=${PORT:-9337}
CONSOLE=${CONSOLE:-3131}
STATE=${SEALMESH_DEMO_STATE:-$HOME/.sealmesh-demo}
mkdir -p -m 700 "$STATE"
RUN=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$RUN"' EXIT INT TERM

build/sealmesh serve --gguf "$TINY_GGUF" --llama-server "$LLAMA_SERVER" \
	--port 0 --console 0 --mesh-port 0 --bind 127.0.0.1 \
	--state-dir "$STATE" >"$RUN/host.out" 2>"$RUN/host.log" &
for _ in $(seq 100); do
	grep -q '^sealmesh: token ' "$RUN/host.out" && break
	sleep 0.1
done
# The invite token is read from the host's state dir (0600), never from HTTP.
TOKEN=$(build/sealmesh token --state-dir "$STATE" 2>/dev/null || true)
[ -n "$TOKEN" ] || { cat "$RUN/host.log"; exit 1; }

cat <<MSG

sealmesh demo: a host node runs llama-server with model "tiny" (random
weights: the text is gibberish, the inference is real); a client node joined
it and serves the mesh on http://127.0.0.1:$PORT/v1 (host log: $RUN/host.log)

  curl -N http://127.0.0.1:$PORT/v1/chat/completions \\
    -d '{"model":"tiny","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'
  build/sealmesh status --console $CONSOLE

MSG
build/sealmesh client --join "$TOKEN" --port "$PORT" --console "$CONSOLE" \
	--bind 127.0.0.1 "$@"
