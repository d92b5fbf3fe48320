# shellcheck shell=bash
# Shared helpers of the control-plane benchmarks (sourced, not run).
# Expects: set -euo pipefail in the caller, REPO set to the repository root.

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Installs Debian packages that are missing (needs root or sudo).
ensure_packages() {
  local missing=()
  local bin pkg
  for pair in "$@"; do
    bin=${pair%%:*}; pkg=${pair##*:}
    command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
}

# Builds topod and topoctl in release; sets TOPOD_BIN. BENCH_TOPOD_BIN set in
# the environment is used as is (no build), e.g. to compare two builds.
build_topod() {
  if [ -n "${BENCH_TOPOD_BIN:-}" ]; then
    TOPOD_BIN=$BENCH_TOPOD_BIN; [ -x "$TOPOD_BIN" ] || die "BENCH_TOPOD_BIN=$TOPOD_BIN is not executable"
    log "using $TOPOD_BIN (not building)"
    return 0
  fi
  log "building topod (release)"
  (cd "$REPO" && cargo build --release --quiet --bin topod --bin topoctl) >&2
  local target=${CARGO_TARGET_DIR:-$REPO/target}
  TOPOD_BIN=$target/release/topod
  [ -x "$TOPOD_BIN" ] || die "no binary at $TOPOD_BIN"
}

# Fails if something already listens on one of the given ports.
check_ports_free() {
  local p
  for p in "$@"; do
    if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
      die "port $p is in use; choose other ports (see the env vars at the top of the script)"
    fi
  done
}

# wait_http URL TIMEOUT_S: until URL answers 2xx.
wait_http() {
  local url=$1 deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

# The median of numbers given on stdin, one per line.
median() {
  sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit}
    if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

# percentile P: the P-th percentile (nearest rank) of numbers on stdin.
percentile() {
  sort -g | awk -v p="$1" '{a[NR]=$1} END {if (NR==0) {print "nan"; exit}
    r=int((p/100)*NR + 0.999999); if (r<1) r=1; if (r>NR) r=NR; print a[r]}'
}

# topod leader's API address given any node's API base URL; empty if none.
topod_leader_api() {
  local base_port=$1 p st leader
  for p in "$base_port" $((base_port + 1)) $((base_port + 2)); do
    st=$(curl -fsS --max-time 1 "http://127.0.0.1:$p/v1/cluster/status" 2>/dev/null) || continue
    leader=$(jq -r '.leader // empty' <<<"$st")
    if [ -n "$leader" ]; then
      echo "127.0.0.1:$((base_port + leader - 1))"
      return 0
    fi
  done
  return 1
}
