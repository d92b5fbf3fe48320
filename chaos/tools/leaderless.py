#!/usr/bin/env python3
"""Time without a leader around each healed isolation (issue 11 item 9).

Reads the history.jsonl of one or more topod-chaos runs. For every
`isolate` / `isolate-leader` fault it prints: the isolated node, whether it
was the leader, how many terms the isolated node went up while cut off,
how many terms the rest of the cluster moved on after the heal, and how
long after the heal no leader was followed by a majority (a node reporting
role = leader whose term and id a majority of the latest status samples
share). Usage: leaderless.py OUT_DIR... (each holding history.jsonl).
"""
import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def isolated_node(detail):
    fault = detail["step"]["fault"]["isolate"]
    return detail["leader"] if fault == "leader" else fault["node"]


def has_leader(latest, n):
    for node, s in latest.items():
        if s["role"] != "leader":
            continue
        followers = sum(
            1 for t in latest.values() if t["leader"] == node and t["term"] == s["term"]
        )
        if followers > n // 2:
            return True
    return False


def analyse(records, n, window_ms=10_000):
    status = sorted((r for r in records if r["type"] == "status"), key=lambda r: r["at_ms"])
    nem = [r for r in records if r["type"] == "nemesis"]
    out = []
    for i, r in enumerate(nem):
        if r["phase"] != "start" or r["fault"] not in ("isolate", "isolate-leader"):
            continue
        heal = next((x["at_ms"] for x in nem[i + 1 :] if x["phase"] == "stop"), None)
        if heal is None:
            continue
        nxt = next((x["at_ms"] for x in nem[i + 1 :] if x["phase"] == "start"), heal + window_ms)
        end = min(nxt, heal + window_ms)
        iso = isolated_node(r["detail"])
        start = r["at_ms"]
        before = [s["term"] for s in status if s["at_ms"] < start and s["node"] != iso]
        term0 = max(before) if before else 0
        iso_terms = [s["term"] for s in status if s["node"] == iso and s["at_ms"] < heal]
        latest, leaderless, last_t = {}, 0, None
        for s in status:
            if s["at_ms"] < start:
                latest[s["node"]] = s
                continue
            if s["at_ms"] > end:
                break
            if s["at_ms"] >= heal and last_t is not None and not has_leader(latest, n):
                leaderless += s["at_ms"] - last_t
            latest[s["node"]] = s
            if s["at_ms"] >= heal:
                last_t = s["at_ms"]
        majority_terms = sorted(t["term"] for t in latest.values())
        out.append(
            {
                "isolated": iso,
                "was_leader": iso == r["detail"]["leader"],
                "isolated_term_gain": (max(iso_terms) if iso_terms else term0) - term0,
                "cluster_term_gain": majority_terms[len(majority_terms) // 2] - term0,
                "leaderless_after_heal_ms": leaderless,
            }
        )
    return out


def main():
    rows = []
    for d in sys.argv[1:]:
        for row in analyse(load(f"{d}/history.jsonl"), 5):
            row["run"] = d
            rows.append(row)
            print(json.dumps(row))
    fol = [r for r in rows if not r["was_leader"]]
    if fol:
        ms = sorted(r["leaderless_after_heal_ms"] for r in fol)
        terms = sorted(r["cluster_term_gain"] for r in fol)
        print(
            f"follower isolations: {len(fol)}; leaderless after heal ms "
            f"min {ms[0]} p50 {ms[len(ms) // 2]} max {ms[-1]}; "
            f"cluster terms per isolation p50 {terms[len(terms) // 2]} max {terms[-1]}; "
            f"deposed (term moved) {sum(1 for t in terms if t > 0)}/{len(fol)}"
        )


if __name__ == "__main__":
    main()
