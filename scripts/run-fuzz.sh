#!/usr/bin/env bash
# Run every libFuzzer target for FUZZ_SECONDS over its seed corpus.
# New inputs go to a scratch dir; the repo's corpus is read-only seeds.
# A crash fails the run and leaves its input in $BUILD/fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=${FUZZ_SECONDS:-20}
mkdir -p "$BUILD/fuzz/crashes"
fail=0
ran=0
for f in "$BUILD"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	scratch=$(mktemp -d)
	seeds=fuzz/corpus/$name
	mkdir -p "$seeds"
	echo "== $name (${SECS}s)"
	if "$f" -max_total_time="$SECS" -print_final_stats=0 -timeout=10 \
		-rss_limit_mb=2048 -artifact_prefix="$BUILD/fuzz/crashes/$name-" \
		"$scratch" "$seeds" >"$scratch.log" 2>&1; then
		grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "$scratch.log" | tail -1 || true
	else
		tail -40 "$scratch.log"
		echo "FAIL: $name (reproducer in $BUILD/fuzz/crashes/)"
		fail=1
	fi
	ran=$((ran + 1))
	rm -rf "$scratch" "$scratch.log"
done
echo "fuzz: $ran targets, $([ $fail -eq 0 ] && echo no crashes || echo CRASHES)"
exit $fail
