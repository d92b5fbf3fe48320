#!/usr/bin/env bash
# Makes the Secret `topod-certs` the StatefulSets mount at /etc/topod-certs:
# a new cluster CA (`topod certs init`), a certificate for each of nodes 1-9
# naming its Service's ClusterIP (`topod certs issue --host`), and the first
# admin token (node 1 stores its hash when it initialises the cluster).
#
#   deploy/k8s/make-secret.sh OUT_DIR          # OUT_DIR/secret.yaml, OUT_DIR/certs/
#   kubectl apply -f OUT_DIR/secret.yaml
#   TOPOD_BIN=target/release/topod deploy/k8s/make-secret.sh /tmp/k8s-secret
#
# OUT_DIR/certs/ca.key is NOT in the Secret: keep it off the cluster (it
# issues replacement node certificates: `topod certs issue --node N
# --replace`, then update the Secret; the nodes reload by themselves).
# OUT_DIR/certs/admin.token is the admin token: `topoctl` reads it from
# TOPOCTL_TOKEN.
set -euo pipefail
OUT=${1:?usage: make-secret.sh OUT_DIR}
TOPOD=${TOPOD_BIN:-topod}
NODES=${NODES:-9}
mkdir -p "$OUT"
CERTS="$OUT/certs"
"$TOPOD" certs init --cluster-id k8s --dir "$CERTS"
for n in $(seq 1 "$NODES"); do
  "$TOPOD" certs issue --node "$n" --dir "$CERTS" \
    --host "10.96.100.1$n" --host "topod-node-$n" --host "topod-node-$n.default.svc"
done
python3 - "$CERTS/admin.token" <<'PY'
import base64, os, sys
token = "topod_" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, (token + "\n").encode())
os.close(fd)
PY
python3 - "$CERTS" "$NODES" > "$OUT/secret.yaml" <<'PY'
import base64, sys
certs, nodes = sys.argv[1], int(sys.argv[2])
files = ["ca.pem", "admin.token"]
for n in range(1, nodes + 1):
    files += [f"node-{n}.pem", f"node-{n}.key"]
print("apiVersion: v1\nkind: Secret\nmetadata:\n  name: topod-certs\n  labels:\n    app.kubernetes.io/name: topod\ntype: Opaque\ndata:")
for f in files:
    data = base64.b64encode(open(f"{certs}/{f}", "rb").read()).decode()
    print(f"  {f}: {data}")
PY
echo "wrote $OUT/secret.yaml (CA, $NODES node certificates, the admin token); keep $CERTS/ca.key safe"
