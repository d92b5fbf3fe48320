#!/usr/bin/env python3
"""Scale of real processes (issue 15): N `topod dev` nodes on loopback.

Starts `topod dev --nodes N` (3 voters, N-3 learners, one process each),
and measures, as BENCHMARKS.md's "Scale of real processes" table:
  - all ready: from the start to every node answering /readyz 200;
  - idle CPU over IDLE_S seconds once ready, leader and median learner
    (from /proc/PID/stat utime+stime; % of one core);
  - RSS of the leader and the median node (/proc/PID/status VmRSS);
  - full switch: API call -> every node's data plane steady on the new
    transition (GET /v1/node/stats on every node), for SWITCHES switches
    cycling through hyparview, client_server, pub_sub, full_mesh.
Prints one Markdown table row and writes the raw figures as JSON.

Usage: scripts/bench/scale.py N [--topod target/release/topod]
       [--base-port 7101] [--idle 10] [--switches 8] [--out FILE]
"""

import argparse
import json
import ssl
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

TOPOLOGIES = ["hyparview", "client_server", "pub_sub", "full_mesh"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# The dev cluster's CA once it runs secure (its API is HTTPS), and the
# admin token `topod dev` writes beside it.
SSL = None
TOKEN = None


def http(method, url, body=None, timeout=5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if TOKEN:
        req.add_header("authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=SSL) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return None, None


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def node_pids(supervisor):
    """The dev-node children of the supervisor, by node id."""
    out = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(supervisor)],
        capture_output=True, text=True, check=True,
    ).stdout
    pids = {}
    for line in out.splitlines():
        pid, args = line.strip().split(None, 1)
        parts = args.split()
        if "dev-node" in parts and "--id" in parts:
            pids[int(parts[parts.index("--id") + 1])] = int(pid)
    return pids


def wait_all(apis, predicate, deadline_s):
    """Polls every API until predicate(status, body) holds for all; returns
    the seconds taken or None on timeout."""
    start = time.monotonic()
    pending = list(apis)
    while pending and time.monotonic() - start < deadline_s:
        pending = [a for a in pending if not predicate(*a())]
        if pending:
            time.sleep(0.05)
    return None if pending else time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("nodes", type=int)
    ap.add_argument("--topod", default="target/release/topod")
    ap.add_argument("--base-port", type=int, default=7101)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--switches", type=int, default=8)
    ap.add_argument("--switch-deadline", type=float, default=60.0)
    ap.add_argument("--out")
    args = ap.parse_args()
    n = args.nodes
    data = tempfile.mkdtemp(prefix="topod-scale-")
    log = open(os.path.join(data, "dev.out"), "w")
    sup = subprocess.Popen(
        [args.topod, "dev", "--nodes", str(n), "--data-dir", data,
         "--api-base-port", str(args.base_port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    global SSL, TOKEN
    ca = os.path.join(data, "certs", "ca.pem")
    token = os.path.join(data, "admin.token")
    deadline = time.monotonic() + 30
    while not (os.path.exists(ca) and os.path.exists(token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    SSL = ssl.create_default_context(cafile=ca)
    with open(token) as f:
        TOKEN = f.read().strip()
    api = [f"https://127.0.0.1:{args.base_port + i}" for i in range(n)]
    result = {"nodes": n}
    try:
        t0 = time.monotonic()
        ready = wait_all(
            [lambda a=a: http("GET", a + "/readyz", timeout=1.0) for a in api],
            lambda status, _body: status == 200,
            30 + 0.5 * n,
        )
        result["all_ready_s"] = None if ready is None else time.monotonic() - t0
        print(f"{n} nodes: ready after {result['all_ready_s']}", file=sys.stderr)
        if ready is None:
            raise SystemExit("not all nodes became ready")
        _, status = http("GET", api[0] + "/v1/cluster/status")
        leader = status["leader"]
        pids = node_pids(sup.pid)
        time.sleep(2)  # let joins and setup settle before idling
        before = {i: cpu_ticks(p) for i, p in pids.items()}
        time.sleep(args.idle)
        cpu = {i: 100.0 * (cpu_ticks(p) - before[i]) / CLK_TCK / args.idle
               for i, p in pids.items()}
        rss = {i: rss_mb(p) for i, p in pids.items()}
        learners = [cpu[i] for i in cpu if i > 3]
        result.update(
            leader=leader,
            idle_cpu_leader_pct=cpu[leader],
            idle_cpu_median_learner_pct=statistics.median(learners) if learners else None,
            idle_cpu_total_pct=sum(cpu.values()),
            rss_leader_mb=rss[leader],
            rss_median_mb=statistics.median(rss.values()),
        )
        times, failures = [], []
        for k in range(args.switches):
            target = TOPOLOGIES[k % len(TOPOLOGIES)]
            t = time.monotonic()
            code, body = http("POST", api[leader - 1] + "/v1/topology/switch",
                              {"topology": target, "request_id": f"scale-{n}-{k}"},
                              timeout=30.0)
            if code != 202:
                failures.append(f"{target}: HTTP {code} {body}")
                continue
            tid = body["transition_id"]

            def on_it(status, stats, tid=tid):
                s = (stats or {}).get("state") or {}
                return status == 200 and s.get("name") == "steady" and s.get("current") == tid

            took = wait_all(
                [lambda a=a: http("GET", a + "/v1/node/stats", timeout=2.0) for a in api],
                on_it, args.switch_deadline,
            )
            if took is None:
                failures.append(f"{target}: not on every node within {args.switch_deadline} s")
                # Let it finish or abort before the next one.
                wait_all([lambda: http("GET", api[leader - 1] + "/v1/topology")],
                         lambda s, b: s == 200 and b and b.get("in_flight") is None, 60)
            else:
                times.append(time.monotonic() - t)
        result["switch_s"] = times
        result["switch_failures"] = failures
        if times:
            result["switch_p50_s"] = statistics.median(times)
            result["switch_max_s"] = max(times)
    finally:
        sup.send_signal(signal.SIGTERM)
        try:
            sup.wait(timeout=60)
        except subprocess.TimeoutExpired:
            sup.kill()
        shutil.rmtree(data, ignore_errors=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    fmt = lambda v, u="": "-" if v is None else f"{v:.1f}{u}"
    settled = f"{len(result.get('switch_s', []))} of {args.switches} settled"
    print(
        f"| {n} | {fmt(result.get('all_ready_s'), ' s')} | "
        f"{fmt(result.get('idle_cpu_leader_pct'), ' %')} / "
        f"{fmt(result.get('idle_cpu_median_learner_pct'), ' %')} | "
        f"{fmt(result.get('rss_leader_mb'))} / {fmt(result.get('rss_median_mb'))} MB | "
        f"{settled}, p50 {fmt(result.get('switch_p50_s'), ' s')}, "
        f"max {fmt(result.get('switch_max_s'), ' s')} |"
    )
    for f in result.get("switch_failures", []):
        print(f"  failure: {f}", file=sys.stderr)


if __name__ == "__main__":
    main()
