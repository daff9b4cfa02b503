#!/usr/bin/env bash
# Build a real CPU llama-server (and a tiny random-weight GGUF model) for the
# integration tests and benchmarks, once per machine, into a cache outside the
# repository.
#
# Source: the llama.cpp git bundle shipped inside the npm package node-llama-cpp
# (llama/gitRelease.bundle), because llama.cpp is not packaged in Debian 12 and
# the machines can reach only Debian's and npm's registries.
#
# Usage:
#   scripts/build-llama.sh           build if needed (under a lock), then print
#   scripts/build-llama.sh --print   print the paths if the cache is complete,
#                                    else exit 1 without building
#
# On success the LAST two lines of stdout are exactly:
#   LLAMA_SERVER=<absolute path>
#   TINY_GGUF=<absolute path>
# Everything else goes to stderr or to the build log in the cache directory.
#
# Environment:
#   SEALMESH_CACHE        cache root (default: $HOME/.cache/sealmesh)
#   SEALMESH_BUILD_JOBS   parallel compile jobs (default: 2)
#
# Needs only Debian packages: cmake g++ libssl-dev git nodejs npm (+ flock,
# from util-linux, which is always there).
set -euo pipefail

# Pinned: the cache directory is keyed by this version; bump it to rebuild.
NLC_VERSION="3.22.1"

CACHE_ROOT="${SEALMESH_CACHE:-$HOME/.cache/sealmesh}"
PREFIX="$CACHE_ROOT/llama-$NLC_VERSION"
SERVER="$PREFIX/bin/llama-server"
MODEL="$PREFIX/models/tiny.gguf"
STAMP="$PREFIX/.complete"
LOG="$PREFIX/build.log"
JOBS="${SEALMESH_BUILD_JOBS:-2}"

complete() {
	[ -f "$STAMP" ] && [ -x "$SERVER" ] && [ -s "$MODEL" ]
}

print_paths() {
	echo "LLAMA_SERVER=$SERVER"
	echo "TINY_GGUF=$MODEL"
}

say() { echo "build-llama: $*" >&2; }

case "${1:-}" in
"") ;;
--print)
	complete || exit 1
	print_paths
	exit 0
	;;
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 0
	;;
*)
	say "unknown argument: $1 (usage: $0 [--print])"
	exit 2
	;;
esac

# Fast path: nothing to do, no lock, no subprocesses.
if complete; then
	print_paths
	exit 0
fi

for tool in cmake g++ git npm tar flock; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		say "missing '$tool' (Debian packages: cmake g++ libssl-dev git nodejs npm); see scripts/install-deps.sh"
		exit 1
	fi
done

mkdir -p "$CACHE_ROOT"
# Serialise builders: a second invocation waits here, then finds the cache done.
exec 9>"$CACHE_ROOT/.build-llama.lock"
if ! flock -n 9; then
	say "another build holds $CACHE_ROOT/.build-llama.lock; waiting"
	flock 9
fi

if complete; then
	print_paths
	exit 0
fi

# Start from a clean prefix (a previous build may have been interrupted).
rm -rf "$PREFIX"
mkdir -p "$PREFIX"
WORK="$(mktemp -d "$CACHE_ROOT/.build-llama.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
: >"$LOG"

run() {
	echo "+ $*" >>"$LOG"
	if ! "$@" >>"$LOG" 2>&1; then
		say "FAILED: $*"
		say "last lines of $LOG:"
		tail -n 40 "$LOG" >&2
		exit 1
	fi
}

t0=$SECONDS
say "building llama-server from node-llama-cpp@$NLC_VERSION into $PREFIX (log: $LOG)"

say "fetching node-llama-cpp@$NLC_VERSION from npm"
(cd "$WORK" && run npm pack --silent "node-llama-cpp@$NLC_VERSION")
TGZ="$WORK/node-llama-cpp-$NLC_VERSION.tgz"
[ -f "$TGZ" ] || { say "npm pack did not produce $TGZ"; exit 1; }
run tar -xzf "$TGZ" -C "$WORK" package/llama/gitRelease.bundle
rm -f "$TGZ"

say "cloning the llama.cpp source from the bundle"
run git -c advice.detachedHead=false clone -q "$WORK/package/llama/gitRelease.bundle" "$WORK/src"
rm -rf "$WORK/package"
echo "llama.cpp commit: $(git -C "$WORK/src" rev-parse HEAD)" >>"$LOG"

say "configuring (cmake)"
# Static llama/ggml libraries so the binaries do not depend on the build tree;
# GGML_NATIVE=OFF so the cache works on any machine of this kind; no web UI
# download (no internet); tests ON only for the test-llama-archs target.
run cmake -S "$WORK/src" -B "$WORK/build" \
	-DCMAKE_BUILD_TYPE=Release \
	-DBUILD_SHARED_LIBS=OFF \
	-DGGML_NATIVE=OFF \
	-DGGML_CCACHE=OFF \
	-DLLAMA_CURL=OFF \
	-DLLAMA_BUILD_TESTS=ON \
	-DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_BUILD_TOOLS=ON \
	-DLLAMA_BUILD_SERVER=ON \
	-DLLAMA_BUILD_UI=OFF \
	-DLLAMA_USE_PREBUILT_UI=OFF

say "compiling llama-server and test-llama-archs with -j$JOBS (a few minutes)"
run cmake --build "$WORK/build" -j "$JOBS" --target llama-server test-llama-archs

BIN="$WORK/build/bin"
say "generating the tiny random-weight model"
mkdir -p "$WORK/models"
# Fixed seed: the same weights (and so the same gibberish) on every machine.
run "$BIN/test-llama-archs" -a '^llama$' -s 42 -o "$WORK/models"
[ -s "$WORK/models/llama-dense.gguf" ] || { say "test-llama-archs did not write llama-dense.gguf"; exit 1; }

mkdir -p "$PREFIX/bin" "$PREFIX/models"
install -m 0755 "$BIN/llama-server" "$SERVER"
install -m 0644 "$WORK/models/llama-dense.gguf" "$MODEL"

# The installed binary must not need anything from the (deleted) build tree.
if ldd "$SERVER" 2>&1 | grep -q "not found\|$WORK"; then
	say "llama-server links against the build tree:"
	ldd "$SERVER" >&2
	exit 1
fi
ldd "$SERVER" >>"$LOG" 2>&1 || true

date -u +%Y-%m-%dT%H:%M:%SZ >"$STAMP"
say "done in $((SECONDS - t0)) s"
print_paths
