//! The switching rules, table-driven from the case files in
//! `tests/rules/*.toml` (format in `tests/rules/README.md`), and a
//! property test: metrics wandering around the thresholds, fed back
//! through simulated switches, never switch twice inside a cooldown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde::Deserialize;
use topod::model::metrics::{HopCount, InOut, Percentiles, Workload};
use topod::model::{ClusterMetrics, Policy, PolicyUpdate, Topology, WorkloadPattern};
use topod::rules::{
    classify_workload, evaluate, Decision, DeferReason, Evaluation, RuleContext, RuleMemory, RULES,
};

// ---------------------------------------------------------------------------
// Table cases
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    context: toml::Table,
    #[serde(default)]
    metrics: toml::Table,
    #[serde(default)]
    policy: toml::Table,
    #[serde(default)]
    memory: BTreeMap<String, u32>,
    traffic: Option<Traffic>,
    #[serde(default)]
    round: Vec<Round>,
    expect: Option<Expect>,
}

/// Application messages of the window: the metrics' `workload` becomes
/// `classify_workload` of them with the case's thresholds (the monitor's
/// path).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct Traffic {
    broadcasts: u64,
    direct: u64,
}

/// One round of a case: overrides merged over the case's context and
/// metrics (not over the previous round's).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Round {
    #[serde(default)]
    context: toml::Table,
    #[serde(default)]
    metrics: toml::Table,
    traffic: Option<Traffic>,
    expect: Option<Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// `stay`, `switch` or `deferred`.
    decision: String,
    target: Option<Topology>,
    rule: Option<String>,
    why: Option<DeferReason>,
    /// Exactly the rules that hold this round.
    holds: Option<Vec<String>>,
    /// Consecutive counts of these rules after this round.
    #[serde(default)]
    consecutive: BTreeMap<String, u32>,
    /// Lines the explanation must contain, whole.
    #[serde(default)]
    lines: Vec<String>,
    /// Text the explanation must contain somewhere.
    #[serde(default)]
    contains: Vec<String>,
}

/// A healthy five-node cluster: no rule holds on it, whatever the
/// topology.
fn baseline_metrics() -> ClusterMetrics {
    ClusterMetrics {
        node_count: 5,
        live_nodes: 5,
        latency_ms: Percentiles {
            p50: 2.0,
            p99: 10.0,
        },
        connectivity_score: 1.0,
        partition_count: 0,
        bandwidth_bytes_per_s: InOut {
            inbound: 1e5,
            outbound: 1e5,
        },
        peak_node_bytes_per_s: 5e4,
        bandwidth_utilization: 0.1,
        max_queue_depth: 0,
        hop_count: HopCount { p50: 1.0, max: 2 },
        connection_load: 0.1,
        workload: Workload {
            pattern: WorkloadPattern::Mixed,
            broadcast_share: 0.5,
            messages: 1000,
        },
    }
}

/// `Policy::default()` with `auto_switch` on (the cases are about the
/// rules; `auto_switch` off has cases of its own).
fn baseline_policy() -> Policy {
    Policy {
        auto_switch: true,
        ..Policy::default()
    }
}

fn merge(base: &mut toml::Table, patch: &toml::Table) {
    for (k, v) in patch {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(p)) => merge(b, p),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

fn merged<T: serde::Serialize + serde::de::DeserializeOwned>(
    base: &T,
    patches: &[&toml::Table],
) -> Result<T, String> {
    let mut table = toml::Table::try_from(base).map_err(|e| e.to_string())?;
    for p in patches {
        merge(&mut table, p);
    }
    table.try_into().map_err(|e: toml::de::Error| e.to_string())
}

fn policy_of(case: &Case) -> Result<Policy, String> {
    let update: PolicyUpdate = merged(&PolicyUpdate::default(), &[&case.policy])?;
    update.check().map_err(|e| format!("policy: {e}"))?;
    let mut policy = baseline_policy();
    update
        .apply(&mut policy)
        .map_err(|e| format!("policy: {e}"))?;
    Ok(policy)
}

fn check(expect: &Expect, ev: &Evaluation) -> Result<(), String> {
    let (kind, target, rule, why) = match &ev.decision {
        Decision::Stay => ("stay", None, None, None),
        Decision::Switch {
            target,
            rule,
            explanation,
        } => {
            if explanation != &ev.explanation {
                return Err("a switch carries another explanation than the round's".into());
            }
            ("switch", Some(*target), Some(rule.as_str()), None)
        }
        Decision::Deferred { target, rule, why } => {
            ("deferred", Some(*target), Some(rule.as_str()), Some(why))
        }
    };
    let mut wrong = Vec::new();
    if expect.decision != kind {
        wrong.push(format!("decision {kind}, expected {}", expect.decision));
    }
    if expect.target.is_some() && expect.target != target {
        wrong.push(format!("target {target:?}, expected {:?}", expect.target));
    }
    if expect.rule.is_some() && expect.rule.as_deref() != rule {
        wrong.push(format!("rule {rule:?}, expected {:?}", expect.rule));
    }
    if expect.why.is_some() && expect.why.as_ref() != why {
        wrong.push(format!("why {why:?}, expected {:?}", expect.why));
    }
    if let Some(holds) = &expect.holds {
        let actual: Vec<&str> = ev
            .rules
            .iter()
            .filter(|e| e.holds)
            .map(|e| e.rule.as_str())
            .collect();
        if actual != *holds {
            wrong.push(format!("rules holding {actual:?}, expected {holds:?}"));
        }
    }
    for (rule, n) in &expect.consecutive {
        let actual = ev.memory.consecutive.get(rule);
        if actual != Some(n) {
            wrong.push(format!("{rule} consecutive {actual:?}, expected {n}"));
        }
    }
    for line in &expect.lines {
        if !ev.explanation.lines().any(|l| l == line) {
            wrong.push(format!("no line `{line}`"));
        }
    }
    for text in &expect.contains {
        if !ev.explanation.contains(text.as_str()) {
            wrong.push(format!("no text `{text}`"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n--- explanation:\n{}",
            wrong.join("; "),
            ev.explanation
        ))
    }
}

/// Every round's evaluation must have one evaluation per rule, in
/// `RULES` order, whose memory matches.
fn check_shape(ev: &Evaluation) -> Result<(), String> {
    let names: Vec<&str> = ev.rules.iter().map(|e| e.rule.as_str()).collect();
    if names != RULES {
        return Err(format!("rules evaluated {names:?}, expected {RULES:?}"));
    }
    if ev.memory.consecutive.len() != RULES.len() {
        return Err(format!("memory keeps {:?}", ev.memory.consecutive));
    }
    for e in &ev.rules {
        if ev.memory.consecutive.get(&e.rule) != Some(&e.consecutive) {
            return Err(format!("{}: memory disagrees with the evaluation", e.rule));
        }
        if !e.holds && e.consecutive != 0 {
            return Err(format!(
                "{} does not hold but counts {}",
                e.rule, e.consecutive
            ));
        }
        if !ev
            .explanation
            .lines()
            .any(|l| l.starts_with(&format!("{}: ", e.rule)))
        {
            return Err(format!("the explanation has no line for {}", e.rule));
        }
    }
    Ok(())
}

fn run_case(case: &Case) -> Result<(), String> {
    let policy = policy_of(case)?;
    let mut memory = RuleMemory {
        consecutive: case.memory.clone(),
    };
    let single = [Round::default()];
    let rounds: &[Round] = if case.round.is_empty() {
        &single
    } else {
        &case.round
    };
    let mut checked = 0;
    for (i, round) in rounds.iter().enumerate() {
        let at = |e: String| format!("round {}: {e}", i + 1);
        let ctx: RuleContext = toml::Value::Table({
            let mut t = case.context.clone();
            merge(&mut t, &round.context);
            t
        })
        .try_into()
        .map_err(|e: toml::de::Error| at(format!("context: {e}")))?;
        let mut metrics: ClusterMetrics =
            merged(&baseline_metrics(), &[&case.metrics, &round.metrics])
                .map_err(|e| at(format!("metrics: {e}")))?;
        if let Some(t) = round.traffic.or(case.traffic) {
            metrics.workload = classify_workload(t.broadcasts, t.direct, &policy.thresholds);
        }
        let ev = evaluate(&ctx, &metrics, &policy, &memory);
        check_shape(&ev).map_err(at)?;
        let last = i + 1 == rounds.len();
        let expect = round
            .expect
            .as_ref()
            .or(if last { case.expect.as_ref() } else { None });
        if let Some(expect) = expect {
            check(expect, &ev).map_err(at)?;
            checked += 1;
        }
        memory = ev.memory;
    }
    if checked == 0 {
        return Err("the case expects nothing".into());
    }
    Ok(())
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_table_case_decides_as_expected() {
    let files = case_files();
    // One file per rule, plus hysteresis, gates and priority.
    assert!(files.len() >= 7, "case files: {files:?}");
    let mut failures = Vec::new();
    let mut cases = 0;
    for file in &files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let text = std::fs::read_to_string(file).expect("read case file");
        let parsed: CaseFile = match toml::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        for case in &parsed.case {
            cases += 1;
            if let Err(e) = run_case(case) {
                failures.push(format!("{name}: case `{}`: {e}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(cases >= 40, "only {cases} cases");
}

// ---------------------------------------------------------------------------
// Property: no more than one switch per cooldown window
// ---------------------------------------------------------------------------

/// Where the simulated cluster is after some rounds.
struct Sim {
    ctx: RuleContext,
    memory: RuleMemory,
    /// (time, from, to, rule) of every switch.
    switches: Vec<(u64, Topology, Topology, String)>,
}

/// A figure that wanders around `center` by up to `spread` either way.
fn around(center: f64, spread: f64) -> impl Strategy<Value = f64> {
    (center - spread)..=(center + spread)
}

fn around_u32(center: u32, spread: u32) -> impl Strategy<Value = u32> {
    center.saturating_sub(spread)..=center + spread
}

/// One round's metrics, each figure near its rule's threshold (the node
/// count near one of the three size thresholds).
fn wandering_metrics() -> impl Strategy<Value = ClusterMetrics> {
    let size = prop_oneof![around_u32(10, 3), around_u32(20, 3), around_u32(1000, 3)];
    (
        size,
        around(50.0, 10.0),
        around(0.9, 0.05),
        around_u32(2, 2),
        around(0.8, 0.05),
        around(0.8, 0.05),
        around_u32(8, 2),
        (0u64..=200, 0u64..=200),
    )
        .prop_map(|(n, p99, conn, parts, load, bw, hops, (b, d))| {
            let mut m = baseline_metrics();
            m.node_count = n;
            m.live_nodes = n;
            m.latency_ms.p99 = p99;
            m.connectivity_score = conn;
            m.partition_count = parts;
            m.connection_load = load;
            m.bandwidth_utilization = bw;
            m.hop_count.max = hops;
            m.workload = classify_workload(b, d, &Policy::default().thresholds);
            m
        })
}

fn policy_strategy() -> impl Strategy<Value = (Policy, u64)> {
    // The interval, the cooldown in intervals (0..=5 of them, plus a
    // fraction), hold rounds and the flap window in intervals.
    (
        prop_oneof![Just(2_000u64), Just(60_000u64), 100u64..=10_000],
        0u64..=5,
        0u64..1000,
        1u32..=4,
        0u64..=10,
        any::<bool>(),
    )
        .prop_map(|(interval, cd, frac, hold, flap, servers)| {
            let policy = Policy {
                auto_switch: true,
                monitor_interval_ms: interval,
                cooldown_ms: cd * interval + frac * interval / 1000,
                hold_rounds: hold,
                flap_window_ms: flap * interval,
                ..Policy::default()
            };
            (policy, u64::from(servers))
        })
}

/// Runs the rounds, committing every switch at once (the fastest a
/// cluster could carry them out, so the most switches possible).
fn simulate(policy: &Policy, servers: bool, start: Topology, rounds: &[ClusterMetrics]) -> Sim {
    let mut sim = Sim {
        ctx: RuleContext {
            now_ms: 1_000_000,
            current: start,
            in_flight: None,
            last_switch_ms: None,
            left_at_ms: BTreeMap::new(),
            servers_available: servers,
        },
        memory: RuleMemory::default(),
        switches: Vec::new(),
    };
    for m in rounds {
        let ev = evaluate(&sim.ctx, m, policy, &sim.memory);
        sim.memory = ev.memory;
        if let Decision::Switch { target, rule, .. } = ev.decision {
            let now = sim.ctx.now_ms;
            sim.switches.push((now, sim.ctx.current, target, rule));
            sim.ctx.left_at_ms.insert(sim.ctx.current, now);
            sim.ctx.current = target;
            sim.ctx.last_switch_ms = Some(now);
        }
        sim.ctx.now_ms += policy.monitor_interval_ms;
    }
    sim
}

/// Invariant: two switches are at least `cooldown_ms` apart.
fn one_switch_per_cooldown(sim: &Sim, policy: &Policy) -> Result<(), String> {
    for pair in sim.switches.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        if gap < policy.cooldown_ms {
            return Err(format!(
                "switches {:?} and {:?} are {gap} ms apart, cooldown {}",
                pair[0], pair[1], policy.cooldown_ms
            ));
        }
    }
    Ok(())
}

/// Invariant: no switch returns to a topology left less than
/// `flap_window_ms` earlier.
fn no_return_inside_the_flap_window(sim: &Sim, policy: &Policy) -> Result<(), String> {
    for (i, (at, _, to, _)) in sim.switches.iter().enumerate() {
        let left = sim.switches[..i]
            .iter()
            .rev()
            .find(|(_, from, _, _)| from == to);
        if let Some((left_at, ..)) = left {
            if at - left_at < policy.flap_window_ms {
                return Err(format!(
                    "returned to {to} at {at}, left at {left_at}, window {}",
                    policy.flap_window_ms
                ));
            }
        }
    }
    Ok(())
}

/// Invariant: no switch happens before `hold_rounds` rounds (a rule
/// cannot have held long enough in fewer rounds since the start).
fn no_switch_before_hold_rounds(sim: &Sim, policy: &Policy, start_ms: u64) -> Result<(), String> {
    if let Some((at, ..)) = sim.switches.first() {
        let rounds = (at - start_ms) / policy.monitor_interval_ms + 1;
        if rounds < u64::from(policy.hold_rounds) {
            return Err(format!(
                "switched in round {rounds}, hold_rounds {}",
                policy.hold_rounds
            ));
        }
    }
    Ok(())
}

fn start_topology() -> impl Strategy<Value = Topology> {
    prop_oneof![
        Just(Topology::FullMesh),
        Just(Topology::HyParView),
        Just(Topology::ClientServer),
        Just(Topology::PubSub)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn wandering_metrics_never_switch_twice_inside_a_cooldown(
        (policy, servers) in policy_strategy(),
        start in start_topology(),
        rounds in proptest::collection::vec(wandering_metrics(), 1..120),
    ) {
        let sim = simulate(&policy, servers == 1, start, &rounds);
        let checks = [
            one_switch_per_cooldown(&sim, &policy),
            no_return_inside_the_flap_window(&sim, &policy),
            no_switch_before_hold_rounds(&sim, &policy, 1_000_000),
        ];
        for c in checks {
            prop_assert!(c.is_ok(), "{}", c.unwrap_err());
        }
    }
}

/// The property above is not vacuous: a steady degradation switches, and
/// with a cooldown of five intervals a cluster that keeps finding reasons
/// switches every fifth round at most, not every round.
#[test]
fn steady_trouble_switches_once_per_cooldown_window() {
    let policy = Policy {
        auto_switch: true,
        monitor_interval_ms: 1000,
        cooldown_ms: 5000,
        hold_rounds: 1,
        flap_window_ms: 0,
        ..Policy::default()
    };
    // 25 members on a full mesh with a high connection load (rule 2 →
    // hyparview) switch once: afterwards no rule holds.
    let mut rounds = Vec::new();
    for _ in 0..30 {
        let mut m = baseline_metrics();
        m.node_count = 25;
        m.connection_load = 0.95;
        rounds.push(m);
    }
    let sim = simulate(&policy, true, Topology::FullMesh, &rounds);
    assert_eq!(sim.switches.len(), 1, "{:?}", sim.switches);
    assert_eq!(sim.switches[0].2, Topology::HyParView);

    // Alternating between that and 8 members on hyparview with bad
    // latency (rule 1 → full mesh): one rule holds every round, yet the
    // switches are a cooldown apart.
    let flapping: Vec<ClusterMetrics> = (0..30)
        .map(|i| {
            let mut m = baseline_metrics();
            if i % 2 == 0 {
                m.node_count = 25;
                m.connection_load = 0.95;
            } else {
                m.node_count = 8;
                m.latency_ms.p99 = 90.0;
            }
            m
        })
        .collect();
    let sim = simulate(&policy, true, Topology::FullMesh, &flapping);
    assert!(sim.switches.len() >= 3, "{:?}", sim.switches);
    one_switch_per_cooldown(&sim, &policy).unwrap();
    let gaps: Vec<u64> = sim.switches.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps.iter().all(|g| *g >= 5000), "{gaps:?}");
}
