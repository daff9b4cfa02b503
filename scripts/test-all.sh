#!/usr/bin/env bash
# The one test command: install everything, build, and pass every test —
# formatting, fuzzers (briefly), the sanitizer build, then the full suite.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
scripts/install-deps.sh
# A real llama-server and a tiny GGUF, built once per machine (cached).
scripts/build-llama.sh >/dev/null
make -j"$JOBS" format-check
make -j"$JOBS" fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-10}"
make -j"$JOBS" check
make -j"$JOBS" test
