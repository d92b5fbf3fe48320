#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 60), one
# after another, and prints per target the executions, exec/s, coverage
# (libFuzzer's final cov/ft) and crashes. A crash, OOM or timeout input is
# copied into fuzz/regressions/<target>/ (replayed by the stable test
# tests/fuzz_regressions.rs) and the script exits 1.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs a nightly toolchain (the first `nightly*` of `rustup toolchain
# list`, or FUZZ_TOOLCHAIN) and cargo-fuzz (installed when missing). Runs
# under `nice -n 19`. Corpora grow in fuzz/corpus/<target>/ (not kept),
# seeded from fuzz/regressions/<target>/; logs go to fuzz/logs/.
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
shift || true
if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: SECONDS must be a positive integer, got \`$SECONDS_PER_TARGET\`" >&2
    exit 2
fi

TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    mapfile -t TARGETS < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^topod-fuzz$')
fi

TOOLCHAIN="${FUZZ_TOOLCHAIN:-$(rustup toolchain list | awk '/^nightly/ {print $1; exit}')}"
if [ -z "$TOOLCHAIN" ]; then
    echo "fuzz.sh: no nightly toolchain installed (rustup toolchain list); set FUZZ_TOOLCHAIN" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

mkdir -p fuzz/logs
echo "fuzz.sh: toolchain $TOOLCHAIN, $(cargo fuzz --version), ${SECONDS_PER_TARGET}s per target: ${TARGETS[*]}"
if ! nice -n 19 cargo "+$TOOLCHAIN" fuzz build >fuzz/logs/build.log 2>&1; then
    tail -30 fuzz/logs/build.log >&2
    exit 2
fi

HOST="$(rustc "+$TOOLCHAIN" -vV | sed -n 's/^host: //p')"
BIN_DIR="fuzz/target/$HOST/release"

# The last value of `key: N` in a log (libFuzzer's status lines and final stats).
last_value() { grep -o "$1 *[0-9]*" "$2" | tail -1 | grep -o '[0-9]*$' || echo "?"; }

failed=0
printf '%-12s %14s %10s %8s %8s %8s %8s\n' target executions exec/s cov ft rss_mb crashes
for t in "${TARGETS[@]}"; do
    corpus="fuzz/corpus/$t"
    artifacts="fuzz/artifacts/$t"
    # Only this run's findings in $artifacts.
    rm -rf "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    log="fuzz/logs/$t.log"
    # The binary built above, run directly: a source edit during a long
    # run does not rebuild in the middle of it.
    nice -n 19 "$BIN_DIR/$t" "$corpus" "fuzz/regressions/$t" \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$artifacts/" >"$log" 2>&1 || true
    execs=$(last_value 'stat::number_of_executed_units:' "$log")
    rate=$(last_value 'stat::average_exec_per_sec:' "$log")
    rss=$(last_value 'stat::peak_rss_mb:' "$log")
    cov=$(last_value 'cov:' "$log")
    ft=$(last_value 'ft:' "$log")
    crashes=0
    for f in "$artifacts"/*; do
        [ -f "$f" ] || continue
        crashes=$((crashes + 1))
        cp "$f" "fuzz/regressions/$t/"
        echo "fuzz.sh: $t: $(basename "$f") copied to fuzz/regressions/$t/ (see $log)" >&2
    done
    # A failure that left no input (e.g. the target did not start).
    if [ "$crashes" -eq 0 ] && ! grep -q '^Done [0-9]* runs' "$log"; then
        echo "fuzz.sh: $t did not finish its run (see $log)" >&2
        crashes="?"
    fi
    [ "$crashes" = 0 ] || failed=1
    printf '%-12s %14s %10s %8s %8s %8s %8s\n' "$t" "$execs" "$rate" "$cov" "$ft" "$rss" "$crashes"
done
exit "$failed"
