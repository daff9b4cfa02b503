#!/usr/bin/env bash
# Bench scenario "attest-flood" (issue 10): can a member stall a TPM host by
# challenging it? All on 127.0.0.1:
#
#   swtpm (EK certificate from swtpm_setup)
#   host H  serve --attest tpm (test build), model m -> the mock backend
#   client C  client --join H: streams chat through H (loadgen drives it)
#   flooder F  client --join H --test-challenge-flood N (test build): keeps N
#              raw challenges open to H, each re-opened as soon as it ends
#
# Phases alternate without and with F running (BENCH_AF_REPS each); every
# phase runs loadgen for BENCH_AF_DURATION s against C (concurrency
# BENCH_AF_CONC, BENCH_AF_TOKENS tokens, one every BENCH_AF_DELAY_MS ms), then
# reads H's /metrics: sealmesh_loop_lag_max_ms (largest loop delay in the
# last 10 s, 50 ms probe), TPM answers made and busy answers sent.
# Goal: median tokens/s with flood >= 0.9 x without (BENCH_STRICT=1 makes a
# miss fatal). Output: a table on stderr and one JSON line per phase plus a
# summary line on stdout (bench/run.sh appends them to its raw results).
#
# NOISE: everything (swtpm included) shares the machine's cores; ratios in
# one run are meaningful, absolute numbers less so.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
LOADGEN=$BUILD/bench/loadgen
MOCK=$BUILD/fixtures/mock_backend
SEALMESH=$BUILD/sealmesh
TEST_SEALMESH=$BUILD/test/sealmesh
DURATION=${BENCH_AF_DURATION:-8}
REPS=${BENCH_AF_REPS:-2}
CONC=${BENCH_AF_CONC:-16}
TOKENS=${BENCH_AF_TOKENS:-32}
DELAY_MS=${BENCH_AF_DELAY_MS:-5}
FLOOD=${BENCH_AF_FLOOD:-64}
STRICT=${BENCH_STRICT:-0}

for bin in "$LOADGEN" "$MOCK" "$SEALMESH" "$TEST_SEALMESH"; do
	[[ -x $bin ]] || { echo "attest-flood: $bin missing (make all)" >&2; exit 1; }
done
command -v swtpm >/dev/null || { echo "attest-flood: swtpm not installed" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sm-af.XXXXXX")
# Enterable by a root node's worker user (--user, doc/PRIVSEP.md).
chmod 711 "$TMP"
PIDS=()
cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	((rc != 0)) && tail -n 5 "$TMP"/*.err >&2 2>/dev/null
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log() { printf 'attest-flood: %s\n' "$*" >&2; }

# start NAME REGEX CMD...: background CMD, wait for a stdout line matching
# REGEX; sets PID and LINE.
start() {
	local name=$1 re=$2 i
	shift 2
	"$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	PID=$!
	PIDS+=("$PID")
	for ((i = 0; i < 150; i++)); do
		LINE=$(grep -Em1 "$re" "$TMP/$name.out") && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	log "$name did not start"
	cat "$TMP/$name.err" >&2
	return 1
}
port_of() { sed -E "s|.*$1 http://[^:]+:([0-9]+).*|\\1|" <<<"$2"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2}'; }

# swtpm with an EK certificate, on two free loopback ports.
mkdir -p "$TMP/tpm" "$TMP/ca"
swtpm_setup --tpm2 --tpmstate "$TMP/tpm" --create-ek-cert --create-platform-cert \
    --overwrite >"$TMP/setup.log" 2>&1
cp /var/lib/swtpm-localca/swtpm-localca-rootca-cert.pem /var/lib/swtpm-localca/issuercert.pem "$TMP/ca/"
for ((p = 21000 + RANDOM % 8000; ; p += 2)); do
	(echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || (echo >"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null ||
	    break
done
TPM_PORT=$p
swtpm socket --tpm2 --tpmstate "dir=$TMP/tpm" --server "type=tcp,port=$TPM_PORT,bindaddr=127.0.0.1" \
    --ctrl "type=tcp,port=$((TPM_PORT + 1)),bindaddr=127.0.0.1" --flags not-need-init,startup-clear \
    >"$TMP/swtpm.out" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 50; i++)); do (echo >"/dev/tcp/127.0.0.1/$TPM_PORT") 2>/dev/null && break; sleep 0.1; done

start mock 'listening on [0-9]+' "$MOCK" --host 127.0.0.1 --port 0
MOCK_PORT=${LINE##* }
mkdir -m 700 "$TMP/host-state"
start host 'token ' "$TEST_SEALMESH" serve --port 0 --console 0 --mesh-port 0 --bind 127.0.0.1 \
    --gossip-interval 500 --state-dir "$TMP/host-state" --attest tpm \
    --tpm "swtpm:host=127.0.0.1,port=$TPM_PORT" --model "m=http://127.0.0.1:$MOCK_PORT"
HOST_TOKEN=${LINE##* }
HOST_CONSOLE=$(port_of console "$(grep -m1 'api http' "$TMP/host.out")")
start client 'token ' "$SEALMESH" client --port 0 --console 0 --mesh-port 0 --bind 127.0.0.1 \
    --gossip-interval 500 --attest none --join "$HOST_TOKEN"
CLIENT_PORT=$(port_of api "$(grep -m1 'api http' "$TMP/client.out")")
for ((i = 0; i < 100; i++)); do
	curl -sf "http://127.0.0.1:$CLIENT_PORT/v1/models" | grep -q '"id":"m"' && break
	sleep 0.1
done

flood_start() {
	start flood 'token ' "$TEST_SEALMESH" client --port 0 --console 0 --mesh-port 0 \
	    --bind 127.0.0.1 --gossip-interval 500 --attest none --tpm-ca "$TMP/ca" \
	    --test-challenge-flood "$FLOOD" --join "$HOST_TOKEN"
	FLOOD_PID=$PID
	sleep 2 # joined, flooding
}
flood_stop() {
	kill -TERM "$FLOOD_PID"
	wait "$FLOOD_PID" 2>/dev/null || true
	sleep 1
}

# Warm-up, then phases.
"$LOADGEN" --url "http://127.0.0.1:$CLIENT_PORT/v1/chat/completions" --concurrency "$CONC" \
    --duration 2 --tokens "$TOKENS" --delay-ms "$DELAY_MS" --stream --json >/dev/null
declare -a TPS_OFF TPS_ON LAG_OFF LAG_ON
for ((rep = 1; rep <= REPS; rep++)); do
	for phase in off on; do
		[[ $phase == on ]] && flood_start
		a0=$(metric "$HOST_CONSOLE" sealmesh_attest_answered_total)
		b0=$(metric "$HOST_CONSOLE" sealmesh_attest_busy_sent_total)
		r0=$(metric "$HOST_CONSOLE" sealmesh_attest_refused_streams_total)
		out=$("$LOADGEN" --url "http://127.0.0.1:$CLIENT_PORT/v1/chat/completions" \
		    --concurrency "$CONC" --duration "$DURATION" --tokens "$TOKENS" \
		    --delay-ms "$DELAY_MS" --stream --json)
		lag=$(metric "$HOST_CONSOLE" sealmesh_loop_lag_max_ms)
		a1=$(metric "$HOST_CONSOLE" sealmesh_attest_answered_total)
		b1=$(metric "$HOST_CONSOLE" sealmesh_attest_busy_sent_total)
		r1=$(metric "$HOST_CONSOLE" sealmesh_attest_refused_streams_total)
		[[ $phase == on ]] && flood_stop
		tps=$(node -e 'const o=JSON.parse(process.argv[1]); console.log(o.tokens_per_s, o.errors)' "$out")
		read -r tps errs <<<"$tps"
		printf '{"kind":"attest_flood","phase":"%s","rep":%d,"tokens_per_s":%s,"errors":%s,"loop_lag_max_ms":%s,"tpm_answers":%d,"busy_answers":%d,"refused_streams":%d,"duration_s":%s}\n' \
		    "$phase" "$rep" "$tps" "$errs" "$lag" $((a1 - a0)) $((b1 - b0)) $((r1 - r0)) "$DURATION"
		log "rep $rep flood $phase: $tps tokens/s ($errs errors), host loop lag max $lag ms, TPM answers $((a1 - a0)), busy answers $((b1 - b0)), streams refused $((r1 - r0))"
		if [[ $phase == on ]]; then TPS_ON+=("$tps"); LAG_ON+=("$lag"); else TPS_OFF+=("$tps"); LAG_OFF+=("$lag"); fi
	done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
off=$(median "${TPS_OFF[@]}")
on=$(median "${TPS_ON[@]}")
ratio=$(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
lag_on=$(printf '%s\n' "${LAG_ON[@]}" | sort -g | tail -1)
lag_off=$(printf '%s\n' "${LAG_OFF[@]}" | sort -g | tail -1)
ok=$(awk -v r="$ratio" 'BEGIN {print (r >= 0.9) ? "true" : "false"}')
printf '{"kind":"attest_flood_summary","tokens_per_s_no_flood":%s,"tokens_per_s_flood":%s,"ratio":%s,"goal":0.9,"met":%s,"loop_lag_max_ms_no_flood":%s,"loop_lag_max_ms_flood":%s,"flood_streams":%d,"concurrency":%d}\n' \
    "$off" "$on" "$ratio" "$ok" "$lag_off" "$lag_on" "$FLOOD" "$CONC"
log "tokens/s: no flood $off, flood $on: ratio $ratio (goal >= 0.9: $ok); host loop lag max: $lag_off ms / $lag_on ms"
[[ $ok == true || $STRICT != 1 ]]
