#!/usr/bin/env bash
# bench/shape.sh: the cost of response shaping (issue 13), one hop.
#
# Starts on 127.0.0.1: the mock backend, a host in front of it, and two
# clients that reach the host over one direct link: "shaped" (defaults: asks
# for padded, paced answers) and "unshaped" (--no-shaping: the answers of
# before). Rows are measured alternately, SHAPE_REPS times per cell, with
# bench/loadgen; the median is printed with the ratio shaped/unshaped:
#   TTFT p50 (first SSE token), tokens/s (all streams together),
#   at concurrency 1, 64, 256 (SHAPE_CONC), for two scenarios:
#     short: 32 tokens, 5 ms apart (make bench's stream scenario: a very
#            fast model, 160 ms completions, where the start and end
#            quantization weigh most),
#     long:  100 tokens, 20 ms apart (50 tokens/s, 2 s completions).
# Then bytes on the wire per completion: SHAPE_BYTES_N completions of each
# scenario through each client, one at a time, from the host's
# sealmesh_e2e_response_bytes_total (response stream bytes, padding
# included; TLS, HTTP/2 and link framing not included: about 35 bytes per
# frame more in both rows, since TLS records carry one frame each).
# Knobs: BUILD, SHAPE_CONC ("1 64 256"), SHAPE_REPS (2), SHAPE_DURATION (3),
# SHAPE_BYTES_N (20), SHAPE_PACING (host's --response-pacing, default 30).
# Numbers share two cores with everything else: compare within a run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
LOADGEN=$BUILD/bench/loadgen
MOCK=$BUILD/fixtures/mock_backend
SEALMESH=$BUILD/sealmesh
CONCS=${SHAPE_CONC:-1 64 256}
REPS=${SHAPE_REPS:-2}
DURATION=${SHAPE_DURATION:-3}
BYTES_N=${SHAPE_BYTES_N:-20}
PACING=${SHAPE_PACING:-30}
SCENARIOS=("short:32:5" "long:100:20")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sm-shape-bench.XXXXXX")
# Enterable by a root node's worker user (--user, doc/PRIVSEP.md).
chmod 711 "$TMP"
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT

# start NAME REGEX CMD...: sets LINE (the first stdout line matching REGEX).
start() {
	local name=$1 re=$2 i
	shift 2
	"$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	PIDS+=("$!")
	for ((i = 0; i < 150; i++)); do
		LINE=$(grep -Em1 "$re" "$TMP/$name.out") && return 0
		sleep 0.1
	done
	echo "shape-bench: $name did not start" >&2
	cat "$TMP/$name.err" >&2
	return 1
}
api_port() { grep -Em1 'api http' "$TMP/$1.out" | sed -E 's|.*api http://[^:]+:([0-9]+)/v1.*|\1|'; }
console_port() { grep -Em1 'console http' "$TMP/$1.out" | sed -E 's|.*console http://[^:]+:([0-9]+).*|\1|'; }
node_() {
	local name=$1 cmd=$2
	shift 2
	local state=()
	if [[ $cmd == serve ]]; then
		mkdir -m 700 "$TMP/$name-state"
		state=(--state-dir "$TMP/$name-state")
	fi
	start "$name" 'token ' "$SEALMESH" "$cmd" --port 0 --console 0 --mesh-port 0 \
	    --bind 127.0.0.1 --gossip-interval 500 "${state[@]}" "$@"
	TOKEN=${LINE##* }
}

start mock 'listening on [0-9]+' "$MOCK" --host 127.0.0.1 --port 0
MOCK_PORT=${LINE##* }
node_ host serve --model "m=http://127.0.0.1:$MOCK_PORT" --response-pacing "$PACING"
HOST_TOKEN=$TOKEN
HOST_CONSOLE=$(console_port host)
node_ shaped client --join "$HOST_TOKEN"
node_ unshaped client --join "$HOST_TOKEN" --no-shaping
declare -A URL
for row in shaped unshaped; do
	URL[$row]="http://127.0.0.1:$(api_port $row)/v1/chat/completions"
	for ((i = 0; i < 100; i++)); do
		curl -sf "http://127.0.0.1:$(api_port $row)/v1/models" | grep -q '"id":"m"' && break
		sleep 0.1
	done
done
sleep 1 # the host's announcement with field 60 reached both

lg() { "$LOADGEN" --url "${URL[$1]}" --json "${@:2}" 2>>"$TMP/loadgen.err"; }
for row in shaped unshaped; do lg "$row" --concurrency 8 --requests 64 --stream --tokens 8 --delay-ms 1 >/dev/null; done

RAW=$TMP/raw.jsonl
: >"$RAW"
for sc in "${SCENARIOS[@]}"; do
	IFS=: read -r name tokens delay <<<"$sc"
	for conc in $CONCS; do
		for ((rep = 1; rep <= REPS; rep++)); do
			for row in shaped unshaped; do
				out=$(lg "$row" --concurrency "$conc" --duration "$DURATION" --stream \
				    --tokens "$tokens" --delay-ms "$delay") || out=null
				printf '{"scenario":"%s","conc":%s,"row":"%s","r":%s}\n' \
				    "$name" "$conc" "$row" "$out" >>"$RAW"
				echo "shape-bench: $name c=$conc $row rep $rep: $(jq -c '{ttfb_p50_ms,tokens_per_s,errors}' <<<"$out")" >&2
			done
		done
	done
done

metric() { curl -s "http://127.0.0.1:$HOST_CONSOLE/metrics" | awk '/^sealmesh_e2e_response_bytes_total /{print $2}'; }
BYTES=$TMP/bytes.jsonl
: >"$BYTES"
for sc in "${SCENARIOS[@]}"; do
	IFS=: read -r name tokens delay <<<"$sc"
	for row in shaped unshaped; do
		b0=$(metric)
		lg "$row" --concurrency 1 --requests "$BYTES_N" --stream --tokens "$tokens" --delay-ms "$delay" >/dev/null
		b1=$(metric)
		printf '{"scenario":"%s","row":"%s","bytes_per_completion":%s}\n' "$name" "$row" \
		    "$(((b1 - b0) / BYTES_N))" >>"$BYTES"
	done
done

node - "$RAW" "$BYTES" "$PACING" <<'EOF'
const fs = require('fs');
const [raw, bytes, pacing] = process.argv.slice(2);
const cells = {};
for (const l of fs.readFileSync(raw, 'utf8').split('\n').filter(Boolean)) {
  const c = JSON.parse(l);
  if (!c.r) continue;
  ((cells[`${c.scenario} c=${c.conc}`] ??= {})[c.row] ??= []).push(c.r);
}
const med = (xs) => { const v = xs.slice().sort((a, b) => a - b); const m = v.length >> 1; return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2; };
console.log(`response shaping, one hop, pacing ${pacing} ms (medians)`);
console.log('cell              TTFT p50 shaped/unshaped (+ms)    tok/s shaped/unshaped (ratio)');
for (const [k, rows] of Object.entries(cells)) {
  if (!rows.shaped || !rows.unshaped) continue;
  const t = [med(rows.shaped.map((r) => r.ttfb_p50_ms)), med(rows.unshaped.map((r) => r.ttfb_p50_ms))];
  const s = [med(rows.shaped.map((r) => r.tokens_per_s)), med(rows.unshaped.map((r) => r.tokens_per_s))];
  console.log(`${k.padEnd(16)}  ${t[0].toFixed(1)} / ${t[1].toFixed(1)} ms (+${(t[0] - t[1]).toFixed(1)})`.padEnd(50) +
    `${s[0].toFixed(0)} / ${s[1].toFixed(0)} (${(s[0] / s[1]).toFixed(3)})`);
}
const b = {};
for (const l of fs.readFileSync(bytes, 'utf8').split('\n').filter(Boolean)) {
  const c = JSON.parse(l);
  (b[c.scenario] ??= {})[c.row] = c.bytes_per_completion;
}
for (const [sc, r] of Object.entries(b)) {
  console.log(`bytes per completion, ${sc}: shaped ${r.shaped}, unshaped ${r.unshaped} (x${(r.shaped / r.unshaped).toFixed(2)})`);
}
EOF
