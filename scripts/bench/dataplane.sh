#!/usr/bin/env bash
# Data-plane benchmarks (issue 4): point-to-point throughput and latency
# through the embedding API next to plain TCP with the same framing
# (examples/bench_p2p.rs), then broadcast delivery latency per topology on
# 5 nodes (examples/bench_broadcast.rs). Both start in-process clusters with
# the real TCP data plane on 127.0.0.1 (ports 0); nothing else is needed.
#
# Usage: scripts/bench/dataplane.sh
# Environment (defaults in brackets):
#   RUNS        bench_p2p repetitions (the machine is shared: compare runs) [3]
#   SECS        seconds of each throughput run [5]
#   PINGS       round trips of each latency run [3000]
#   COUNT       broadcasts per topology [2000]
#   INTERVAL_US pause between broadcasts, µs [2000]
#   CARGO_TARGET_DIR is honoured for the release build.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/scripts/bench
# shellcheck source=lib.sh
. "$HERE/lib.sh"

RUNS=${RUNS:-3}
SECS=${SECS:-5}
PINGS=${PINGS:-3000}
COUNT=${COUNT:-2000}
INTERVAL_US=${INTERVAL_US:-2000}

log "building the benches (release)"
(cd "$REPO" && cargo build --release --quiet --example bench_p2p --example bench_broadcast) >&2
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/examples

for i in $(seq 1 "$RUNS"); do
  log "bench_p2p run $i/$RUNS (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$BIN/bench_p2p" --secs "$SECS" --pings "$PINGS"
done

log "bench_broadcast (load: $(cut -d' ' -f1-3 /proc/loadavg))"
"$BIN/bench_broadcast" --count "$COUNT" --interval-us "$INTERVAL_US"
