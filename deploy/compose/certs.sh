#!/usr/bin/env bash
# The certificates of the Compose cluster: a cluster CA and one certificate
# per node (1-5), made with the image's own `topod certs` (no topod on the
# host needed), readable by the image's user (UID 10001) only.
#
#   deploy/compose/certs.sh            # into deploy/compose/certs
#   deploy/compose/certs.sh DIR        # into DIR (then TOPOD_CERTS=DIR docker-compose up -d)
#
# Nothing is overwritten: an existing CA is kept and reused.
set -euo pipefail
cd "$(dirname "$0")"
DIR=$(realpath -m "${1:-certs}")
IMAGE=${TOPOD_IMAGE:-topod:latest}
mkdir -p "$DIR"
run() { docker run --rm --user 0 -v "$DIR:/certs" --entrypoint /usr/local/bin/topod "$IMAGE" "$@"; }
[ -f "$DIR/ca.pem" ] || run certs init --cluster-id compose --dir /certs >/dev/null
for n in 1 2 3 4 5; do
  [ -f "$DIR/node-$n.pem" ] || run certs issue --node "$n" --dir /certs >/dev/null
done
# The first admin token (topod_ + 43 base64url characters).
if [ ! -f "$DIR/admin.token" ]; then
  python3 -c 'import base64,os; print("topod_" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))' > "$DIR/admin.token"
fi
chown 10001:10001 "$DIR/admin.token"; chmod 0600 "$DIR/admin.token"
# The nodes run as UID 10001; the CA key is not theirs to read (root only).
chown 10001:10001 "$DIR"/node-*.pem "$DIR"/node-*.key "$DIR/ca.pem"
chmod 0600 "$DIR"/node-*.key
chown 0:0 "$DIR/ca.key"; chmod 0600 "$DIR/ca.key"
chmod 0755 "$DIR"
echo "certificates in $DIR (ca.key is root-only: the nodes, UID 10001, cannot read it; in production keep it off the hosts)"
