#!/usr/bin/env bash
# make bench: sealmesh against baselines measured in the same run.
#
# Starts, all on 127.0.0.1 with ephemeral/free ports:
#   - the mock OpenAI backend (tests/fixtures/mock_backend.c),
#   - nginx (Debian's) as a streaming reverse proxy in front of it, from a
#     generated config in a temp prefix (proxy_buffering off, HTTP/1.1 with
#     an upstream keepalive pool, access log to a file as sealmesh logs
#     each request to stderr (a file here) at its default level),
#   - sealmesh serve in front of it.
# Then bench/loadgen (libuv, one thread) measures every target ("row") in
# every scenario:
#   stream:    chat, "stream":true, BENCH_TOKENS tokens, one every
#              BENCH_DELAY_MS ms: time to first token (TTFT = TTFB of the
#              first SSE data event) and tokens/s under realistic pacing;
#   nostream:  small non-streamed chat, no delay: requests/s.
# at concurrency 1, 64 and 256. Rows are measured alternately (rep 1 of every
# row, then rep 2...), BENCH_REPS times per cell; the report takes the median.
# Then RSS per stream: BENCH_RSS_STREAMS long streams held open through
# sealmesh (and through nginx, for comparison); (RSS with them open - idle
# RSS after warm-up) / streams.
#
# bench/report.mjs prints the table with the ratios sealmesh/direct and
# sealmesh/nginx and writes bench/results/bench-<UTC>.json and latest.json.
#
# NOISE: the load generator, the mock, nginx and sealmesh all share the
# machine's cores (two here, maybe with other builds running); nothing is
# pinned. Ratios within one run are meaningful, absolute numbers less so.
# A missed goal is reported, not fatal, unless BENCH_STRICT=1.
#
# Adding a row: start the thing, then `add_target NAME URL [PID]` (PID: a
# process whose RSS to report). measure/measure_rss do the rest.
#
# Scale rows (BENCH_SCALE, default "2000 10000"): N streams held open at
# once (BENCH_SCALE_TOKENS tokens, BENCH_SCALE_DELAY_MS apart, so they
# overlap) through the local gateway ("sealmesh") and through one mesh hop
# with E2E ("mesh-e2e": client node -> host node -> mock), on processes of
# their own (each proxy with its own mock). Per row: errors,
# TTFB p50/p99, and RSS per stream on each node ((VmRSS with all N streaming
# - VmRSS before) / N). The local gateway needs two descriptors per stream in
# one process; where the hard RLIMIT_NOFILE does not allow 2N it runs at the
# largest N it allows, and the report says so.
#
# Knobs (environment): BUILD, BENCH_DURATION (s per cell, default 3),
# BENCH_REPS (3), BENCH_CONC ("1 64 256"), BENCH_TOKENS (32),
# BENCH_DELAY_MS (5), BENCH_NS_TOKENS (16), BENCH_RSS_STREAMS (256),
# BENCH_STRICT (0), BENCH_OUT (bench/results), NGINX (nginx),
# BENCH_PARTS ("rss big8m cells scale": which parts run), BENCH_ROWS (rows
# measured in the cells, default all), BENCH_SCENARIOS ("stream nostream"),
# BENCH_SCALE ("2000 10000"), BENCH_SCALE_TOKENS (15),
# BENCH_SCALE_DELAY_MS (2000).
# Only the c=256 non-streamed row against nginx plus the scale rows:
#   BENCH_PARTS="cells scale" BENCH_ROWS="nginx sealmesh" \
#   BENCH_SCENARIOS=nostream BENCH_CONC=256 bench/run.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
LOADGEN=$BUILD/bench/loadgen
MOCK=$BUILD/fixtures/mock_backend
SEALMESH=$BUILD/sealmesh
NGINX=${NGINX:-nginx}
DURATION=${BENCH_DURATION:-3}
REPS=${BENCH_REPS:-3}
CONCS=${BENCH_CONC:-1 64 256}
TOKENS=${BENCH_TOKENS:-32}
DELAY_MS=${BENCH_DELAY_MS:-5}
NS_TOKENS=${BENCH_NS_TOKENS:-16}
RSS_STREAMS=${BENCH_RSS_STREAMS:-256}
RSS_TOKENS=200
RSS_DELAY_MS=50
OUTDIR=${BENCH_OUT:-bench/results}
STRICT=${BENCH_STRICT:-0}
PARTS=${BENCH_PARTS:-rss big8m cells scale}
ROWS=${BENCH_ROWS:-}
SCENARIOS=${BENCH_SCENARIOS:-stream nostream}
SCALE=${BENCH_SCALE-2000 10000}
SCALE_TOKENS=${BENCH_SCALE_TOKENS:-15}
SCALE_DELAY_MS=${BENCH_SCALE_DELAY_MS:-2000}
part() { [[ " $PARTS " == *" $1 "* ]]; }
row_on() { [[ -z $ROWS || " $ROWS " == *" $1 "* ]]; }

for bin in "$LOADGEN" "$MOCK" "$SEALMESH"; do
	[[ -x $bin ]] || { echo "bench: $bin missing (make BUILD=$BUILD all)" >&2; exit 1; }
done
command -v "$NGINX" >/dev/null || { echo "bench: nginx not found (apt-get install nginx)" >&2; exit 1; }
command -v node >/dev/null || { echo "bench: node not found" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sm-bench.XXXXXX")
# Enterable by a root node's worker user (--user, doc/PRIVSEP.md).
chmod 711 "$TMP"
RAW=$TMP/raw.jsonl
: >"$RAW"
PIDS=()

# Stop every process started here, on any exit.
cleanup() {
	local rc=$? pid i
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if ((rc != 0)); then
		echo "bench: failed (rc $rc); logs:" >&2
		tail -n 5 "$TMP"/*.err "$TMP"/nginx/error.log 2>/dev/null >&2 || true
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf 'bench: %s\n' "$*" >&2; }

# A child that exited stays a zombie until reaped: kill -0 would still work.
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ -n $st && $st != Z ]]
}

# Every service must live through the whole run: a row measured against a
# dead process would be garbage. (Seen: other sessions on a shared machine
# stopping every "sealmesh"/"mock_backend" by name.)
SERVICES=()
check_services() {
	local pid
	for pid in "${SERVICES[@]}"; do
		if ! alive "$pid"; then
			log "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60) (pid $pid) exited during the run; results discarded"
			exit 1
		fi
	done
}

# start_proc NAME REGEX CMD...: start CMD in the background, wait until a
# stdout line matches REGEX. Sets START_PID and START_LINE.
start_proc() {
	local name=$1 re=$2 i
	shift 2
	: >"$TMP/$name.out"
	"$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	START_PID=$!
	PIDS+=("$START_PID")
	for ((i = 0; i < 150; i++)); do
		if START_LINE=$(grep -Em1 "$re" "$TMP/$name.out"); then
			return 0
		fi
		alive "$START_PID" || break
		sleep 0.1
	done
	echo "bench: $name did not start:" >&2
	cat "$TMP/$name.err" >&2
	return 1
}

free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Sum of VmRSS over a process and its direct children (nginx: master+worker).
rss_tree_kib() {
	local total=0 p
	for p in "$1" $(pgrep -P "$1" || true); do
		total=$((total + $(rss_kib "$p")))
	done
	echo "$total"
}

CLK_TCK=$(getconf CLK_TCK)

# CPU time (utime + stime, clock ticks) of a process and its direct children.
cpu_ticks() {
	local total=0 p t
	for p in "$1" $(pgrep -P "$1" || true); do
		t=$(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')
		total=$((total + t))
	done
	echo "$total"
}

# ---- rows ----

TARGETS=()
declare -A TARGET_URL TARGET_PID

add_target() {
	TARGETS+=("$1")
	TARGET_URL[$1]=$2
	TARGET_PID[$1]=${3:-}
	[[ -n ${3:-} ]] && SERVICES+=("$3")
	return 0
}

# measure NAME SCENARIO CONC REP [loadgen args...]: one cell, appended to RAW,
# with the CPU seconds the row's own process (tree) used meanwhile.
measure() {
	local name=$1 scen=$2 conc=$3 rep=$4 out pid=${TARGET_PID[$1]} c0=0 cpu=null
	shift 4
	[[ -n $pid ]] && c0=$(cpu_ticks "$pid")
	if ! out=$("$LOADGEN" --url "${TARGET_URL[$name]}/v1/chat/completions" \
	    --concurrency "$conc" --json "$@" 2>>"$TMP/loadgen.err"); then
		log "$name $scen c=$conc rep $rep: loadgen failed: $out"
		out=${out:-null}
	fi
	check_services
	[[ -n $pid ]] && cpu=$(awk -v a="$c0" -v b="$(cpu_ticks "$pid")" \
	    -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / hz}')
	printf '{"kind":"cell","target":"%s","scenario":"%s","concurrency":%s,"rep":%s,"cpu_s":%s,"result":%s}\n' \
	    "$name" "$scen" "$conc" "$rep" "$cpu" "$out" >>"$RAW"
	log "$(printf '%-9s %-8s c=%-3s rep %s: cpu %ss %s' "$name" "$scen" "$conc" "$rep" "$cpu" \
	    "$(jq -r 'if . == null then "no result" else "req \(.requests) err \(.errors) ttfb p50 \(.ttfb_p50_ms) ms p99 \(.ttfb_p99_ms) ms  \(.tokens_per_s) tok/s  \(.rps) req/s" end' <<<"$out")")"
}

# Scenario arguments for loadgen.
scen_args() {
	case $1 in
	stream) echo "--stream --tokens $TOKENS --delay-ms $DELAY_MS" ;;
	nostream) echo "--no-stream --tokens $NS_TOKENS --delay-ms 0" ;;
	esac
}

warm_up() {
	local name=$1
	"$LOADGEN" --url "${TARGET_URL[$name]}/v1/chat/completions" --concurrency 8 \
	    --requests 400 --no-stream --tokens "$NS_TOKENS" --json >/dev/null
	"$LOADGEN" --url "${TARGET_URL[$name]}/v1/chat/completions" --concurrency 8 \
	    --requests 64 --stream --tokens 8 --delay-ms 1 --json >/dev/null
}

# measure_rss NAME: hold RSS_STREAMS long streams open through NAME and
# sample the RSS of its process (and children) once all are streaming.
measure_rss() {
	local name=$1 pid=${TARGET_PID[$1]} idle busy lg ready=$TMP/ready.$1 i out
	[[ -n $pid ]] || return 0
	idle=$(rss_tree_kib "$pid")
	rm -f "$ready"
	"$LOADGEN" --url "${TARGET_URL[$name]}/v1/chat/completions" \
	    --concurrency "$RSS_STREAMS" --requests "$RSS_STREAMS" --stream \
	    --tokens "$RSS_TOKENS" --delay-ms "$RSS_DELAY_MS" \
	    --ready-file "$ready" --json >"$TMP/rss.$name.out" 2>>"$TMP/loadgen.err" &
	lg=$!
	PIDS+=("$lg")
	for ((i = 0; i < 100; i++)); do
		[[ -e $ready ]] && break
		sleep 0.1
	done
	if [[ ! -e $ready ]]; then
		log "$name: $RSS_STREAMS streams never ran at once; RSS not measured"
		kill -TERM "$lg" 2>/dev/null || true
		wait "$lg" || true
		return 0
	fi
	sleep 0.5 # let every stream get a few tokens through
	check_services
	busy=$(rss_tree_kib "$pid")
	kill -TERM "$lg" 2>/dev/null || true
	wait "$lg" || true
	out=$(cat "$TMP/rss.$name.out")
	printf '{"kind":"rss","target":"%s","streams":%s,"idle_kib":%s,"busy_kib":%s,"loadgen":%s}\n' \
	    "$name" "$RSS_STREAMS" "$idle" "$busy" "${out:-null}" >>"$RAW"
	log "$name: RSS idle $idle KiB, with $RSS_STREAMS streams $busy KiB: $(((busy - idle) / RSS_STREAMS)) KiB/stream"
	sleep 0.5 # let the cancelled streams wind down
}

# measure_scale NAME N: N long streams at once through NAME; TTFB and errors
# from loadgen, RSS per stream of each process in TARGET_NODES[NAME]. The
# scale rows have processes of their own (SCALE_URL), each proxy with its
# own mock: a pool kept warm by one row must not eat the descriptors of the
# backend the next row uses.
declare -A TARGET_NODES SCALE_URL SCALE_LOGS
measure_scale() {
	local name=$1 n=$2 group=${3:-$2} ready=$TMP/ready.scale.$1.$2 lg i out node pid
	local -A idle busy
	for node in ${TARGET_NODES[$name]}; do
		pid=${node#*=}
		idle[$node]=$(rss_kib "$pid")
	done
	rm -f "$ready"
	"$LOADGEN" --url "${SCALE_URL[$name]}/v1/chat/completions" \
	    --concurrency "$n" --requests "$n" --stream \
	    --tokens "$SCALE_TOKENS" --delay-ms "$SCALE_DELAY_MS" \
	    --ready-file "$ready" --json >"$TMP/scale.$name.$n.out" 2>>"$TMP/loadgen.err" &
	lg=$!
	PIDS+=("$lg")
	for ((i = 0; i < 600; i++)); do
		[[ -e $ready ]] && break
		alive "$lg" || break
		sleep 0.1
	done
	local seen=false
	if [[ -e $ready ]]; then
		seen=true
		sleep 0.5 # every stream has had a token or two
		for node in ${TARGET_NODES[$name]}; do
			busy[$node]=$(rss_kib "${node#*=}")
		done
	else
		log "$name: $n streams never ran at once; RSS not measured"
	fi
	wait "$lg" || true
	check_services
	out=$(cat "$TMP/scale.$name.$n.out")
	local rss="{" sep=""
	for node in ${TARGET_NODES[$name]}; do
		rss+="$sep\"${node%%=*}\":{\"idle_kib\":${idle[$node]},\"busy_kib\":${busy[$node]:-null}}"
		sep=,
	done
	rss+="}"
	printf '{"kind":"scale","target":"%s","group":%s,"streams":%s,"all_at_once":%s,"tokens":%s,"delay_ms":%s,"rss":%s,"result":%s}\n' \
	    "$name" "$group" "$n" "$seen" "$SCALE_TOKENS" "$SCALE_DELAY_MS" "$rss" "${out:-null}" >>"$RAW"
	log "$(printf '%-9s scale n=%-5s: ' "$name" "$n")$(jq -r 'if . == null then "no result" else "req \(.requests) err \(.errors) ttfb p50 \(.ttfb_p50_ms) ms p99 \(.ttfb_p99_ms) ms, most at once \(.max_streaming)" end' <<<"${out:-null}")"
	for node in ${TARGET_NODES[$name]}; do
		[[ -n ${busy[$node]:-} ]] &&
		    log "  ${node%%=*}: RSS ${idle[$node]} -> ${busy[$node]} KiB: $(((busy[$node] - idle[$node]) / n)) KiB/stream"
	done
	# Errors: what the nodes said about them.
	if [[ $(jq -r '.errors // 0' <<<"${out:-null}") != 0 ]]; then
		for node in ${SCALE_LOGS[$name]}; do
			grep -E ' (warn|error) ' "$TMP/$node.err" | sed -E 's/^[^ ]+ //' |
			    sort | uniq -c | sort -rn | head -n 5 | sed "s/^/  $node: /" >&2 || true
		done
	fi
	sleep 2 # let the connections wind down
}

# ---- start everything ----

start_proc mock 'listening on [0-9]+' "$MOCK" --host 127.0.0.1 --port 0
MOCK_PID=$START_PID
MOCK_PORT=${START_LINE##* }
add_target direct "http://127.0.0.1:$MOCK_PORT" "$MOCK_PID"

NGX=$TMP/nginx
mkdir -p "$NGX/logs" "$NGX/tmp"
NGINX_USER=""
[[ $(id -u) == 0 ]] && NGINX_USER="user root;"
for attempt in 1 2 3 4 5; do
	NGINX_PORT=$(free_port)
	cat >"$NGX/nginx.conf" <<EOF
# Generated by bench/run.sh: a streaming reverse proxy as one would run it
# in front of an LLM server.
daemon off;
master_process on;
worker_processes 1;
$NGINX_USER
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
worker_rlimit_nofile 16384;
events {
	worker_connections 8192;
}
http {
	# Every row logs each request: sealmesh does at its default level.
	access_log $NGX/logs/access.log;
	client_body_temp_path $NGX/tmp/body;
	proxy_temp_path $NGX/tmp/proxy;
	fastcgi_temp_path $NGX/tmp/fastcgi;
	uwsgi_temp_path $NGX/tmp/uwsgi;
	scgi_temp_path $NGX/tmp/scgi;
	tcp_nodelay on;
	keepalive_timeout 75s;
	keepalive_requests 100000;
	upstream mock {
		server 127.0.0.1:$MOCK_PORT;
		keepalive 512;
		keepalive_requests 100000;
		keepalive_timeout 60s;
	}
	server {
		listen 127.0.0.1:$NGINX_PORT backlog=4096;
		location / {
			proxy_pass http://mock;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_buffering off;
			proxy_read_timeout 300s;
		}
	}
}
EOF
	"$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" \
	    >"$TMP/nginx.out" 2>"$TMP/nginx.err" &
	NGINX_PID=$!
	PIDS+=("$NGINX_PID")
	ok=0
	for ((i = 0; i < 50; i++)); do
		alive "$NGINX_PID" || break
		if curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/health"; then
			ok=1
			break
		fi
		sleep 0.1
	done
	((ok)) && break
	log "nginx did not start on port $NGINX_PORT (attempt $attempt): $(tail -n1 "$NGX/error.log" 2>/dev/null)"
	kill -TERM "$NGINX_PID" 2>/dev/null || true
	wait "$NGINX_PID" 2>/dev/null || true
done
((ok)) || { log "nginx would not start"; exit 1; }
add_target nginx "http://127.0.0.1:$NGINX_PORT" "$NGINX_PID"

mkdir -m 700 "$TMP/sm-state"
start_proc sealmesh 'api http://[^:]+:[0-9]+/v1' "$SEALMESH" serve \
    --model "m=http://127.0.0.1:$MOCK_PORT" --port 0 --console 0 \
    --mesh-port 0 --bind 127.0.0.1 --state-dir "$TMP/sm-state"
SM_PID=$START_PID
SM_PORT=$(sed -E 's|.*api http://[^:]+:([0-9]+)/v1.*|\1|' <<<"$START_LINE")
add_target sealmesh "http://127.0.0.1:$SM_PORT" "$SM_PID"

# The mesh: a host in front of the mock, a relay, and clients that reach the
# host directly (1 hop) or only through the relay (the host advertises an
# address nobody can dial and joins the relay). Each path twice: sealed
# end to end, and plaintext (--no-e2e, what a node without E2E would send).
# BENCH_MESH=0 leaves these rows out.
# mesh_node NAME SUBCOMMAND [args...]: start a node; sets NODE_PORT, NODE_TOKEN.
mesh_node() {
	local name=$1 cmd=$2
	shift 2
	local state=()
	if [[ $cmd == serve ]]; then
		mkdir -m 700 "$TMP/$name-state"
		state=(--state-dir "$TMP/$name-state")
	fi
	start_proc "$name" 'token ' "$SEALMESH" "$cmd" --port 0 --console 0 \
	    --mesh-port 0 --bind 127.0.0.1 --gossip-interval 500 "${state[@]}" "$@"
	NODE_PID=$START_PID
	NODE_TOKEN=${START_LINE##* }
	NODE_PORT=$(grep -Em1 'api http' "$TMP/$name.out" |
	    sed -E 's|.*api http://[^:]+:([0-9]+)/v1.*|\1|')
}

# Wait until a node routes model m (gossip converged).
routes_m() {
	local i
	for ((i = 0; i < 100; i++)); do
		curl -sf "http://127.0.0.1:$1/v1/models" | grep -q '"id":"m"' && return 0
		sleep 0.1
	done
	log "node on :$1 never learned model m"
	return 1
}

if [[ ${BENCH_MESH:-1} == 1 ]]; then
	mesh_node relay serve
	RELAY_TOKEN=$NODE_TOKEN
	mesh_node host serve --model "m=http://127.0.0.1:$MOCK_PORT"
	HOST_TOKEN=$NODE_TOKEN
	HOST_NODE_PID=$NODE_PID
	# The same host as one process (--no-privsep): mesh-e2e/mesh-e2e-1p is
	# what privilege separation costs (DH through the signer, doc/PRIVSEP.md).
	mesh_node host-1p serve --no-privsep --model "m=http://127.0.0.1:$MOCK_PORT"
	HOST1P_TOKEN=$NODE_TOKEN
	mesh_node host-r serve --model "m=http://127.0.0.1:$MOCK_PORT" \
	    --advertise 127.0.0.1:9 --join "$RELAY_TOKEN"
	# The e2e rows measure the envelope without response shaping
	# (--no-shaping); mesh-shaped is the default (padded, paced answers),
	# compared with mesh-e2e. bench/shape.sh measures shaping alone.
	# mesh-e2e-v1: sealed-request version 1 (a fresh ephemeral key per
	# request), to show what version 2 saves.
	for row in "mesh-e2e:$HOST_TOKEN:--no-shaping" "mesh-plain:$HOST_TOKEN:--no-e2e" \
	    "mesh-e2e-v1:$HOST_TOKEN:--no-shaping --e2e-envelope 1" \
	    "mesh-e2e-1p:$HOST1P_TOKEN:--no-shaping" \
	    "mesh-e2e-v1-1p:$HOST1P_TOKEN:--no-shaping --e2e-envelope 1" \
	    "relay-e2e:$RELAY_TOKEN:--no-shaping" "relay-plain:$RELAY_TOKEN:--no-e2e" \
	    "mesh-shaped:$HOST_TOKEN:"; do
		IFS=: read -r name tok extra <<<"$row"
		# shellcheck disable=SC2086
		mesh_node "$name" client --join "$tok" $extra
		routes_m "$NODE_PORT"
		add_target "$name" "http://127.0.0.1:$NODE_PORT" "$NODE_PID"
	done
fi

if part scale && [[ -n $SCALE ]]; then
	start_proc mock-sa 'listening on [0-9]+' "$MOCK" --host 127.0.0.1 --port 0
	SERVICES+=("$START_PID")
	MOCK_SA=${START_LINE##* }
	start_proc mock-sb 'listening on [0-9]+' "$MOCK" --host 127.0.0.1 --port 0
	SERVICES+=("$START_PID")
	MOCK_SB=${START_LINE##* }
	mesh_node scale-local serve --model "m=http://127.0.0.1:$MOCK_SA"
	SERVICES+=("$NODE_PID")
	SCALE_URL[sealmesh]="http://127.0.0.1:$NODE_PORT"
	SCALE_LOGS[sealmesh]=scale-local
	TARGET_NODES[sealmesh]="sealmesh=$NODE_PID"
	mesh_node scale-host serve --model "m=http://127.0.0.1:$MOCK_SB"
	SERVICES+=("$NODE_PID")
	SH_PID=$NODE_PID
	# Unshaped answers: the rows measure stream capacity. Shaped (the
	# default) each open answer sends a padded frame every tick, which at
	# 10,000 streams is its own load (bench/shape.sh measures shaping).
	mesh_node scale-hop client --join "$NODE_TOKEN" --no-shaping
	SERVICES+=("$NODE_PID")
	routes_m "$NODE_PORT"
	SCALE_URL[mesh-e2e]="http://127.0.0.1:$NODE_PORT"
	SCALE_LOGS[mesh-e2e]="scale-hop scale-host"
	TARGET_NODES[mesh-e2e]="client=$NODE_PID host=$SH_PID"
	for t in sealmesh mesh-e2e; do
		"$LOADGEN" --url "${SCALE_URL[$t]}/v1/chat/completions" --concurrency 8 \
		    --requests 64 --stream --tokens 4 --delay-ms 1 --json >/dev/null
	done
fi

log "mock :$MOCK_PORT  nginx :$NGINX_PORT  sealmesh :$SM_PORT  rows: ${TARGETS[*]}  ($(nproc) cores, shared, unpinned)"

for t in "${TARGETS[@]}"; do
	warm_up "$t"
done

# RSS first, right after warm-up: later high-concurrency cells would leave
# allocator caches behind and hide the per-stream cost in the "idle" figure.
for t in "${TARGETS[@]}"; do
	part rss || break
	[[ $t == direct || $t == *-plain ]] && continue
	measure_rss "$t"
done

# The scale rows, also before the cells (same reason).
NOFILE_HARD=$(ulimit -Hn)
for n in $SCALE; do
	part scale || break
	for t in sealmesh mesh-e2e; do
		[[ -n ${SCALE_URL[$t]:-} ]] || continue
		m=$n
		# The local gateway holds a client and a backend socket per stream.
		if [[ $t == sealmesh && $NOFILE_HARD != unlimited ]] &&
		    ((2 * n + 256 > NOFILE_HARD)); then
			m=$(((NOFILE_HARD - 256) / 2))
			log "sealmesh: open files hard limit $NOFILE_HARD: local gateway row at $m streams, not $n"
		fi
		measure_scale "$t" "$m" "$n"
	done
done

# One 8 MiB request through the relay, sealed and plaintext: the envelope's
# cost on a large body (a long prompt), end to end.
if [[ ${BENCH_MESH:-1} == 1 ]] && part big8m; then
	for t in relay-e2e relay-plain; do
		for ((rep = 1; rep <= REPS; rep++)); do
			measure "$t" big8m 1 "$rep" --requests 4 --no-stream \
			    --tokens 4 --delay-ms 0 --body-bytes $((8 * 1024 * 1024 - 4096))
		done
	done
fi

for scen in $SCENARIOS; do
	part cells || break
	for conc in $CONCS; do
		for ((rep = 1; rep <= REPS; rep++)); do
			for t in "${TARGETS[@]}"; do
				row_on "$t" || continue
				# shellcheck disable=SC2046
				measure "$t" "$scen" "$conc" "$rep" \
				    --duration "$DURATION" $(scen_args "$scen")
			done
		done
	done
done

# Issue 10: a member flooding a TPM host with challenges while a client
# streams through it (bench/attest_flood.sh; needs swtpm). Its rows go to
# the raw results and to attest-flood-<UTC>.jsonl. BENCH_ATTEST_FLOOD=0
# leaves it out.
if [[ ${BENCH_ATTEST_FLOOD:-1} == 1 ]] && command -v swtpm >/dev/null; then
	BUILD=$BUILD bench/attest_flood.sh >>"$RAW" || log "attest-flood: failed"
fi

mkdir -p "$OUTDIR"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
grep '"kind":"attest_flood' "$RAW" >"$OUTDIR/attest-flood-$STAMP.jsonl" || true
node bench/report.mjs --raw "$RAW" --out "$OUTDIR/bench-$STAMP.json" \
    --latest "$OUTDIR/latest.json" --strict "$STRICT" \
    --meta "$(jq -cn --arg stamp "$STAMP" --arg nginx "$("$NGINX" -v 2>&1)" \
        --argjson cores "$(nproc)" --argjson duration "$DURATION" \
        --argjson reps "$REPS" --argjson tokens "$TOKENS" \
        --argjson delay_ms "$DELAY_MS" --argjson ns_tokens "$NS_TOKENS" \
        --argjson rss_tokens "$RSS_TOKENS" --argjson rss_delay_ms "$RSS_DELAY_MS" \
        --argjson scale_tokens "$SCALE_TOKENS" --argjson scale_delay_ms "$SCALE_DELAY_MS" \
        --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        '{time_utc:$stamp, nginx:$nginx, cores:$cores, duration_s:$duration,
          reps:$reps, stream:{tokens:$tokens, delay_ms:$delay_ms},
          nostream:{tokens:$ns_tokens, delay_ms:0},
          rss:{tokens:$rss_tokens, delay_ms:$rss_delay_ms},
          scale:{tokens:$scale_tokens, delay_ms:$scale_delay_ms}, commit:$commit,
          note:"load generator, mock, proxies share the cores; nothing pinned"}')"
