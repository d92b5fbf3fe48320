#!/usr/bin/env bash
# The Compose cluster tested for real: 3 voters + 2 learners from
# docker-compose.yml, under a project name, subnet and host ports of its
# own (it never collides with a cluster started by hand).
#
# Proves: every node ready; a switch through every topology; a voter
# killed (docker kill) and started again keeps its data (same node UUID)
# and rejoins (same topology and history as the others); a paused voter
# resumes and catches up while the others keep switching; `down -v`
# removes containers, network and volumes (also on failure: trap).
# Prints the time from `up` to all ready and each node's RSS.
#
#   deploy/compose/test.sh              # builds the image first (scripts/image.sh)
#   SKIP_IMAGE=1 deploy/compose/test.sh # uses topod:latest as it is
set -euo pipefail
cd "$(dirname "$0")"
HERE=$(pwd)

if [ -z "${SKIP_IMAGE:-}" ]; then
  ../../scripts/image.sh
fi

export COMPOSE_PROJECT_NAME="topodtest$$"
# A /24 of its own: 172.29.(pid mod 200 + 20).0.
export TOPOD_SUBNET_PREFIX="172.29.$(( $$ % 200 + 20 ))"
NODES=(voter1 voter2 voter3 learner4 learner5)
declare -A PORT
for i in 1 2 3 4 5; do
  p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export "TOPOD_PORT_$i=$p"
  PORT[$i]=$p
done
DC=(docker-compose -f "$HERE/docker-compose.yml")
# Certificates of this run's own CA (mutual TLS between the nodes; the
# APIs are HTTPS, checked against it).
CERTS=$(mktemp -d /tmp/topod-compose-certs.XXXXXX)
export TOPOD_CERTS="$CERTS"
./certs.sh "$CERTS" >/dev/null
CURL=(curl --cacert "$CERTS/ca.pem" -H "Authorization: Bearer $(cat "$CERTS/admin.token")")

cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "--- FAILED (exit $rc); last logs:" >&2
    "${DC[@]}" logs --tail 30 >&2 || true
  fi
  "${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$CERTS"
  exit $rc
}
trap cleanup EXIT

fail() { echo "compose test: $*" >&2; exit 1; }
now() { date +%s.%N; }
api() { echo "127.0.0.1:${PORT[$1]}"; }
get() { "${CURL[@]}" -sf --max-time 5 "https://$(api "$1")$2"; }
ready() { "${CURL[@]}" -sf --max-time 2 -o /dev/null "https://$(api "$1")/readyz"; }

# Polls `cmd` every 0.2 s until it succeeds or `secs` pass.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${secs}s: $what"
    sleep 0.2
  done
}

all_ready() { for i in 1 2 3 4 5; do ready "$i" || return 1; done; }
five_members() {
  [ "$(get 1 /v1/cluster/members | jq '.members | length')" = 5 ] 2>/dev/null
}
# Every node reports the same topology and epoch, and the same history length.
converged() {
  local want
  want=$(get 1 /v1/topology | jq -c '[.topology, .epoch]') || return 1
  for i in "$@"; do
    [ "$(get "$i" /v1/topology | jq -c '[.topology, .epoch]')" = "$want" ] || return 1
  done
}
switch() {
  local via=$1 topo=$2 out
  out=$("${CURL[@]}" -s --max-time 60 -XPOST "https://$(api "$via")/v1/topology/switch" \
    -H 'content-type: application/json' \
    -d "{\"topology\":\"$topo\",\"wait\":true,\"request_id\":\"compose-$topo-$RANDOM\"}")
  [ "$(echo "$out" | jq -r '.status')" = committed ] ||
    fail "switch to $topo through node $via: $out"
  echo "  switched to $topo (through node $via)"
}

echo "== up ($COMPOSE_PROJECT_NAME, network $TOPOD_SUBNET_PREFIX.0/24)"
t0=$(now)
"${DC[@]}" up -d >/dev/null 2>&1
wait_for "all 5 nodes ready" 120 all_ready
wait_for "5 members" 60 five_members
t_ready=$(echo "$(now) - $t0" | bc)
printf '  all 5 ready and members %.1f s after up\n' "$t_ready"

echo "== non-root and healthy"
for n in "${NODES[@]}"; do
  c=$("${DC[@]}" ps -q "$n")
  u=$(docker inspect "$c" --format '{{.Config.User}}')
  [ "$u" = "10001:10001" ] || fail "$n runs as '$u'"
  wait_for "$n healthy" 30 sh -c "[ \"\$(docker inspect $c --format '{{.State.Health.Status}}')\" = healthy ]"
done
echo "  every container runs as 10001:10001 and is healthy"

echo "== a switch through every topology"
via=1
for topo in hyparview client_server pub_sub full_mesh; do
  switch "$via" "$topo"
  via=$(( via % 5 + 1 ))
  wait_for "all nodes on $topo" 30 converged 1 2 3 4 5
done

echo "== docker kill voter3, switch without it, start it again"
uuid_before=$(get 3 /v1/node/identity | jq -r .node_uuid)
docker kill "$("${DC[@]}" ps -q voter3)" >/dev/null
switch 1 hyparview
"${DC[@]}" start voter3 >/dev/null
wait_for "voter3 ready again" 60 ready 3
uuid_after=$(get 3 /v1/node/identity | jq -r .node_uuid)
[ "$uuid_before" = "$uuid_after" ] || fail "voter3's data was lost (UUID $uuid_before -> $uuid_after)"
wait_for "voter3 caught up" 30 converged 3
h1=$(get 1 '/v1/topology/history?limit=100' | jq -c '[.transitions[].id]')
h3=$(get 3 '/v1/topology/history?limit=100' | jq -c '[.transitions[].id]')
[ "$h1" = "$h3" ] || fail "voter3's history differs: $h3 vs $h1"
echo "  voter3 kept its data (UUID $uuid_after) and has the same topology and history"

echo "== docker pause voter2, write through Raft, unpause"
docker pause "$("${DC[@]}" ps -q voter2)" >/dev/null
# A paused member still counts as live until its silence outlasts the
# liveness window, and it cannot prepare: a switch now ends aborted (the
# protocol never cuts over without a live member) or, later, committed
# without it. Either way it ends, and Raft writes go on with 2 of 3 voters.
out=$("${CURL[@]}" -s --max-time 60 -XPOST "https://$(api 1)/v1/topology/switch" \
  -H 'content-type: application/json' \
  -d '{"topology":"client_server","wait":true,"request_id":"compose-paused"}')
st=$(echo "$out" | jq -r .status)
case "$st" in committed|aborted) echo "  switch with voter2 paused: $st" ;;
  *) fail "switch with voter2 paused did not end: $out" ;; esac
pol=$("${CURL[@]}" -s --max-time 10 -XPUT "https://$(api 1)/v1/policy" \
  -H 'content-type: application/json' -d '{"cooldown_ms": 1000}')
[ "$(echo "$pol" | jq -r .cooldown_ms)" = 1000 ] || fail "policy write with voter2 paused: $pol"
echo "  policy written with voter2 paused"
docker unpause "$("${DC[@]}" ps -q voter2)" >/dev/null
wait_for "voter2 ready after unpause" 60 ready 2
wait_for "voter2 caught up" 30 converged 2
wait_for "voter2 sees the policy" 30 sh -c "curl --cacert $CERTS/ca.pem -H 'Authorization: Bearer $(cat $CERTS/admin.token)' -sf https://$(api 2)/v1/policy | jq -e '.cooldown_ms == 1000' >/dev/null"
want=full_mesh
[ "$(get 1 /v1/topology | jq -r .topology)" = full_mesh ] && want=hyparview
switch 2 "$want"
wait_for "all nodes on $want" 30 converged 1 2 3 4 5
echo "  voter2 resumed, caught up and serves switches"

echo "== RSS per node (docker stats --no-stream)"
docker stats --no-stream --format '  {{.Name}} {{.MemUsage}} cpu {{.CPUPerc}}' \
  $("${DC[@]}" ps -q)

echo "== down -v"
"${DC[@]}" down -v --remove-orphans >/dev/null 2>&1
left=$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
vols=$(docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
nets=$(docker network ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
[ -z "$left$vols$nets" ] || fail "left behind: containers [$left] volumes [$vols] networks [$nets]"
echo "  no container, volume or network left"
printf 'compose test passed (up -> all ready %.1f s)\n' "$t_ready"
