#!/usr/bin/env bash
# Runs the overlay simulator figures of BENCHMARKS.md ("Overlays
# (simulator)"). Output: one JSON report per run in $OUT (default
# target/bench-overlays), plus `time -v` output for the timed runs.
# Usage: scripts/bench_overlays.sh [timed|quality|sweep|sizes|all]
# SIM=path/to/simulate uses a prebuilt binary instead of building one.
set -euo pipefail
OUT=${OUT:-target/bench-overlays}
mkdir -p "$OUT"
if [[ -z ${SIM:-} ]]; then
  cargo build --release --example simulate
  SIM=${CARGO_TARGET_DIR:-target}/release/examples/simulate
fi
COMMON=(--nodes 10000 --rounds 30 --latency-min-ms 10 --latency-max-ms 50 --contacts 100)
what=${1:-all}

if [[ $what == timed || $what == all ]]; then
  for seed in 7 1 123; do
    /usr/bin/time -v "$SIM" --topology pub_sub "${COMMON[@]}" --sender fixed --seed "$seed" --json \
      > "$OUT/pubsub-fixed-$seed.json" 2> "$OUT/pubsub-fixed-$seed.time"
  done
fi
if [[ $what == quality || $what == all ]]; then
  for seed in 7 1 123; do
    "$SIM" --topology pub_sub "${COMMON[@]}" --sender random --seed "$seed" --json > "$OUT/pubsub-random-$seed.json"
    "$SIM" --topology hyparview "${COMMON[@]}" --sender random --seed "$seed" --json > "$OUT/hyparview-random-$seed.json"
  done
fi
if [[ $what == sweep || $what == all ]]; then
  for f in 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 0.95; do
    # Five warm-up rounds first, so Plumtree's tree has formed.
    for t in pub_sub hyparview; do
      "$SIM" --topology $t --nodes 10000 --rounds 15 --fail-round 6 --contacts 100 --fail "$f" --seed 7 --json > "$OUT/sweep-$t-$f.json"
    done
  done
fi
if [[ $what == sizes || $what == all ]]; then
  for n in 10 100 1000 10000; do
    "$SIM" --topology all --nodes "$n" --rounds 30 --contacts 100 --seed 7 --json > "$OUT/sizes-$n.json"
  done
fi
