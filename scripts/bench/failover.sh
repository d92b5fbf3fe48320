#!/usr/bin/env bash
# Leader fail-over benchmark for topod: a 3-node loopback cluster (one
# `topod run --config` process per node); each run kills the leader with
# SIGKILL and measures the time until a `POST /v1/topology/switch` sent to a
# surviving node is accepted (202), then restarts the killed node on its
# data dir and waits until the cluster is healthy again.
#
# Usage: scripts/bench/failover.sh
# Environment (defaults in brackets):
#   RUNS        kill/measure/restart cycles [10]
#   PORT        first API port; Raft at +100, peer at +200 [17401]
#   POLL_MS     interval between switch attempts after the kill [10]
#   WORK_DIR    data dirs, configs and logs [a new dir under /tmp]
#   KEEP        1 keeps WORK_DIR afterwards [0]
#   TOPOD_RAFT__HEARTBEAT_MS, TOPOD_RAFT__ELECTION_TIMEOUT_MIN_MS,
#   TOPOD_RAFT__ELECTION_TIMEOUT_MAX_MS (or any TOPOD_* key) are passed to
#   the nodes; unset means the config defaults (50/150/300 ms).
#   BENCH_TOPOD_BIN  use this topod binary instead of building one
#   CARGO_TARGET_DIR is honoured for the release build.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/scripts/bench
# shellcheck source=lib.sh
. "$HERE/lib.sh"

RUNS=${RUNS:-10}
PORT=${PORT:-17401}
POLL_MS=${POLL_MS:-10}
KEEP=${KEEP:-0}
WORK_DIR=${WORK_DIR:-$(mktemp -d /tmp/topod-bench-failover.XXXXXX)}
mkdir -p "$WORK_DIR"

declare -A NODE_PID=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local id pid
  for id in "${!NODE_PID[@]}"; do
    pid=${NODE_PID[$id]}
    kill -TERM "$pid" 2>/dev/null || true
  done
  for id in "${!NODE_PID[@]}"; do
    pid=${NODE_PID[$id]}
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
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

ensure_packages curl:curl jq:jq
build_topod

api() { echo "127.0.0.1:$((PORT + $1 - 1))"; }

write_configs() {
  local voters="" i
  for i in 1 2 3; do
    voters+="  { id = $i, api_addr = \"$(api $i)\", raft_addr = \"127.0.0.1:$((PORT + 99 + i))\", peer_addr = \"127.0.0.1:$((PORT + 199 + i))\" },"$'\n'
  done
  for i in 1 2 3; do
    cat >"$WORK_DIR/node$i.toml" <<CONF
node_id = $i
cluster_id = "bench-failover"
api_addr = "$(api $i)"
raft_addr = "127.0.0.1:$((PORT + 99 + i))"
peer_addr = "127.0.0.1:$((PORT + 199 + i))"
data_dir = "$WORK_DIR/node$i"
initial_voters = [
$voters]
CONF
  done
}

start_node() {
  "$TOPOD_BIN" run --config "$WORK_DIR/node$1.toml" >>"$WORK_DIR/node$1.log" 2>&1 &
  NODE_PID[$1]=$!
}

# Waits until every node is ready, agrees on a leader and no transition is
# in flight; prints the leader id.
wait_healthy() {
  local deadline=$((SECONDS + ${1:-60})) i leader st ok
  while :; do
    for i in "${!NODE_PID[@]}"; do
      kill -0 "${NODE_PID[$i]}" 2>/dev/null || die "node $i exited: $(tail -3 "$WORK_DIR/node$i.log")"
    done
    ok=1; leader=""
    for i in 1 2 3; do
      curl -fsS -o /dev/null --max-time 1 "http://$(api $i)/readyz" 2>/dev/null || { ok=0; break; }
      st=$(curl -fsS --max-time 1 "http://$(api $i)/v1/topology" 2>/dev/null) || { ok=0; break; }
      [ "$(jq -r '.in_flight' <<<"$st")" = null ] || { ok=0; break; }
      l=$(jq -r '.leader // empty' <<<"$st")
      if [ -z "$l" ] || { [ -n "$leader" ] && [ "$leader" != "$l" ]; }; then ok=0; break; fi
      leader=$l
    done
    if [ $ok = 1 ]; then echo "$leader"; return 0; fi
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

now_ns() { date +%s%N; }

# shellcheck disable=SC2046 # one port per word
check_ports_free $(for i in 1 2 3; do echo $((PORT + i - 1)) $((PORT + 99 + i)) $((PORT + 199 + i)); done)
write_configs
for i in 1 2 3; do start_node $i; done
wait_healthy 60 >/dev/null || die "cluster not healthy (logs in $WORK_DIR)"
log "cluster up (API $(api 1)..$(api 3)); heartbeat/election: ${TOPOD_RAFT__HEARTBEAT_MS:-50}/${TOPOD_RAFT__ELECTION_TIMEOUT_MIN_MS:-150}-${TOPOD_RAFT__ELECTION_TIMEOUT_MAX_MS:-300} ms"

TIMES=()
sleep_s=$(awk -v m="$POLL_MS" 'BEGIN {printf "%.3f", m/1000}')
for run in $(seq 1 "$RUNS"); do
  leader=$(wait_healthy 60) || die "cluster not healthy before run $run (logs in $WORK_DIR)"
  current=$(curl -fsS "http://$(api 1)/v1/topology" | jq -r .topology)
  target=$([ "$current" = hyparview ] && echo full_mesh || echo hyparview)
  survivors=()
  for i in 1 2 3; do [ "$i" = "$leader" ] || survivors+=("$i"); done
  # Let the cluster settle (heartbeats flowing, no write in progress).
  sleep 1
  t0=$(now_ns)
  kill -KILL "${NODE_PID[$leader]}"
  wait "${NODE_PID[$leader]}" 2>/dev/null || true
  unset "NODE_PID[$leader]"
  attempts=0; code=""
  while :; do
    s=${survivors[$((attempts % 2))]}
    attempts=$((attempts + 1))
    code=$(curl -sS -o "$WORK_DIR/last-switch.json" -w '%{http_code}' --max-time 5 \
      -X POST -H 'Content-Type: application/json' -d "{\"topology\": \"$target\"}" \
      "http://$(api "$s")/v1/topology/switch" 2>/dev/null || true)
    if [ "$code" = 202 ]; then t1=$(now_ns); break; fi
    if [ "$code" = 409 ]; then
      die "switch refused with 409 in run $run: $(cat "$WORK_DIR/last-switch.json")"
    fi
    [ $(( ($(now_ns) - t0) / 1000000000 )) -lt 30 ] || die "no switch accepted within 30 s in run $run"
    sleep "$sleep_s"
  done
  ms=$(( (t1 - t0) / 1000000 ))
  TIMES+=("$ms")
  new_leader=$(curl -fsS --max-time 1 "http://$(api "$s")/v1/cluster/status" | jq -r '.leader // "?"')
  printf 'run %2d: killed leader node %s; switch to %s accepted by node %s after %5d ms (%d attempts; new leader %s)\n' \
    "$run" "$leader" "$target" "$s" "$ms" "$attempts" "$new_leader"
  start_node "$leader"
done
wait_healthy 60 >/dev/null || die "cluster not healthy after the last run"

p50=$(printf '%s\n' "${TIMES[@]}" | percentile 50)
p99=$(printf '%s\n' "${TIMES[@]}" | percentile 99)
med=$(printf '%s\n' "${TIMES[@]}" | median)
echo
echo "fail-over (kill -9 leader -> next switch accepted), $RUNS runs: p50 ${p50} ms (median ${med} ms), p99 ${p99} ms, max $(printf '%s\n' "${TIMES[@]}" | sort -n | tail -1) ms"
echo "runs (ms): ${TIMES[*]}"
