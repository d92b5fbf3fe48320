#!/usr/bin/env python3
"""Prints the markdown tables of BENCHMARKS.md from scripts/bench_overlays.sh output."""
import glob, json, os, re, sys

out = sys.argv[1] if len(sys.argv) > 1 else "target/bench-overlays"

def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None

def timing(name):
    p = os.path.join(out, name)
    if not os.path.exists(p):
        return None, None
    t = open(p).read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
    m, s = wall.split(":")[-2:]
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
    user = float(re.search(r"User time \(seconds\): (\S+)", t).group(1))
    return (float(m) * 60 + float(s), user), rss / 1024

print("### Plumtree, same sender every round (10,000 nodes, 30 rounds)\n")
print("| seed | mean RMR | first-round RMR | RMR rounds 2–30 | LDH | missed | p50 / p99 ms | wall s (user s) | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|---|")
for seed in (7, 1, 123):
    r = load(f"pubsub-fixed-{seed}.json")
    if not r: continue
    s = r["summary"]; rest = [x["rmr"] for x in r["rounds"][1:]]
    (wall, user), rss = timing(f"pubsub-fixed-{seed}.time")
    print(f"| {seed} | {s['rmr']:.3f} | {s['first_round_rmr']:.2f} | {sum(rest)/len(rest):.4f} | {s['ldh']} | {s['missed']} | {s['latency_p50_ms']:.0f} / {s['latency_p99_ms']:.0f} | {wall:.2f} ({user:.2f}) | {rss:.0f} |")

for topo, title in (("pubsub", "Plumtree, random sender each round"), ("hyparview", "HyParView flooding, random sender each round")):
    print(f"\n### {title} (10,000 nodes, 30 rounds)\n")
    print("| seed | mean RMR | first-round RMR | LDH | missed | reliability (mean) | payload msgs / broadcast | gossip msgs / broadcast | p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in (7, 1, 123):
        r = load(f"{topo}-random-{seed}.json")
        if not r: continue
        s = r["summary"]
        print(f"| {seed} | {s['rmr']:.3f} | {s['first_round_rmr']:.2f} | {s['ldh']} | {s['missed']} | {s['reliability']:.4f} | {s['payload_per_broadcast']:.0f} | {s['gossip_per_broadcast']:.0f} | {s['latency_p50_ms']:.0f} / {s['latency_p99_ms']:.0f} |")

print("\n### Failure sweep (10,000 nodes, seed 7, fraction removed at once after settling and 5 warm-up broadcasts; 10 rounds after)\n")
print("| failed | pub_sub first broadcast | pub_sub later (mean / min) | pub_sub healing ms | hyparview first broadcast | hyparview later (mean / min) | hyparview healing ms |")
print("|---|---|---|---|---|---|---|")
for f in ("0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "0.95"):
    cells = []
    for t in ("pub_sub", "hyparview"):
        r = load(f"sweep-{t}-{f}.json")
        if not r:
            cells += ["-", "-", "-"]; continue
        s = r["summary"]  # failure at the start of round 6 (index 5)
        later = [x["reliability"] for x in r["rounds"][6:]]
        heal = "-" if s["healing_time_ms"] is None else f"{s['healing_time_ms']:.0f}"
        cells += [f"{100*s['first_round_reliability']:.2f} %", f"{100*sum(later)/len(later):.2f} % / {100*min(later):.2f} %", heal]
    print(f"| {int(float(f)*100)} % | " + " | ".join(cells) + " |")

print("\n### Links per node and messages per broadcast, by size (seed 7, same sender, 30 rounds)\n")
print("| nodes | topology | links/node mean | links/node max | payload msgs / broadcast | gossip msgs / broadcast | membership msgs / round | RMR (mean) | LDH | reliability |")
print("|---|---|---|---|---|---|---|---|---|---|")
for n in (10, 100, 1000, 10000):
    r = load(f"sizes-{n}.json")
    if not r: continue
    for rep in r["topologies"]:
        s = rep["summary"]
        print(f"| {n} | {rep['topology']} | {s['links_per_node_mean']:.2f} | {s['links_per_node_max']} | {s['payload_per_broadcast']:.0f} | {s['gossip_per_broadcast']:.0f} | {s['membership_per_round']:.0f} | {s['rmr']:.3f} | {s['ldh']} | {s['reliability']:.4f} |")
    for sk in r["skipped"]:
        print(f"| {n} | {sk['topology']} | {n-1} (not simulated) | {n-1} | {n-1} | 0 | - | 0 | 1 | - |")
