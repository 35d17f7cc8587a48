#!/usr/bin/env bash
# Admin console figures of issue 8, in the same run as the others: a store
# of BENCH_BILLS (100,000) bills and BENCH_JOURNAL (1,000,000) journal
# entries from mkstore; the overview's and the first journal page's load in
# Debian's chromium (navigation start → content painted, median of 11 loads
# with a cleared cache and 11 with a warm one), the JSON endpoints behind
# them from a Go client (median and p95 of 50), and the daemon's RSS after
# all of it. Goals: under 200 ms each, RSS under 64 MiB. Without chromium
# the browser figures are skipped (the line says so).
set -euo pipefail
: "${SHOPBRIDGE_BIN:?} ${BENCH_TOOLS:?} ${BENCH_TMP:?}"
BILLS=${BENCH_BILLS:-100000}
JOURNAL=${BENCH_JOURNAL:-1000000}
echo "store: $("$BENCH_TOOLS/mkstore" -out "$BENCH_TMP/data/shopbridge.db" -bills "$BILLS" -journal "$JOURNAL")"
: >"$BENCH_TMP/empty.toml"
# The default --journal-max-size (256MiB) would prune this journal soon
# after start; keep the store as built.
"$BENCH_TOOLS/proc" console -bin "$SHOPBRIDGE_BIN" -data "$BENCH_TMP/data" -n 11 -api-n 50 -log "$BENCH_TMP/daemon.log" -- \
	--config "$BENCH_TMP/empty.toml" --journal-max-size 8GiB >"$BENCH_TMP/out.txt"
cat "$BENCH_TMP/out.txt"
R=$(grep '^RESULT' "$BENCH_TMP/out.txt")
kv() { printf '%s\n' "$R" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
met() { awk -v a="$1" -v g="$2" 'BEGIN { print (a != "" && a + 0 > 0 && a < g) ? "yes" : "NO" }'; }
printf '%-52s %14s %8s %5s\n' "console ($(kv bills) bills, $(kv journal) journal entries)" "measured" "goal" "met"
printf '%-52s %14s %8s %5s\n' "overview load ms, cold cache / warm (median)" "$(kv overview_cold_ms) / $(kv overview_warm_ms)" "< 200" "$(met "$(kv overview_cold_ms)" 200)"
printf '%-52s %14s %8s %5s\n' "first journal page load ms, cold / warm (median)" "$(kv journal_cold_ms) / $(kv journal_warm_ms)" "< 200" "$(met "$(kv journal_cold_ms)" 200)"
printf '%-52s %14s %8s %5s\n' "chromium CPU ms per load: overview / journal (cold)" "$(kv overview_cold_cpu_ms) / $(kv journal_cold_cpu_ms)" "" ""
printf '%-52s %14s %8s %5s\n' "GET /admin/api/overview ms, median / p95" "$(kv overview_api_ms) / $(kv overview_api_p95_ms)" "" ""
printf '%-52s %14s %8s %5s\n' "GET /admin/api/journal/page ms, median / p95" "$(kv journal_api_ms) / $(kv journal_api_p95_ms)" "" ""
printf '%-52s %14s %8s %5s\n' "daemon VmRSS / VmHWM MiB after the loads" "$(kv rss_mib) / $(kv hwm_mib)" "< 64" "$(met "$(kv hwm_mib)" 64)"
