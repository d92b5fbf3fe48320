#!/usr/bin/env python3
"""Sums the report.json of many chaos runs into the figures of issue 11.

Usage: chaos/tools/campaign.py OUT_DIR...   (each holding report.json)
Prints a Markdown table: runs and seeds, faults by kind, operations by
outcome, anomalies per property, convergence T p50/p99, switches committed
and aborted (automatic ones among them), unknown outcomes resolved,
time to not-ready of cut-off nodes, WARN/ERROR log lines per node-minute.
"""
import json
import math
import sys
from collections import Counter, defaultdict


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    k = max(0, math.ceil(p / 100 * len(v)) - 1)
    return v[k]


def main(dirs):
    reports = []
    for d in dirs:
        try:
            with open(f"{d}/report.json") as f:
                reports.append(json.load(f))
        except (OSError, ValueError) as e:
            print(f"skipping {d}: {e}", file=sys.stderr)
    if not reports:
        sys.exit("no report.json found")
    faults, ops = Counter(), defaultdict(Counter)
    anomalies, names = Counter(), {}
    failed_seeds = defaultdict(list)
    t_ms, not_ready = [], []
    committed = aborted = automatic = unknown = landed = 0
    warn = error = 0
    node_minutes = 0.0
    for r in reports:
        faults.update(r["faults_by_kind"])
        for kind, by in r["ops"].items():
            ops[kind].update(by)
        for v in r["verdicts"]:
            names[v["number"]] = v["name"]
            if not v["pass"]:
                anomalies[v["number"]] += 1
                failed_seeds[v["number"]].append(r["seed"])
        t = r["convergence"].get("t_ms")
        if t is not None:
            t_ms.append(t)
        committed += r["committed"]
        aborted += r["aborted"]
        x = r.get("extras", {})
        automatic += x.get("automatic_switches", 0)
        unknown += x.get("unknown_switches", 0)
        landed += x.get("unknown_landed", 0)
        not_ready += x.get("time_to_not_ready_ms", [])
        for c in x.get("log_lines", {}).values():
            warn += c["warn"]
            error += c["error"]
        node_minutes += r["scenario"]["nodes"] * r["elapsed_s"] / 60
    seeds = sorted(r["seed"] for r in reports)
    print("| figure | value |")
    print("|---|---|")
    print(f"| runs / seeds | {len(reports)} / {seeds[0]}–{seeds[-1]} |")
    print("| faults injected by kind | " + ", ".join(f"{k} {n}" for k, n in sorted(faults.items())) + f" (total {sum(faults.values())}) |")
    for kind in sorted(ops):
        by = ops[kind]
        print(f"| {kind} operations ok / fail / unknown | {by['ok']} / {by['fail']} / {by['unknown']} |")
    props = ", ".join(
        f"{n} {names[n]} {anomalies[n]}" + (f" (seeds {failed_seeds[n]})" if anomalies[n] else "")
        for n in sorted(names)
    )
    print(f"| anomalies per property (runs failing it) | {props} |")
    print(f"| converged after heal | {len(t_ms)} of {len(reports)} runs |")
    print(f"| convergence T p50 / p99 / max (ms) | {pct(t_ms, 50)} / {pct(t_ms, 99)} / {max(t_ms) if t_ms else None} |")
    print(f"| switches committed / aborted (automatic among them) | {committed} / {aborted} ({automatic} automatic) |")
    print(f"| unknown switch outcomes resolved by request id | {unknown} unknown: {landed} landed, {unknown - landed} did not |")
    print(f"| cut-off node to /readyz 503, p50 / p99 / max (ms) | {pct(not_ready, 50)} / {pct(not_ready, 99)} / {max(not_ready) if not_ready else None} ({len(not_ready)} cuts) |")
    print(f"| WARN / ERROR log lines per node-minute | {warn / node_minutes:.1f} / {error / node_minutes:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
