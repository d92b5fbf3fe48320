#!/usr/bin/env bash
# Durable writes through Raft, side by side in one run (BENCHMARKS.md,
# "Security"): examples/bench_writes.rs with a 3-voter cluster per mode.
#
#   scripts/bench/writes.sh                                  # 1 and 64 clients, 10 s, insecure and secure
#   CLIENTS=64 DURATION=5 MODES=secure scripts/bench/writes.sh
#
# MODES: `insecure` (plain HTTP, no tokens) and/or `secure` (mutual TLS
# between nodes, HTTPS and tokens on the API). etcd is not part of this
# script yet (issue 15).
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=${CLIENTS:-1,64}
DURATION=${DURATION:-10}
MODES=${MODES:-insecure,secure}
cargo build --release --locked --example bench_writes >&2
exec target/release/examples/bench_writes "$CLIENTS" "$DURATION" "$MODES"
