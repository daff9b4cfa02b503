#!/usr/bin/env bash
# Run every unit test binary, then every integration suite, and print one
# closing line "tests: N passed, M failed". Exits non-zero on any failure.
# TESTS=pattern limits the run to matching file names.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export SM_BUILD="$PWD/$BUILD"
pass=0
fail=0
failed=()
pattern=${TESTS:-}

count_cmocka() { # $1 = log
	local p f
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -1)
	pass=$((pass + ${p:-0}))
	fail=$((fail + ${f:-0}))
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	[ -n "$pattern" ] && [[ "$name" != *$pattern* ]] && continue
	log=$(mktemp)
	if timeout 300 "$t" >"$log" 2>&1; then rc=0; else rc=$?; fi
	count_cmocka "$log"
	if [ $rc -ne 0 ]; then
		cat "$log"
		failed+=("$name")
		grep -q '^\[  FAILED  \]' "$log" || fail=$((fail + 1))
	else
		grep '^\[  PASSED  \]' "$log" | sed "s/^/$name: /"
	fi
	rm -f "$log"
done

if command -v node >/dev/null; then
	for t in tests/integration/*.test.mjs; do
		[ -e "$t" ] || continue
		name=$(basename "$t")
		[ -n "$pattern" ] && [[ "$name" != *$pattern* ]] && continue
		log=$(mktemp)
		logs=$(mktemp -d)
		echo "== $name"
		if SM_TEST_LOGS=$logs timeout 900 node --test --test-reporter=tap "$t" >"$log" 2>&1; then rc=0; else rc=$?; fi
		p=$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$log" | tail -1)
		f=$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$log" | tail -1)
		pass=$((pass + ${p:-0}))
		fail=$((fail + ${f:-0}))
		if [ $rc -ne 0 ]; then
			cat "$log"
			# The processes the suite started: the end of each log.
			for pl in "$logs"/*.log; do
				[ -e "$pl" ] || continue
				echo "--- $(basename "$pl") (last 40 lines)"
				tail -n 40 "$pl"
			done
			failed+=("$name")
			[ "${f:-0}" -gt 0 ] || fail=$((fail + 1))
		else
			grep -E '^(ok|not ok|# (pass|fail|skip))' "$log" | sed "s/^/  /"
		fi
		rm -rf "$log" "$logs"
	done
else
	echo "node not found: integration suites cannot run" >&2
	fail=$((fail + 1))
fi

[ ${#failed[@]} -eq 0 ] || echo "failed suites: ${failed[*]}"
echo "tests: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ ${#failed[@]} -eq 0 ]
