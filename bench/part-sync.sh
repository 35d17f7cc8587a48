#!/usr/bin/env bash
# Sync figures, in the same run as the others: 1,000 open bills mirrored
# from the simulator at 0 ms and 50 ms simulated latency, 10,000 at 50 ms
# (goal < 15 s), 1,000 at 50 ms from one that answers 429 above 8 calls at
# once (refused share, goal < 5 %); and 10,000
# receipts queued during an outage drained when it returns, with the
# adaptive push window (capped at 64, the default --push-in-flight) and
# with the window fixed at 8 (the push before the adaptive window),
# against a simulator that takes any number of calls at once and, at
# 50 ms, one that answers 429 above 8 (crmsim --max-concurrent 8). The
# simulator, a real bbolt store and the syncer run in one process over
# loopback; see sync/bench.
set -euo pipefail
cd "${BENCH_ROOT:-$(dirname "$0")/..}"
out=${BENCH_TMP:-$(mktemp -d)}
go build -o "$out/syncbench" ./sync/bench
"$out/syncbench" -bills 1000 -receipts 0 -latency 0,50ms
"$out/syncbench" -bills 10000 -receipts 0 -latency 50ms
"$out/syncbench" -bills 1000 -receipts 0 -latency 50ms -max-concurrent 8
"$out/syncbench" -bills 0 -receipts 10000 -latency 0 -max-concurrent 0 -inflight 64 -fixed 8
"$out/syncbench" -bills 0 -receipts 10000 -latency 50ms -max-concurrent 0,8 -inflight 64 -fixed 8
