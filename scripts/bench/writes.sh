#!/usr/bin/env bash
# Durable-write benchmark: etcd (3 nodes, loopback, HTTP gateway
# `POST /v3/kv/put`) and topod (3 nodes, `topod dev`, leader's
# `PUT /v1/policy`), one after the other in the same run, all driven by wrk
# with the same Lua script (scripts/bench/put.lua). Only the cluster being
# measured is running.
#
# Usage: scripts/bench/writes.sh
# Environment (defaults in brackets):
#   DURATION      seconds per wrk run [15]
#   RUNS          rounds; each round starts and measures every system and
#                 load once, the table shows the medians over rounds [3]
#   HIGH_CONNS    connections of the concurrent load [64]
#   HIGH_THREADS  wrk threads of the concurrent load [2]
#   ETCD_PORT     first etcd client port; peers at +10 [23790]
#   TOPOD_PORT    first topod API port; Raft at +100, peer at +200 [17101]
#   SYSTEMS       which systems to measure ["etcd topod"]
#   MODES         topod's modes, each measured as its own row
#                 ["insecure secure"]: `insecure` = plain HTTP between the
#                 nodes and on the API, no tokens (like the etcd anchor,
#                 which runs plain: the like-for-like comparison);
#                 `secure` = the default, mutual TLS between the nodes,
#                 HTTPS and a bearer token on the API
#   HISTORY       switches topod commits before it is measured, so that
#                 its history is that long (retention 1000) [0]
#   PERF          1: `perf record -g` the topod leader during each
#                 HIGH_CONNS run, data in WORK_DIR; split it by part
#                 with scripts/bench/perf_split.py [0]
#   WORK_DIR      where data dirs and logs go [a new dir under /tmp]
#   KEEP          1 keeps WORK_DIR afterwards [0]
#   BENCH_TOPOD_BIN  use this topod binary instead of building one
#   CARGO_TARGET_DIR is honoured for the release build.
#   Any TOPOD_* variable reaches the topod nodes (`topod dev` layers them).
#
# Durability differs: etcd calls fdatasync on its WAL; sled's flush (topod)
# uses sync_file_range, which survives a process crash but not necessarily
# a power loss.
#
# examples/bench_writes.rs measures the same write in one process (its own
# Rust client, no wrk), e.g. for a quick secure/insecure A/B.
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
MODES=${MODES:-insecure secure}
MODES=${MODES//,/ }
HISTORY=${HISTORY:-0}
PERF=${PERF:-0}
KEEP=${KEEP:-0}
WORK_DIR=${WORK_DIR:-$(mktemp -d /tmp/topod-bench-writes.XXXXXX)}
mkdir -p "$WORK_DIR"

PIDS=()          # processes of the running cluster (etcd members, topod dev)
stop_all() {
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
  PIDS=()
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  if [ "$KEEP" = 1 ] || [ "$PERF" = 1 ] || [ $rc -ne 0 ]; then
    log "logs and data kept in $WORK_DIR"
  else
    rm -rf "$WORK_DIR"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_packages wrk:wrk curl:curl jq:jq
for s in $SYSTEMS; do
  case $s in
    etcd) ensure_packages etcd:etcd-server ;;
    topod) build_topod ;;
    *) die "unknown system $s" ;;
  esac
done
[ "$PERF" = 1 ] && ensure_packages perf:linux-perf

# ---- etcd -----------------------------------------------------------------
ETCD_LEADER=""
start_etcd() { # ROUND
  local cluster="" i
  for i in 0 1 2; do
    cluster+="${cluster:+,}e$i=http://127.0.0.1:$((ETCD_PORT + 10 + i))"
  done
  check_ports_free "$ETCD_PORT" $((ETCD_PORT + 1)) $((ETCD_PORT + 2)) \
    $((ETCD_PORT + 10)) $((ETCD_PORT + 11)) $((ETCD_PORT + 12))
  rm -rf "$WORK_DIR/etcd"
  for i in 0 1 2; do
    local cp=$((ETCD_PORT + i)) pp=$((ETCD_PORT + 10 + i))
    etcd --name "e$i" --data-dir "$WORK_DIR/etcd/e$i" \
      --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
      --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token "bench-$$-$1" --logger zap --log-level warn \
      >>"$WORK_DIR/etcd-e$i.log" 2>&1 &
    PIDS+=($!)
  done
  for i in 0 1 2; do
    wait_http "http://127.0.0.1:$((ETCD_PORT + i))/health" 30 || die "etcd e$i not healthy (see $WORK_DIR/etcd-e$i.log)"
  done
  local deadline=$((SECONDS + 30)) st
  ETCD_LEADER=""
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
  LEADER_PID=""
  log "etcd $(etcd --version | head -1 | awk '{print $3}') ready, leader at $ETCD_LEADER"
}

# ---- topod ----------------------------------------------------------------
TOPOD_LEADER="" TOPOD_SCHEME=http TOPOD_TOKEN="" LEADER_PID=""
topod_curl() { # curl args...; https with the cluster CA and the token when secure
  if [ "$TOPOD_SCHEME" = https ]; then
    curl --cacert "$WORK_DIR/topod/certs/ca.pem" -H "Authorization: Bearer $TOPOD_TOKEN" "$@"
  else
    curl "$@"
  fi
}
start_topod() { # MODE
  check_ports_free "$TOPOD_PORT" $((TOPOD_PORT + 1)) $((TOPOD_PORT + 2)) \
    $((TOPOD_PORT + 100)) $((TOPOD_PORT + 101)) $((TOPOD_PORT + 102)) \
    $((TOPOD_PORT + 200)) $((TOPOD_PORT + 201)) $((TOPOD_PORT + 202))
  rm -rf "$WORK_DIR/topod"
  local insecure=false
  [ "$1" = insecure ] && insecure=true
  TOPOD_SECURITY__INSECURE=$insecure "$TOPOD_BIN" dev --nodes 3 --data-dir "$WORK_DIR/topod" \
    --api-base-port "$TOPOD_PORT" >"$WORK_DIR/topod-$1-dev.log" 2>&1 &
  PIDS+=($!)
  local dev_pid=$! deadline=$((SECONDS + 60))
  until grep -q "cluster ready" "$WORK_DIR/topod-$1-dev.log"; do
    kill -0 "$dev_pid" 2>/dev/null || die "topod dev exited (see $WORK_DIR/topod-$1-dev.log)"
    [ $SECONDS -lt $deadline ] || die "topod not ready (see $WORK_DIR/topod-$1-dev.log)"
    sleep 0.2
  done
  if [ "$1" = secure ]; then
    TOPOD_SCHEME=https
    TOPOD_TOKEN=$(sed -n 's/^ *admin token: //p' "$WORK_DIR/topod-$1-dev.log" | head -1)
    [ -n "$TOPOD_TOKEN" ] || die "no admin token in $WORK_DIR/topod-$1-dev.log"
    [ -f "$WORK_DIR/topod/certs/ca.pem" ] || die "no CA at $WORK_DIR/topod/certs/ca.pem"
  else
    TOPOD_SCHEME=http TOPOD_TOKEN=""
  fi
  local p st leader=""
  deadline=$((SECONDS + 30))
  while [ -z "$leader" ]; do
    for p in "$TOPOD_PORT" $((TOPOD_PORT + 1)) $((TOPOD_PORT + 2)); do
      st=$(topod_curl -fsS --max-time 1 "$TOPOD_SCHEME://127.0.0.1:$p/v1/cluster/status" 2>/dev/null) || continue
      leader=$(jq -r '.leader // empty' <<<"$st")
      [ -n "$leader" ] && break
    done
    [ -n "$leader" ] || { [ $SECONDS -lt $deadline ] || die "topod has no leader"; sleep 0.2; }
  done
  TOPOD_LEADER="127.0.0.1:$((TOPOD_PORT + leader - 1))"
  LEADER_PID=$(pgrep -P "$dev_pid" -f -- "dev-node --id $leader " || true)
  topod_curl -fsS -X PUT -H 'Content-Type: application/json' -d '{"cooldown_ms": 1000}' \
    "$TOPOD_SCHEME://$TOPOD_LEADER/v1/policy" >/dev/null || die "topod refused a policy write"
  log "topod ($1) ready, leader node $leader (pid ${LEADER_PID:-?}) at $TOPOD_SCHEME://$TOPOD_LEADER"
  if [ "$HISTORY" -gt 0 ]; then
    log "topod: committing $HISTORY switches first (history of $HISTORY transitions)"
    local i target=hyparview code
    for i in $(seq 1 "$HISTORY"); do
      code=$(topod_curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d "{\"topology\": \"$target\", \"wait\": true}" "$TOPOD_SCHEME://$TOPOD_LEADER/v1/topology/switch")
      [ "$code" = 200 ] || die "switch $i answered $code"
      target=$([ "$target" = hyparview ] && echo full_mesh || echo hyparview)
    done
  fi
}

# run_wrk ROW TAG URL THREADS CONNS SECS -> prints the RESULT line
run_wrk() {
  local out kind=${1%%-*} perf_pid=""
  if [ "$PERF" = 1 ] && [ -n "$LEADER_PID" ] && [ "$2" != warmup ] && [ "$5" != 1 ]; then
    perf record -g -F 499 -p "$LEADER_PID" -o "$WORK_DIR/perf-$1-$2.data" -- sleep "$6" \
      >>"$WORK_DIR/perf.log" 2>&1 &
    perf_pid=$!
  fi
  out=$(wrk -t"$4" -c"$5" -d"$6s" --timeout 5s --latency -s "$HERE/put.lua" "$3" -- "$kind" "$TOPOD_TOKEN" 2>&1) || {
    echo "$out" >&2; die "wrk failed"; }
  [ -z "$perf_pid" ] || wait "$perf_pid" || log "perf record failed (see $WORK_DIR/perf.log)"
  printf '%s\n' "$out" >>"$WORK_DIR/wrk-$1-$2.txt"
  local line
  line=$(grep '^RESULT' <<<"$out") || { echo "$out" >&2; die "wrk printed no RESULT"; }
  if ! grep -q 'non2xx=0 socket_errors=0' <<<"$line"; then
    log "warning: $1 ($5 conns) had errors: $line"
  fi
  echo "$line"
}

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

ROWS=()
for s in $SYSTEMS; do
  if [ "$s" = topod ]; then
    for m in $MODES; do ROWS+=("topod-$m"); done
  else
    ROWS+=("$s")
  fi
done

RESULTS=$WORK_DIR/results.txt
: >"$RESULTS"
for r in $(seq 1 "$RUNS"); do
  for row in "${ROWS[@]}"; do
    case $row in
      etcd) start_etcd "$r"; url="http://$ETCD_LEADER" ;;
      topod-*) start_topod "${row#topod-}"; url="$TOPOD_SCHEME://$TOPOD_LEADER" ;;
    esac
    log "round $r/$RUNS: $row warm-up (3 s)"
    run_wrk "$row" warmup "$url" "$HIGH_THREADS" "$HIGH_CONNS" 3 >/dev/null
    for load in 1 "$HIGH_CONNS"; do
      threads=$([ "$load" = 1 ] && echo 1 || echo "$HIGH_THREADS")
      log "round $r/$RUNS: $row, $load connection(s), ${DURATION}s"
      line=$(run_wrk "$row" "r$r-c$load" "$url" "$threads" "$load" "$DURATION")
      echo "$row $load $line" | tee -a "$RESULTS" >&2
    done
    stop_all
  done
done

# ---- table ------------------------------------------------------------------
med() { # row conns field
  awk -v s="$1" -v c="$2" '$1==s && $2==c' "$RESULTS" | field "$3" | median
}
ms() { awk '{printf "%.2f", $1/1000}'; }
echo
echo "Durable writes, 3-node loopback clusters, ${DURATION}s per run, median of $RUNS run(s); $(nproc) cores (shared); $(date -u +%H:%M) UTC"
echo "etcd: POST /v3/kv/put to the leader (WAL fdatasync, plain HTTP); topod: PUT /v1/policy to the leader (sled flush = sync_file_range)"
echo "topod-insecure: plain HTTP (like etcd here); topod-secure: mutual TLS between nodes, HTTPS + token on the API"
echo "topod history: $HISTORY transitions before the runs"
printf '%-15s | %-28s | %-28s\n' "" "1 connection" "$HIGH_CONNS connections ($HIGH_THREADS threads)"
printf '%-15s | %8s %8s %10s | %8s %8s %10s\n' system "p50 ms" "p99 ms" "writes/s" "p50 ms" "p99 ms" "writes/s"
for row in "${ROWS[@]}"; do
  printf '%-15s | %8s %8s %10.0f | %8s %8s %10.0f\n' "$row" \
    "$(med "$row" 1 p50_us | ms)" "$(med "$row" 1 p99_us | ms)" "$(med "$row" 1 rps)" \
    "$(med "$row" "$HIGH_CONNS" p50_us | ms)" "$(med "$row" "$HIGH_CONNS" p99_us | ms)" "$(med "$row" "$HIGH_CONNS" rps)"
done
echo
echo "Raw runs ($RESULTS):"
cat "$RESULTS"
if [ "$PERF" = 1 ]; then
  echo
  echo "perf data of the topod leader (64-connection runs): $WORK_DIR/perf-*.data"
fi
