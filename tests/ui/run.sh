#!/usr/bin/env bash
# Browser tests of the admin UI (issue 14): starts a 5-node `topod dev`
# cluster on a free base port with a temp data dir, runs tests/ui/test_ui.py
# (Selenium driving headless Chromium) against it, stops the cluster.
# Needs chromium, chromium-driver (Debian) and the `selenium` Python
# package; .ci/run installs them. Screenshots go to $UI_ARTIFACTS
# (default target/ui-artifacts).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --locked --bin topod
TOPOD=target/debug/topod

BASE=$(python3 tests/ui/free_port.py)
DATA=$(mktemp -d /tmp/topod-ui.XXXXXX)
OUT="$DATA/dev.out"
export UI_ARTIFACTS="${UI_ARTIFACTS:-$PWD/target/ui-artifacts}"
mkdir -p "$UI_ARTIFACTS"

NO_COLOR=1 "$TOPOD" dev --nodes 5 --data-dir "$DATA/cluster" --api-base-port "$BASE" >"$OUT" 2>&1 &
DEV=$!
cleanup() {
  kill -TERM "$DEV" 2>/dev/null || true
  wait "$DEV" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT

for _ in $(seq 1 120); do
  if grep -q "cluster ready" "$OUT"; then break; fi
  if ! kill -0 "$DEV" 2>/dev/null; then cat "$OUT" >&2; echo "topod dev exited" >&2; exit 1; fi
  sleep 0.5
done
grep -q "cluster ready" "$OUT" || { cat "$OUT" >&2; echo "cluster not ready in 60 s" >&2; exit 1; }

# The dev cluster runs secure: its API is HTTPS with the dev CA.
export TOPOD_UI_URL="https://127.0.0.1:$BASE"
export TOPOD_UI_CA="$DATA/cluster/certs/ca.pem"
# The admin token `topod dev` wrote on its first start.
TOPOD_UI_TOKEN=$(head -n1 "$DATA/cluster/admin.token")
export TOPOD_UI_TOKEN
python3 -m unittest -v tests/ui/test_ui.py
