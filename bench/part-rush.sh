#!/usr/bin/env bash
# The evening rush on one core (issue 19.2, 19.4), in the same run as the
# others: the daemon pinned to CPU 0 (taskset) with GOMAXPROCS=1 over a
# mkstore store of BENCH_BILLS (100,000) bills and BENCH_JOURNAL (1,000,000)
# journal entries, ten simulated registers (bench/rush) pinned to CPU 1:
# first alone ("quiet"), then while the upstream returns after an outage,
# the 10,000 receipts queued meanwhile drain at 50 ms and a backup of the
# store streams to a reader taking 4 MiB/s ("rush"). p50/p99/max of each
# kind of terminal answer in each phase (goals p99 < 5 ms, max < 50 ms),
# the daemon's CPU, VmRSS/VmHWM (goal < 64 MiB) and the load. RUSH_SECONDS
# (20) is the quiet phase and the least the rush lasts.
set -euo pipefail
: "${SHOPBRIDGE_BIN:?} ${BENCH_TOOLS:?} ${BENCH_TMP:?}"
BILLS=${BENCH_BILLS:-100000}
JOURNAL=${BENCH_JOURNAL:-1000000}
command -v taskset >/dev/null || { echo "rush: skipped: taskset not found (util-linux)"; exit 0; }
if [ "$(nproc)" -lt 2 ]; then
	echo "rush: skipped: the registers need a core besides the daemon's"
	exit 0
fi
echo "store: $("$BENCH_TOOLS/mkstore" -out "$BENCH_TMP/shopbridge.db" -bills "$BILLS" -journal "$JOURNAL")"
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
taskset -c 1 "$BENCH_TOOLS/rush" -bin "$SHOPBRIDGE_BIN" -store "$BENCH_TMP/shopbridge.db" -cpus 0 -gomaxprocs 1 \
	-d "${RUSH_SECONDS:-20}s" -max-rush 60s >"$BENCH_TMP/out.txt"
rm -f "$BENCH_TMP/shopbridge.db"
cat "$BENCH_TMP/out.txt"
printf '%-40s %10s %10s %10s %6s %6s\n' "rush (1 core, GOMAXPROCS=1), ms" "p50" "p99" "max" "p99<5" "max<50"
grep '^RESULT phase=.* kind=' "$BENCH_TMP/out.txt" | while read -r line; do
	kv() { printf '%s\n' "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
	printf '%-40s %10s %10s %10s %6s %6s\n' "$(kv phase) $(kv kind) (n=$(kv n), errors $(kv errors))" "$(kv p50_ms)" "$(kv p99_ms)" "$(kv max_ms)" "$(kv p99_met)" "$(kv max_met)"
done
M=$(grep '^RESULT memory' "$BENCH_TMP/out.txt" || true)
kv() { printf '%s\n' "$M" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
printf '%-40s %10s %10s %6s\n' "daemon VmHWM MiB / RssAnon / RssFile" "$(kv vmhwm_mib)" "$(kv rss_anon_mib) / $(kv rss_file_mib)" "$(awk -v a="$(kv vmhwm_mib)" 'BEGIN { print (a != "" && a < 64) ? "yes" : "NO" }')"
