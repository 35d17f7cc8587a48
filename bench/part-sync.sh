#!/usr/bin/env bash
# Sync figures of issue 3, in the same run as the others: 1,000 open bills
# mirrored from the simulator and 10,000 receipts queued during an outage
# drained when it returns, at 0 ms and 50 ms simulated latency, with the
# default 8 receipts in flight and with --push-in-flight 16. The simulator,
# a real bbolt store and the syncer run in one process over loopback.
set -euo pipefail
cd "${BENCH_ROOT:-$(dirname "$0")/..}"
go run ./sync/bench -bills 1000 -receipts 10000 -latency 0,50ms -inflight 8,16
