#!/usr/bin/env bash
# CI smoke of the chaos harness: 5 nodes, 90 s, chaos/scenarios/smoke.toml.
# Needs root (network namespaces, iptables); installs iproute2 and iptables
# with apt-get when missing. Uses the debug binaries `cargo test` built.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "chaos smoke: needs root (network namespaces and iptables)" >&2
  exit 1
fi
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

cargo build --locked --workspace --bins
# Leftovers of an interrupted earlier run would make the run refuse to start.
target/debug/topod-chaos cleanup
start=$(date +%s)
target/debug/topod-chaos run \
  --scenario chaos/scenarios/smoke.toml \
  --topod target/debug/topod \
  --out target/chaos/smoke
echo "chaos smoke: $(( $(date +%s) - start )) s"
