#!/usr/bin/env bash
# run.sh measures shopbridge against baselines measured in the same run on
# the same machine and prints a table; see bench/README.md. It installs
# nothing, uses loopback only and stops every process it started on exit.
#
# Environment: SHOPBRIDGE_BIN (default bin/shopbridge), IDLE_SECONDS (60),
# WRK_SECONDS (10), ROUNDS (1: wrk runs per server in section 1, alternating;
# the median is kept), POST_SECONDS (10), BENCH_BILLS (100000) and
# BENCH_JOURNAL (1000000) for the start-up store, BENCH_TMPDIR (where stores go; must be
# on the disk the daemon would use; default $TMPDIR or /tmp),
# BENCH_RESULTS (default bench/results.txt), BENCH_SECTIONS (default
# "1 2 3 4 parts": the sections to run; the summary shows what ran) and
# BENCH_PARTS (default: every bench/part-*.sh; e.g. "rush sync").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SHOPBRIDGE_BIN:-$ROOT/bin/shopbridge}
IDLE_SECONDS=${IDLE_SECONDS:-60}
WRK_SECONDS=${WRK_SECONDS:-10}
POST_SECONDS=${POST_SECONDS:-10}
ROUNDS=${ROUNDS:-1}
BILLS=${BENCH_BILLS:-100000}
JOURNAL=${BENCH_JOURNAL:-1000000}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results.txt}
SECTIONS=" ${BENCH_SECTIONS:-1 2 3 4 parts} "
want() { [[ $SECTIONS == *" $1 "* ]]; }
BILL_ID=49040 # a --demo bill

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench: missing ${missing[*]}; install with: apt-get install -y ${missing[*]}" >&2
	exit 1
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v go >/dev/null || { echo "bench: go is not on PATH (needed to build the bench programs)" >&2; exit 1; }
command -v curl >/dev/null || { echo "bench: missing curl; install with: apt-get install -y curl" >&2; exit 1; }
[ -x "$BIN" ] || { echo "bench: $BIN not found; run make build first (or make bench)" >&2; exit 1; }

W=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/shopbridge-bench.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

: >"$RESULTS"
say() { printf '%s\n' "$*" | tee -a "$RESULTS"; }
# kv LINE KEY prints the value of KEY=value in a RESULT line.
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# ratio A B prints A/B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# met VALUE OP GOAL prints yes or NO.
met() { awk -v a="$1" -v g="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? a >= g : a < g; print ok ? "yes" : "NO" }'; }

# start_bg LOG CMD... starts CMD with stderr to LOG, waits for its
# "msg=listening addr=..." line and sets BG_PID and BG_ADDR.
start_bg() {
	local log=$1 i
	shift
	"$@" 2>"$log" >/dev/null &
	BG_PID=$!
	PIDS+=("$BG_PID")
	for i in $(seq 1 600); do
		BG_ADDR=$(sed -n 's/.*msg=listening addr=\([^ ]*\).*/\1/p' "$log" | head -n1)
		[ -n "$BG_ADDR" ] && return 0
		kill -0 "$BG_PID" 2>/dev/null || { echo "bench: $1 exited at start:" >&2; cat "$log" >&2; exit 1; }
		sleep 0.05
	done
	echo "bench: $1 did not start listening in 30 s" >&2
	cat "$log" >&2
	exit 1
}
stop_pid() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

echo "building bench programs..." >&2
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$W/tools/" ./bench/...)
T=$W/tools

FSTYPE=$(stat -f -c %T "$W")
say "shopbridge bench — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "daemon: $("$BIN" version 2>/dev/null | head -n1)"
say "machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)), $(uname -sr), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews req/s; server CPU per request less so)"
say "stores in $W ($FSTYPE); wrk $(wrk -v 2>&1 | head -n1 | awk '{print $2}'), $("$NGINX" -v 2>&1 | sed 's/.*version: //'), $(go version | awk '{print $3}')"
[ "$FSTYPE" = tmpfs ] && say "WARNING: $W is tmpfs: fsync costs nothing here; set BENCH_TMPDIR to a directory on disk"
say ""

# ---- 1. GET /api/v2/bill/byid/:id: shopbridge vs nginx vs bare net/http ----
if want 1; then
say "== 1. GET /api/v2/bill/byid/$BILL_ID — wrk -t2 -c64 -d${WRK_SECONDS}s after a 2 s warm-up, $ROUNDS round(s) (wrk and server share the cores)"
mkdir -p "$W/d1"
start_bg "$W/d1.log" "$BIN" run --listen 127.0.0.1:0 --data "$W/d1" --mdns=false --demo
DPID=$BG_PID DADDR=$BG_ADDR
mkdir -p "$W/nginx/root/api/v2/bill/byid" "$W/nginx/tmp"
curl -fsS -o "$W/nginx/root/api/v2/bill/byid/$BILL_ID" "http://$DADDR/api/v2/bill/byid/$BILL_ID"
BILL_FILE=$W/nginx/root/api/v2/bill/byid/$BILL_ID
stop_pid "$DPID"
say "bill: $(wc -c <"$BILL_FILE") bytes"

wrk_run() { # URL PID -> RESULT line of the measured run, plus the server's CPU per request
	local a b r line
	wrk -t2 -c64 -d2s "$1" >/dev/null
	a=$("$T/proc" cpu "$2")
	line=$(wrk -t2 -c64 -d"${WRK_SECONDS}s" --latency -s "$ROOT/bench/wrk-report.lua" "$1" | grep '^RESULT')
	b=$("$T/proc" cpu "$2")
	r=$(kv "$line" requests)
	echo "$line server_cpu_us_per_req=$(awk -v ms=$((b - a)) -v r="$r" 'BEGIN { printf "%.1f", (r > 0 ? ms * 1000 / r : 0) }') load=$(cut -d' ' -f1 /proc/loadavg)"
}

NPORT=$("$T/proc" freeport)
# A tuned nginx, the baseline to beat: a worker per core, no access log,
# sendfile, the file's descriptor and metadata cached (no open/fstat per
# request), connections kept alive for the whole run.
cat >"$W/nginx/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes $(nproc);
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    open_file_cache_min_uses 1;
    open_file_cache_errors on;
    default_type application/json;
    client_body_temp_path $W/nginx/tmp/body;
    proxy_temp_path $W/nginx/tmp/proxy;
    fastcgi_temp_path $W/nginx/tmp/fastcgi;
    uwsgi_temp_path $W/nginx/tmp/uwsgi;
    scgi_temp_path $W/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NPORT;
        root $W/nginx/root;
    }
}
CONF
"$NGINX" -p "$W/nginx" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" 2>"$W/nginx.log" &
NGPID=$!
PIDS+=("$NGPID")
for i in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$NPORT/api/v2/bill/byid/$BILL_ID" 2>/dev/null && break; sleep 0.05; done
start_bg "$W/bare.log" "$T/bare" -file "$BILL_FILE"
BPID=$BG_PID BADDR=$BG_ADDR
start_bg "$W/d1.log" "$BIN" run --listen 127.0.0.1:0 --data "$W/d1" --mdns=false --demo
DPID=$BG_PID DADDR=$BG_ADDR
URL_N=http://127.0.0.1:$NPORT/api/v2/bill/byid/$BILL_ID
URL_B=http://$BADDR/api/v2/bill/byid/$BILL_ID
URL_D=http://$DADDR/api/v2/bill/byid/$BILL_ID
for u in "$URL_N" "$URL_B" "$URL_D"; do
	curl -fsS "$u" | cmp -s - "$BILL_FILE" || { echo "bench: $u does not answer the bill's bytes" >&2; cat "$W/nginx/error.log" >&2; exit 1; }
done
# All three listen throughout (idle servers cost nothing); with ROUNDS > 1
# the runs alternate and the median by req/s is kept, which evens out other
# load on a shared machine.
L_N= L_B= L_D=
for r in $(seq 1 "$ROUNDS"); do
	line=$(wrk_run "$URL_N" "$NGPID"); L_N+=$line$'\n'; say "nginx:      $line"
	line=$(wrk_run "$URL_B" "$BPID"); L_B+=$line$'\n'; say "bare:       $line"
	line=$(wrk_run "$URL_D" "$DPID"); L_D+=$line$'\n'; say "shopbridge: $line"
	sleep 0.5 # let the journal writer catch up before the next round
done
J1=$("$T/proc" status "http://$DADDR")
say "shopbridge $J1"
stop_pid "$NGPID"
stop_pid "$BPID"
stop_pid "$DPID"
# median_rps LINES prints the line with the median req/s.
median_rps() { printf '%s' "$1" | grep RESULT | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^rps=/) print substr($i, 5), $0 }' | sort -n | cut -d' ' -f2- | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }
R_NGINX=$(median_rps "$L_N") R_BARE=$(median_rps "$L_B") R_DAEMON=$(median_rps "$L_D")
[ "$ROUNDS" -gt 1 ] && say "medians of $ROUNDS rounds: nginx rps $(kv "$R_NGINX" rps), bare rps $(kv "$R_BARE" rps), shopbridge rps $(kv "$R_DAEMON" rps)"
RPS_N=$(kv "$R_NGINX" rps) RPS_B=$(kv "$R_BARE" rps) RPS_D=$(kv "$R_DAEMON" rps)
say "ratios: shopbridge/nginx $(ratio "$RPS_D" "$RPS_N") (goal >= 0.60), shopbridge/bare $(ratio "$RPS_D" "$RPS_B") (goal >= 0.90), bare/nginx $(ratio "$RPS_B" "$RPS_N")"
say ""
fi

# ---- 2. durable receipts/s vs the disk's serial write+fsync rate ----
if want 2; then
say "== 2. POST /api/v2/receipts — 64 concurrent posters for ${POST_SECONDS}s vs serial 1 KiB write+fsync on the same filesystem"
mkdir -p "$W/d2"
R_FSYNC=$("$T/fsync" -dir "$W/d2" -d 3s)
say "fsync:      $R_FSYNC"
start_bg "$W/d2.log" "$BIN" run --listen 127.0.0.1:0 --data "$W/d2" --mdns=false --demo
DPID=$BG_PID
A=$("$T/proc" cpu "$DPID")
R_POST=$("$T/post" -url "http://$BG_ADDR" -c 64 -d "${POST_SECONDS}s" 2>"$W/post.log")
B=$("$T/proc" cpu "$DPID")
R_POST="$R_POST server_cpu_us_per_receipt=$(awk -v ms=$((B - A)) -v r="$(kv "$R_POST" ok)" 'BEGIN { printf "%.1f", (r > 0 ? ms * 1000 / r : 0) }') load=$(cut -d' ' -f1 /proc/loadavg)"
stop_pid "$DPID"
say "shopbridge: $R_POST"
[ -s "$W/post.log" ] && say "poster saw: $(sort -u "$W/post.log" | head -n5 | tr '\n' ';')"
OPS_F=$(kv "$R_FSYNC" ops_per_s) OPS_R=$(kv "$R_POST" receipts_per_s)
say "ratio: shopbridge receipts/s / serial fsyncs/s $(ratio "$OPS_R" "$OPS_F") (goal >= 2); $(kv "$R_POST" receipts_per_commit) receipts per store commit (commits include journal batches)"
say ""
fi

# ---- 3. start-up time and RSS with 100,000 bills and 1,000,000 journal entries ----
if want 3; then
say "== 3. start-up and RSS — $BILLS bills, $JOURNAL journal entries; median of 3 starts"
R_MK=$("$T/mkstore" -out "$W/d3/shopbridge.db" -bills "$BILLS" -journal "$JOURNAL")
say "store:      $R_MK"
# The default --journal-max-size (256MiB) would prune this journal 10 s
# after start; the starts are shorter, but keep the store as built.
R_START_ALL=$("$T/proc" startup -bin "$BIN" -data "$W/d3" -n 3 -ids "900001,$((900000 + BILLS / 2)),$((900000 + BILLS))" -log "$W/d3.log" -- --journal-max-size 8GiB)
while IFS= read -r line; do
	case $line in
	RESULT*) R_START=$line ;;
	*) say "$line" ;;
	esac
done <<<"$R_START_ALL"
say "median:     $R_START"
say ""
fi

# ---- 4. idle cost ----
if want 4; then
say "== 4. idle — --demo, no upstream, mDNS off; ${IDLE_SECONDS}s after a 5 s settle"
mkdir -p "$W/d4"
R_IDLE=$("$T/proc" idle -bin "$BIN" -data "$W/d4" -settle 5s -d "${IDLE_SECONDS}s" -log "$W/d4.log" -- --demo)
say "shopbridge: $R_IDLE"
say ""
fi

# ---- more parts: bench/part-*.sh (e.g. sync figures) ----
if want parts; then
shopt -s nullglob
for part in "$ROOT"/bench/part-*.sh; do
	[ -x "$part" ] || continue
	p=${part##*/part-} p=${p%.sh}
	[[ -z ${BENCH_PARTS:-} || " $BENCH_PARTS " == *" $p "* ]] || continue
	say "== $(basename "$part")"
	mkdir -p "$W/part/$(basename "$part")"
	SHOPBRIDGE_BIN=$BIN BENCH_TOOLS=$T BENCH_TMP=$W/part/$(basename "$part") BENCH_ROOT=$ROOT \
		"$part" | tee -a "$RESULTS" || say "$(basename "$part") failed (exit $?)"
	say ""
done
fi

# ---- summary ----
# Sections not run leave their figures empty.
R_NGINX=${R_NGINX:-} R_BARE=${R_BARE:-} R_DAEMON=${R_DAEMON:-} R_START=${R_START:-} R_IDLE=${R_IDLE:-}
R_POST=${R_POST:-} R_FSYNC=${R_FSYNC:-} J1=${J1:-} RPS_N=${RPS_N:-} RPS_B=${RPS_B:-} RPS_D=${RPS_D:-} OPS_F=${OPS_F:-} OPS_R=${OPS_R:-}
P99_N=$(kv "$R_NGINX" p99_us) P99_B=$(kv "$R_BARE" p99_us) P99_D=$(kv "$R_DAEMON" p99_us)
READY=$(kv "$R_START" ready_ms) RSS=$(kv "$R_START" rss_after_mib) HWM=$(kv "$R_START" hwm_after_mib)
CPU=$(kv "$R_IDLE" cpu_pct_schedstat)
{
	printf '%-44s %14s %14s %8s %10s %5s\n' "measure" "shopbridge" "baseline" "ratio" "goal" "met"
	printf '%-44s %14s %14s %8s %10s %5s\n' "bill/byid req/s vs nginx" "$RPS_D" "$RPS_N" "$(ratio "$RPS_D" "$RPS_N")" ">= 0.60" "$(met "$(ratio "$RPS_D" "$RPS_N")" '>=' 0.60)"
	printf '%-44s %14s %14s %8s %10s %5s\n' "bill/byid req/s vs bare net/http" "$RPS_D" "$RPS_B" "$(ratio "$RPS_D" "$RPS_B")" ">= 0.90" "$(met "$(ratio "$RPS_D" "$RPS_B")" '>=' 0.90)"
	printf '%-44s %14s %14s %8s %10s %5s\n' "bill/byid p99 us (nginx / bare baselines)" "$P99_D" "$P99_N / $P99_B" "" "" ""
	printf '%-44s %14s %14s %8s %10s %5s\n' "journal entries written / dropped (section 1)" "$(printf '%s\n' "$J1" | sed -n 's/.*written=\([0-9]*\) dropped=\([0-9]*\).*/\1 \/ \2/p')" "" "" "" ""
	printf '%-44s %14s %14s %8s %10s %5s\n' "bill/byid server CPU us/req (nginx / bare)" "$(kv "$R_DAEMON" server_cpu_us_per_req)" "$(kv "$R_NGINX" server_cpu_us_per_req) / $(kv "$R_BARE" server_cpu_us_per_req)" "" "" ""
	printf '%-44s %14s %14s %8s %10s %5s\n' "durable receipts/s vs serial fsync/s" "$OPS_R" "$OPS_F" "$(ratio "$OPS_R" "$OPS_F")" ">= 2" "$(met "$(ratio "$OPS_R" "$OPS_F")" '>=' 2)"
	printf '%-44s %14s %14s %8s %10s %5s\n' "receipt server CPU us/receipt" "$(kv "$R_POST" server_cpu_us_per_receipt)" "" "" "" ""
	printf '%-44s %14s %14s %8s %10s %5s\n' "receipts per store commit" "$(kv "$R_POST" receipts_per_commit)" "" "" "" ""
	printf '%-44s %14s %14s %8s %10s %5s\n' "start-up ms, exec -> /healthz (median of 3)" "$READY" "" "" "< 300" "$(met "$READY" '<' 300)"
	printf '%-44s %14s %14s %8s %10s %5s\n' "VmRSS MiB after list/bill requests" "$RSS" "" "" "< 64" "$(met "$RSS" '<' 64)"
	printf '%-44s %14s %14s %8s %10s %5s\n' "VmHWM MiB after list/bill requests" "$HWM" "" "" "< 64" "$(met "$HWM" '<' 64)"
	printf '%-44s %14s %14s %8s %10s %5s\n' "VmRSS MiB after /admin/api/status" "$(kv "$R_START" rss_status_mib)" "" "" "" ""
	printf '%-44s %14s %14s %8s %10s %5s\n' "idle CPU % of one core" "$CPU" "" "" "< 0.5" "$(met "$CPU" '<' 0.5)"
	printf '%-44s %14s %14s %8s %10s %5s\n' "idle wake-ups/s" "$(kv "$R_IDLE" wakeups_per_s)" "" "" "" ""
} | tee -a "$RESULTS"
echo "results written to $RESULTS" >&2
