#!/usr/bin/env bash
# Validates deploy/k8s offline: every manifest against the Kubernetes
# schemas (kubernetes-validate --strict, no cluster needed), then the
# ConfigMap's node configs against the Services (one node-N.toml per
# per-node Service, its advertised addresses that Service's ClusterIP, the
# voters' list and the learners' join targets consistent).
#
#   pip install kubernetes-validate   # .ci/run does it
#   deploy/k8s/validate.sh
#   TOPOD_BIN=target/debug/topod deploy/k8s/validate.sh   # also `topod check-config` on each
#
# Without TOPOD_BIN it uses target/debug/topod when present.
set -euo pipefail
cd "$(dirname "$0")"
K8S_VERSION=${K8S_VERSION:-1.31.0}

kubernetes-validate --strict --quiet -k "$K8S_VERSION" ./*.yaml
echo "k8s: every manifest valid against Kubernetes $K8S_VERSION (strict)"

python3 - <<'PY'
import tomllib, yaml, sys

docs = {}
for f in ["configmap.yaml", "services.yaml", "voters.yaml", "learners.yaml", "pdb.yaml"]:
    for d in yaml.safe_load_all(open(f)):
        docs[(d["kind"], d["metadata"]["name"])] = d

def fail(msg):
    print(f"k8s: {msg}", file=sys.stderr)
    sys.exit(1)

cm = docs[("ConfigMap", "topod-config")]["data"]
nodes = {}
for key, text in cm.items():
    c = tomllib.loads(text)
    n = c["node_id"]
    if key != f"node-{n}.toml":
        fail(f"{key} holds node_id {n}")
    nodes[n] = c

voters_sts = docs[("StatefulSet", "topod-voter")]["spec"]
learners_sts = docs[("StatefulSet", "topod-learner")]["spec"]
v0, nv = voters_sts["ordinals"]["start"], voters_sts["replicas"]
l0 = learners_sts["ordinals"]["start"]
voter_ids = set(range(v0, v0 + nv))
for n, c in nodes.items():
    svc = docs.get(("Service", f"topod-node-{n}"))
    if svc is None:
        fail(f"node {n} has no Service topod-node-{n}")
    ip = svc["spec"]["clusterIP"]
    role = "voter" if n in voter_ids else "learner"
    pod = svc["spec"]["selector"]["statefulset.kubernetes.io/pod-name"]
    if pod != f"topod-{role}-{n}":
        fail(f"Service topod-node-{n} selects {pod}, not topod-{role}-{n}")
    for k in ("api_addr", "raft_addr", "peer_addr"):
        port = c[k].rsplit(":", 1)[1]
        if c["advertise"][k] != f"{ip}:{port}":
            fail(f"node {n} advertises {k} {c['advertise'][k]}, its Service is {ip}:{port}")
    sec = c.get("security", {})
    want = {"ca_cert": "/etc/topod-certs/ca.pem", "cert": f"/etc/topod-certs/node-{n}.pem",
            "key": f"/etc/topod-certs/node-{n}.key"}
    if any(sec.get(k) != v for k, v in want.items()) or sec.get("insecure"):
        fail(f"node {n}'s [security] {sec} is not the Secret's files {want}")
    if n in voter_ids:
        listed = {v["id"]: v for v in c["initial_voters"]}
        if set(listed) != voter_ids:
            fail(f"node {n}'s initial_voters {sorted(listed)} are not {sorted(voter_ids)}")
    else:
        want = sorted(nodes[v]["advertise"]["api_addr"] for v in voter_ids)
        if sorted(c["join"]) != want:
            fail(f"learner {n} joins {c['join']}, not the voters {want}")
max_learners = len([n for n in nodes if n >= l0])
if learners_sts["replicas"] > max_learners:
    fail(f"{learners_sts['replicas']} learners but configs for {max_learners}")
for n in voter_ids:
    v = {x["id"]: x for x in nodes[n]["initial_voters"]}
    for m in voter_ids:
        if v[m]["api_addr"] != nodes[m]["advertise"]["api_addr"]:
            fail(f"node {n} lists voter {m} at {v[m]['api_addr']}")
print(f"k8s: {len(nodes)} node configs match their Services ({len(voter_ids)} voters, up to {max_learners} learners)")
PY

BIN=${TOPOD_BIN:-../../target/debug/topod}
if [ -x "$BIN" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # The Secret the manifests mount, made as an operator would.
  TOPOD_BIN="$BIN" ./make-secret.sh "$tmp/secret" >/dev/null
  kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$tmp/secret/secret.yaml"
  python3 - "$tmp/secret/secret.yaml" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))["data"]
want = {"ca.pem", "admin.token"} | {f"node-{n}.{e}" for n in range(1, 10) for e in ("pem", "key")}
if set(d) != want or "ca.key" in d:
    sys.exit(f"k8s: the Secret holds {sorted(d)}")
print("k8s: the Secret holds the CA, 9 node certificates and keys, the admin token (no CA key)")
PY
  python3 -c "
import yaml, sys
d = next(yaml.safe_load_all(open('configmap.yaml')))
for k, v in d['data'].items():
    open(sys.argv[1] + '/' + k, 'w').write(v)
" "$tmp"
  for f in "$tmp"/*.toml; do
    # No TOPOD_* variable of this shell may change what is checked.
    env -u TOPOD_CONFIG $(env | sed -n 's/^\(TOPOD_[A-Z0-9_]*\)=.*/-u \1/p') \
      "$BIN" check-config --config "$f" >/dev/null ||
      { echo "k8s: $(basename "$f") is not a valid node config" >&2; exit 1; }
  done
  echo "k8s: every node config passes topod check-config ($BIN)"
else
  echo "k8s: no topod binary at $BIN: node configs not loaded by topod (set TOPOD_BIN)"
fi
