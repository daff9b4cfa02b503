#!/usr/bin/env bash
# Install every Debian package that building, testing and benchmarking sealmesh
# needs, plus the npm packages the compatibility tests use. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
	# build
	build-essential pkg-config git clang clang-format
	libuv1-dev libssl-dev libnghttp2-dev libsodium-dev
	libprotobuf-c-dev protobuf-c-compiler node-llhttp libcjson-dev
	libtss2-dev libcmocka-dev libseccomp-dev
	# fuzzing and sanitizers
	libfuzzer-14-dev libclang-rt-14-dev
	# tests: TPM simulator, namespaces, the OpenAI SDK, curl
	swtpm swtpm-tools tpm2-tools iproute2 curl ca-certificates procps
	# tests: the traffic-shape observer (pcap) and its classifier
	tcpdump python3-sklearn python3-numpy
	# real llama-server build
	cmake g++ libssl-dev
	# benchmarks
	nghttp2-client nginx
	# web console test (headless Chromium), unit check, man page check
	chromium systemd groff-base
)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	missing+=(nodejs npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The official OpenAI SDK (v6 runs on Node 20) for the compatibility tests.
if [ ! -d tests/node_modules/openai ]; then
	(cd tests && npm install --no-audit --no-fund --silent)
fi
echo "install-deps: ok"
