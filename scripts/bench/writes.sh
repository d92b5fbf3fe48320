#!/usr/bin/env bash
# Durable-write benchmark: etcd (3 nodes, loopback, HTTP gateway
# `POST /v3/kv/put`) and topod (3 nodes, `topod dev`, leader's
# `PUT /v1/policy`), side by side, both driven by wrk with the same Lua
# script (scripts/bench/put.lua).
#
# Usage: scripts/bench/writes.sh
# Environment (defaults in brackets):
#   DURATION      seconds per wrk run [15]
#   RUNS          rounds; each round measures every system and load once,
#                 the table shows the medians over rounds [3]
#   HIGH_CONNS    connections of the concurrent load [64]
#   HIGH_THREADS  wrk threads of the concurrent load [2]
#   ETCD_PORT     first etcd client port; peers at +10 [23790]
#   TOPOD_PORT    first topod API port; Raft at +100, peer at +200 [17101]
#   SYSTEMS       which systems to measure ["etcd topod"]
#   HISTORY       switches topod commits before it is measured, so that
#                 its history is that long (retention 1000) [0]
#   WORK_DIR      where data dirs and logs go [a new dir under /tmp]
#   KEEP          1 keeps WORK_DIR afterwards [0]
#   BENCH_TOPOD_BIN  use this topod binary instead of building one
#   CARGO_TARGET_DIR is honoured for the release build.
#
# Durability differs: etcd calls fdatasync on its WAL; sled's flush (topod)
# uses sync_file_range, which survives a process crash but not necessarily
# a power loss.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/scripts/bench
# shellcheck source=lib.sh
. "$HERE/lib.sh"

DURATION=${DURATION:-15}
RUNS=${RUNS:-3}
HIGH_CONNS=${HIGH_CONNS:-64}
HIGH_THREADS=${HIGH_THREADS:-2}
ETCD_PORT=${ETCD_PORT:-23790}
TOPOD_PORT=${TOPOD_PORT:-17101}
SYSTEMS=${SYSTEMS:-etcd topod}
HISTORY=${HISTORY:-0}
KEEP=${KEEP:-0}
WORK_DIR=${WORK_DIR:-$(mktemp -d /tmp/topod-bench-writes.XXXXXX)}
mkdir -p "$WORK_DIR"

PIDS=()          # processes this script started (etcd members, topod dev)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid kids
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    kids=$(pgrep -P "$pid" || true)
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
    wait "$pid" 2>/dev/null || true
  done
  if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then
    log "logs and data kept in $WORK_DIR"
  else
    rm -rf "$WORK_DIR"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_packages wrk:wrk etcd:etcd-server curl:curl jq:jq
for s in $SYSTEMS; do [ "$s" = topod ] && build_topod; done

# ---- etcd -----------------------------------------------------------------
ETCD_LEADER=""
start_etcd() {
  local cluster="" i
  for i in 0 1 2; do
    cluster+="${cluster:+,}e$i=http://127.0.0.1:$((ETCD_PORT + 10 + i))"
  done
  check_ports_free "$ETCD_PORT" $((ETCD_PORT + 1)) $((ETCD_PORT + 2)) \
    $((ETCD_PORT + 10)) $((ETCD_PORT + 11)) $((ETCD_PORT + 12))
  for i in 0 1 2; do
    local cp=$((ETCD_PORT + i)) pp=$((ETCD_PORT + 10 + i))
    etcd --name "e$i" --data-dir "$WORK_DIR/etcd/e$i" \
      --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
      --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token "bench-$$" --logger zap --log-level warn \
      >"$WORK_DIR/etcd-e$i.log" 2>&1 &
    PIDS+=($!)
  done
  for i in 0 1 2; do
    wait_http "http://127.0.0.1:$((ETCD_PORT + i))/health" 30 || die "etcd e$i not healthy (see $WORK_DIR/etcd-e$i.log)"
  done
  local deadline=$((SECONDS + 30)) st
  while [ -z "$ETCD_LEADER" ]; do
    for i in 0 1 2; do
      st=$(curl -fsS --max-time 1 -X POST -d '{}' "http://127.0.0.1:$((ETCD_PORT + i))/v3/maintenance/status" 2>/dev/null) || continue
      if [ "$(jq -r '.header.member_id' <<<"$st")" = "$(jq -r '.leader' <<<"$st")" ]; then
        ETCD_LEADER="127.0.0.1:$((ETCD_PORT + i))"
      fi
    done
    [ -n "$ETCD_LEADER" ] || { [ $SECONDS -lt $deadline ] || die "etcd has no leader"; sleep 0.2; }
  done
  curl -fsS -X POST -d '{"key":"YmVuY2gva2V5","value":"MA=="}' "http://$ETCD_LEADER/v3/kv/put" >/dev/null \
    || die "etcd refused a put"
  log "etcd $(etcd --version | head -1 | awk '{print $3}') ready, leader at $ETCD_LEADER"
}

# ---- topod ----------------------------------------------------------------
TOPOD_LEADER=""
start_topod() {
  check_ports_free "$TOPOD_PORT" $((TOPOD_PORT + 1)) $((TOPOD_PORT + 2)) \
    $((TOPOD_PORT + 100)) $((TOPOD_PORT + 101)) $((TOPOD_PORT + 102)) \
    $((TOPOD_PORT + 200)) $((TOPOD_PORT + 201)) $((TOPOD_PORT + 202))
  "$TOPOD_BIN" dev --nodes 3 --data-dir "$WORK_DIR/topod" --api-base-port "$TOPOD_PORT" \
    >"$WORK_DIR/topod-dev.log" 2>&1 &
  PIDS+=($!)
  local deadline=$((SECONDS + 60))
  until grep -q "cluster ready" "$WORK_DIR/topod-dev.log"; do
    kill -0 "${PIDS[-1]}" 2>/dev/null || die "topod dev exited (see $WORK_DIR/topod-dev.log)"
    [ $SECONDS -lt $deadline ] || die "topod not ready (see $WORK_DIR/topod-dev.log)"
    sleep 0.2
  done
  TOPOD_LEADER=$(topod_leader_api "$TOPOD_PORT") || die "topod has no leader"
  curl -fsS -X PUT -H 'Content-Type: application/json' -d '{"cooldown_ms": 1000}' \
    "http://$TOPOD_LEADER/v1/policy" >/dev/null || die "topod refused a policy write"
  log "topod ready, leader at $TOPOD_LEADER"
  if [ "$HISTORY" -gt 0 ]; then
    log "topod: committing $HISTORY switches first (history of $HISTORY transitions)"
    local i target=hyparview code
    for i in $(seq 1 "$HISTORY"); do
      code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d "{\"topology\": \"$target\", \"wait\": true}" "http://$TOPOD_LEADER/v1/topology/switch")
      [ "$code" = 200 ] || die "switch $i answered $code"
      target=$([ "$target" = hyparview ] && echo full_mesh || echo hyparview)
    done
  fi
}

# run_wrk SYSTEM TAG ADDR THREADS CONNS SECS -> prints the RESULT line
run_wrk() {
  local out
  out=$(wrk -t"$4" -c"$5" -d"$6s" --timeout 5s --latency -s "$HERE/put.lua" "http://$3" -- "$1" 2>&1) || {
    echo "$out" >&2; die "wrk failed"; }
  printf '%s\n' "$out" >>"$WORK_DIR/wrk-$1-$2.txt"
  local line
  line=$(grep '^RESULT' <<<"$out") || { echo "$out" >&2; die "wrk printed no RESULT"; }
  if ! grep -q 'non2xx=0 socket_errors=0' <<<"$line"; then
    log "warning: $1 ($5 conns) had errors: $line"
  fi
  echo "$line"
}

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

for s in $SYSTEMS; do
  case $s in
    etcd) start_etcd ;;
    topod) start_topod ;;
    *) die "unknown system $s" ;;
  esac
done

RESULTS=$WORK_DIR/results.txt
: >"$RESULTS"
for s in $SYSTEMS; do
  addr=$([ "$s" = etcd ] && echo "$ETCD_LEADER" || echo "$TOPOD_LEADER")
  log "$s: warm-up (3 s)"
  run_wrk "$s" warmup "$addr" "$HIGH_THREADS" "$HIGH_CONNS" 3 >/dev/null
done
for r in $(seq 1 "$RUNS"); do
  for s in $SYSTEMS; do
    addr=$([ "$s" = etcd ] && echo "$ETCD_LEADER" || echo "$TOPOD_LEADER")
    for load in 1 "$HIGH_CONNS"; do
      threads=$([ "$load" = 1 ] && echo 1 || echo "$HIGH_THREADS")
      log "round $r/$RUNS: $s, $load connection(s), ${DURATION}s"
      line=$(run_wrk "$s" "c$load" "$addr" "$threads" "$load" "$DURATION")
      echo "$s $load $line" | tee -a "$RESULTS" >&2
    done
  done
done

# ---- table ------------------------------------------------------------------
med() { # system conns field
  awk -v s="$1" -v c="$2" '$1==s && $2==c' "$RESULTS" | field "$3" | median
}
ms() { awk '{printf "%.2f", $1/1000}'; }
echo
echo "Durable writes, 3-node loopback clusters, ${DURATION}s per run, median of $RUNS run(s); $(nproc) cores (shared)"
echo "etcd: POST /v3/kv/put to the leader (WAL fdatasync); topod: PUT /v1/policy to the leader (sled flush = sync_file_range)"
echo "topod history: $HISTORY transitions before the runs"
printf '%-8s | %-28s | %-28s\n' "" "1 connection" "$HIGH_CONNS connections ($HIGH_THREADS threads)"
printf '%-8s | %8s %8s %10s | %8s %8s %10s\n' system "p50 ms" "p99 ms" "writes/s" "p50 ms" "p99 ms" "writes/s"
for s in $SYSTEMS; do
  printf '%-8s | %8s %8s %10.0f | %8s %8s %10.0f\n' "$s" \
    "$(med "$s" 1 p50_us | ms)" "$(med "$s" 1 p99_us | ms)" "$(med "$s" 1 rps)" \
    "$(med "$s" "$HIGH_CONNS" p50_us | ms)" "$(med "$s" "$HIGH_CONNS" p99_us | ms)" "$(med "$s" "$HIGH_CONNS" rps)"
done
echo
echo "Raw runs ($RESULTS):"
cat "$RESULTS"
