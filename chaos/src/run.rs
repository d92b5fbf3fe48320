//! One chaos run, end to end: network, TCP check, nodes, workload and
//! nemesis at once; the final heal; convergence (measuring T); collection
//! of every node's history and deliveries; the checker; the report.
//!
//! Cleanup is owned by [`Guard`]: it removes what the backend made
//! (processes, namespaces, the bridge, the FORWARD rule; or the Compose
//! project) and the temp dir when dropped (success, error, panic) and
//! when Ctrl-C or SIGTERM arrives.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::Method;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;
use topod::api::types::{DeliveriesPage, DeliveryView, HistoryPage, TopologyInfo, TransitionView};

use crate::backend::{Backend, Choice};
use crate::checker::{self, Convergence, Evidence, Verdict};
use crate::cluster::READY_TIMEOUT;
use crate::history::{History, Outcome, Record};
use crate::nemesis::{self, Fault, NemesisList, Step, Target};
use crate::scenario::Scenario;
use crate::workload::{self, Shared, TOPOLOGIES};
use crate::NodeId;

/// Removes everything a run made, however the run ends.
pub struct Guard {
    pub backend: Option<Arc<Backend>>,
    pub temp: PathBuf,
}

impl Guard {
    pub fn cleanup(&self) {
        if let Some(b) = &self.backend {
            b.cleanup();
        }
        if self.temp.exists() {
            if let Err(e) = std::fs::remove_dir_all(&self.temp) {
                eprintln!(
                    "topod-chaos: cleanup: removing {}: {e}",
                    self.temp.display()
                );
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The prefix of the harness's temp dirs (`cleanup` removes leftovers).
pub const TEMP_PREFIX: &str = "topod-chaos-";

/// Whether process `pid` is a harness (its temp dir and Compose project
/// are named by its pid, and `cleanup` leaves a running one's alone).
pub fn harness_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => comm.trim() == "topod-chaos",
        // No such process (or no /proc to tell): not running.
        Err(_) => false,
    }
}

/// The report written to `report.json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub scenario: Scenario,
    pub schedule: Vec<Step>,
    pub verdicts: Vec<Verdict>,
    pub faults_by_kind: BTreeMap<String, u64>,
    pub ops: BTreeMap<String, BTreeMap<String, u64>>,
    pub committed: u64,
    pub aborted: u64,
    pub convergence: Convergence,
    pub elapsed_s: f64,
    /// Automatic switches, readiness, unknown outcomes, log lines.
    pub extras: crate::afterwards::Extras,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.pass)
    }
}

/// Runs `scenario` with `seed`, writing into `out`.
pub async fn run(
    choice: Choice,
    scenario: Scenario,
    seed: u64,
    out: &Path,
    guard_slot: Arc<std::sync::Mutex<Option<Arc<Guard>>>>,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let list: NemesisList = scenario.nemesis.parse().map_err(anyhow::Error::msg)?;
    let nodes: Vec<NodeId> = (1..=scenario.nodes as NodeId).collect();
    let duration_ms = scenario.duration_s * 1000;
    let schedule = nemesis::schedule(seed, &list, &nodes, duration_ms, scenario.timing());
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    crate::outdir::clear_outputs(out, scenario.nodes)?;
    std::fs::write(
        out.join("schedule.json"),
        serde_json::to_vec_pretty(&schedule)?,
    )?;
    println!(
        "seed {seed}: {} nodes, {} s, {} faults: {}",
        scenario.nodes,
        scenario.duration_s,
        schedule.len(),
        describe(&schedule)
    );

    let temp = std::env::temp_dir().join(format!("{TEMP_PREFIX}{}", std::process::id()));
    let mut guard = Guard {
        backend: None,
        temp: temp.clone(),
    };
    std::fs::create_dir_all(&temp)?;
    let history = History::create(&out.join("history.jsonl"))?;
    let cluster = Arc::new(Backend::prepare(
        choice,
        &scenario,
        &temp,
        out,
        history.clone(),
    )?);
    guard.backend = Some(cluster.clone());
    let guard = Arc::new(guard);
    *guard_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard.clone());

    cluster.start_all().await?;
    for id in cluster.ids() {
        cluster.wait_ready(id, READY_TIMEOUT).await?;
    }
    let sh = Arc::new(Shared::new(cluster.clone(), history.clone()));
    let (stop_writes, writes_rx) = watch::channel(false);
    let (stop_bcast, bcast_rx) = watch::channel(false);
    let (stop_samples, samples_rx) = watch::channel(false);
    let mut samplers = JoinSet::new();
    workload::spawn_samplers(&mut samplers, &sh, &samples_rx);
    let mut writes = JoinSet::new();
    workload::spawn_writes(&mut writes, &sh, &scenario.workload, seed, &writes_rx);
    let mut bcasts = JoinSet::new();
    workload::spawn_broadcasts(&mut bcasts, &sh, &scenario.workload, &bcast_rx);

    let run_start = tokio::time::Instant::now();
    let mut faults_by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for (i, step) in schedule.iter().enumerate() {
        tokio::time::sleep_until(run_start + Duration::from_millis(step.at_ms)).await;
        *faults_by_kind
            .entry(step.fault.kind().name().to_string())
            .or_default() += 1;
        let undo = inject(&sh, step, i).await;
        tokio::time::sleep_until(run_start + Duration::from_millis(step.at_ms + step.hold_ms))
            .await;
        heal(&sh, undo).await;
    }
    tokio::time::sleep_until(run_start + Duration::from_millis(duration_ms)).await;
    // The final heal: nothing is cut, paused, delayed or down.
    cluster.heal().await?;
    let healed = Instant::now();
    history.nemesis("stop", "final-heal", json!({}));
    stop_writes.send_replace(true);
    while writes.join_next().await.is_some() {}
    let deadline = Duration::from_secs(scenario.converge_timeout_s);
    // Convergence is measured while the broadcasts go on for their tail.
    let tail = async {
        tokio::time::sleep(Duration::from_millis(scenario.workload.broadcast_tail_ms)).await;
        stop_bcast.send_replace(true);
        while bcasts.join_next().await.is_some() {}
    };
    let (convergence, ()) = tokio::join!(converge(&sh, healed, deadline), tail);
    println!(
        "convergence: {:?}",
        convergence
            .t_ms
            .map(|t| format!("T = {t} ms"))
            .unwrap_or_else(|| convergence.last_problem.clone())
    );
    let (acked_from_up, up) = required_broadcasts(&history.records());
    wait_deliveries(&sh, &acked_from_up, &up, healed + deadline).await;
    stop_samples.send_replace(true);
    while samplers.join_next().await.is_some() {}

    save_final_views(&sh, out).await;
    let mut evidence = collect(&sh, &nodes).await;
    evidence.convergence = convergence;
    evidence.records = history.records();
    crate::afterwards::lookups(&sh, &nodes, &mut evidence).await;
    cluster.stop_all().await;
    if let Err(e) = history.flush() {
        eprintln!("topod-chaos: history file: {e}");
    }
    evidence.records = history.records();
    let verdicts = checker::check(&evidence);
    let extras = crate::afterwards::extras(&evidence, out);
    let mut report = summarize(
        seed,
        scenario,
        schedule,
        verdicts,
        faults_by_kind,
        &evidence,
        started,
    );
    report.extras = extras;
    std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    Ok(report)
}

fn describe(schedule: &[Step]) -> String {
    schedule
        .iter()
        .map(|s| {
            format!(
                "{}{}",
                s.fault.kind().name(),
                if s.after_switch { "+sw" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a heal must undo.
enum Undo {
    Partition,
    Restart(NodeId),
    Resume(NodeId),
    ClearFaults(NodeId),
    Nothing,
}

fn resolve(sh: &Shared, t: Target) -> NodeId {
    match t {
        Target::Node(n) => n,
        Target::Leader => sh.leader().unwrap_or(1),
    }
}

async fn inject(sh: &Arc<Shared>, step: &Step, i: usize) -> Undo {
    if step.after_switch {
        let ids = sh.cluster.ids();
        let node = ids[i % ids.len()];
        let target = TOPOLOGIES[i % TOPOLOGIES.len()];
        let (outcome, _) = sh
            .switch(node, target, &format!("nem-{i}"), Duration::from_secs(10))
            .await;
        sh.history.nemesis(
            "switch",
            step.fault.kind().name(),
            json!({"accepted": outcome == Outcome::Ok}),
        );
    }
    let leader = sh.leader().unwrap_or(1);
    let detail = json!({"step": step, "leader": leader});
    sh.history
        .nemesis("start", step.fault.kind().name(), detail);
    let undo = match &step.fault {
        f @ (Fault::Isolate(_)
        | Fault::Split { .. }
        | Fault::Bridge { .. }
        | Fault::Ring { .. }) => {
            let ids = sh.cluster.ids();
            let map = nemesis::blocked(f, &ids, leader).unwrap_or_default();
            let cut = nemesis::cut_off(&map, &ids, sh.cluster.voters());
            sh.history
                .nemesis("cut", step.fault.kind().name(), json!({"cut_off": cut}));
            match sh.cluster.partition(&map).await {
                Ok(()) => Undo::Partition,
                Err(e) => return failed(sh, step, format!("{e:#}")),
            }
        }
        Fault::Kill(t) => {
            let id = resolve(sh, *t);
            sh.set_down(id, true);
            match sh.cluster.kill9(id).await {
                Ok(()) => Undo::Restart(id),
                Err(e) => return failed(sh, step, format!("{e:#}")),
            }
        }
        Fault::Pause(t) => {
            let id = resolve(sh, *t);
            match sh.cluster.pause(id).await {
                Ok(()) => Undo::Resume(id),
                Err(e) => return failed(sh, step, format!("{e:#}")),
            }
        }
        Fault::Delay { node, ms } => set_faults(sh, *node, json!({"delay_ms": ms})).await,
        Fault::Loss { node, permille } => {
            set_faults(
                sh,
                *node,
                json!({"drop_probability": f64::from(*permille) / 1000.0}),
            )
            .await
        }
    };
    undo
}

fn failed(sh: &Shared, step: &Step, why: String) -> Undo {
    eprintln!(
        "topod-chaos: nemesis {} not injected: {why}",
        step.fault.kind().name()
    );
    sh.history
        .nemesis("error", step.fault.kind().name(), json!({"error": why}));
    Undo::Nothing
}

/// Overlay-only faults on every link of `node` (its fault filter).
async fn set_faults(sh: &Shared, node: NodeId, rule: Value) -> Undo {
    let rules: Vec<Value> = sh
        .cluster
        .ids()
        .into_iter()
        .filter(|p| *p != node)
        .map(|p| {
            let mut r = rule.clone();
            r["peer"] = json!(p);
            r
        })
        .collect();
    let body = json!({"rules": rules, "seed": node});
    let res = sh
        .api
        .call(
            sh.cluster.api_addr(node),
            Method::PUT,
            "/v1/node/faults",
            Some(&body),
            Duration::from_secs(5),
        )
        .await;
    match res {
        Ok(a) if a.status == 200 => Undo::ClearFaults(node),
        other => {
            let why = format!("PUT /v1/node/faults on node {node}: {other:?}");
            eprintln!("topod-chaos: {why}");
            sh.history.nemesis("error", "faults", json!({"error": why}));
            Undo::Nothing
        }
    }
}

async fn heal(sh: &Arc<Shared>, undo: Undo) {
    let result: anyhow::Result<()> = match undo {
        Undo::Partition => sh.cluster.heal().await,
        Undo::Restart(id) => {
            let r = sh.cluster.start(id).await;
            sh.set_down(id, false);
            let sh2 = sh.clone();
            tokio::spawn(async move {
                if let Err(e) = sh2.cluster.wait_ready(id, READY_TIMEOUT).await {
                    sh2.history
                        .process(id, "not_ready", false, format!("{e:#}"));
                }
            });
            r
        }
        Undo::Resume(id) => sh.cluster.resume(id).await,
        Undo::ClearFaults(node) => {
            let res = sh
                .api
                .call(
                    sh.cluster.api_addr(node),
                    Method::DELETE,
                    "/v1/node/faults",
                    None,
                    Duration::from_secs(5),
                )
                .await;
            match res {
                Ok(a) if a.status == 200 => Ok(()),
                other => Err(anyhow::anyhow!(
                    "DELETE /v1/node/faults on node {node}: {other:?}"
                )),
            }
        }
        Undo::Nothing => Ok(()),
    };
    let detail = match &result {
        Ok(()) => json!({}),
        Err(e) => json!({"error": format!("{e:#}")}),
    };
    if let Err(e) = &result {
        eprintln!("topod-chaos: heal: {e:#}");
    }
    sh.history.nemesis("stop", "heal", detail);
}

/// Polls every node's topology until they agree (topology, epoch,
/// instance), nothing is in flight and the overlay graph is connected;
/// T from `healed`.
async fn converge(sh: &Shared, healed: Instant, deadline: Duration) -> Convergence {
    let mut last_problem = String::new();
    loop {
        match agreement(sh).await {
            Ok(()) => {
                return Convergence {
                    t_ms: Some(u64::try_from(healed.elapsed().as_millis()).unwrap_or(u64::MAX)),
                    deadline_ms: deadline.as_millis() as u64,
                    last_problem,
                }
            }
            Err(p) => last_problem = p,
        }
        if healed.elapsed() >= deadline {
            return Convergence {
                t_ms: None,
                deadline_ms: deadline.as_millis() as u64,
                last_problem,
            };
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn agreement(sh: &Shared) -> Result<(), String> {
    let mut infos: BTreeMap<NodeId, TopologyInfo> = BTreeMap::new();
    for id in sh.cluster.ids() {
        let a = sh
            .api
            .get(
                sh.cluster.api_addr(id),
                "/v1/topology",
                Duration::from_secs(2),
            )
            .await
            .map_err(|e| format!("node {id}: {e}"))?;
        let info: TopologyInfo = serde_json::from_value(a.body)
            .map_err(|e| format!("node {id}: topology answer: {e}"))?;
        infos.insert(id, info);
    }
    let mut views = BTreeSet::new();
    for (id, i) in &infos {
        if let Some(t) = &i.in_flight {
            return Err(format!("node {id} has transition {} in flight", t.id));
        }
        views.insert((i.topology.as_str(), i.epoch, i.current_instance));
    }
    if views.len() > 1 {
        let each: Vec<String> = infos
            .iter()
            .map(|(id, i)| {
                format!(
                    "{id}: {} epoch {} instance {}",
                    i.topology.as_str(),
                    i.epoch,
                    i.current_instance
                )
            })
            .collect();
        return Err(format!("nodes disagree: {}", each.join(", ")));
    }
    connected(&infos).map_err(|e| {
        let links: Vec<String> = infos
            .iter()
            .map(|(id, i)| format!("{id}→{:?}", i.links))
            .collect();
        format!(
            "{e} (on {}; links {})",
            infos.values().next().map_or("?", |i| i.topology.as_str()),
            links.join(" ")
        )
    })
}

/// Whether the union of the nodes' links connects every node.
fn connected(infos: &BTreeMap<NodeId, TopologyInfo>) -> Result<(), String> {
    let mut adj: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
    for (id, i) in infos {
        for l in &i.links {
            adj.entry(*id).or_default().insert(*l);
            adj.entry(*l).or_default().insert(*id);
        }
    }
    let Some(&first) = infos.keys().next() else {
        return Ok(());
    };
    let mut seen = BTreeSet::from([first]);
    let mut queue = VecDeque::from([first]);
    while let Some(x) = queue.pop_front() {
        for y in adj.get(&x).into_iter().flatten() {
            if seen.insert(*y) {
                queue.push_back(*y);
            }
        }
    }
    let unreached: Vec<NodeId> = infos
        .keys()
        .filter(|n| !seen.contains(n))
        .copied()
        .collect();
    if unreached.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "overlay not connected: node {first} reaches no path to {unreached:?}"
        ))
    }
}

/// The ids of broadcasts acknowledged by nodes never killed, and those
/// nodes.
fn required_broadcasts(records: &[Record]) -> (BTreeSet<String>, BTreeSet<NodeId>) {
    let killed = checker::killed_nodes(records);
    let mut invokes = BTreeMap::new();
    let mut nodes = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for r in records {
        match r {
            Record::Invoke {
                op,
                node,
                value,
                kind: crate::history::OpKind::Broadcast,
                ..
            } => {
                nodes.insert(*node);
                invokes.insert(*op, (*node, value["id"].as_str().unwrap_or("").to_string()));
            }
            Record::Complete {
                op,
                outcome: Outcome::Ok,
                ..
            } => {
                if let Some((n, id)) = invokes.get(op) {
                    if !killed.contains(n) {
                        ids.insert(id.clone());
                    }
                }
            }
            _ => {}
        }
    }
    (ids, nodes.difference(&killed).copied().collect())
}

/// Waits (bounded) until every node that stayed up delivered every
/// required broadcast.
async fn wait_deliveries(
    sh: &Shared,
    required: &BTreeSet<String>,
    up: &BTreeSet<NodeId>,
    until: Instant,
) {
    loop {
        let mut complete = true;
        for &id in up {
            match deliveries(sh, id).await {
                Ok((d, _)) => {
                    let got: BTreeSet<&str> = d.iter().map(|x| x.id.as_str()).collect();
                    if required.iter().any(|r| !got.contains(r.as_str())) {
                        complete = false;
                    }
                }
                Err(_) => complete = false,
            }
        }
        if complete || Instant::now() >= until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every delivery of node `id` and the number lost from its record.
async fn deliveries(sh: &Shared, id: NodeId) -> Result<(Vec<DeliveryView>, u64), String> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let path = format!("/v1/node/deliveries?after={after}&limit=1000");
        let a = sh
            .api
            .get(sh.cluster.api_addr(id), &path, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        let p: DeliveriesPage = serde_json::from_value(a.body).map_err(|e| e.to_string())?;
        out.extend(p.deliveries);
        match p.next_after {
            Some(n) => after = n,
            None => return Ok((out, p.dropped + p.lagged + p.undecodable)),
        }
    }
}

/// Writes each node's final `/v1/topology` and `/v1/node/stats` to
/// `final-node{N}.json`, for diagnosis.
async fn save_final_views(sh: &Shared, out: &Path) {
    for id in sh.cluster.ids() {
        let mut v = json!({});
        for (key, path) in [
            ("topology", "/v1/topology"),
            ("stats", "/v1/node/stats"),
            ("status", "/v1/cluster/status"),
        ] {
            v[key] = match sh
                .api
                .get(sh.cluster.api_addr(id), path, Duration::from_secs(5))
                .await
            {
                Ok(a) => a.body,
                Err(e) => json!({"error": e.to_string()}),
            };
        }
        let file = out.join(format!("final-node{id}.json"));
        let written = serde_json::to_vec_pretty(&v)
            .map_err(|e| e.to_string())
            .and_then(|b| std::fs::write(&file, b).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("topod-chaos: writing {}: {e}", file.display());
        }
    }
}

/// Node `id`'s whole history, ascending by id.
async fn history_of(sh: &Shared, id: NodeId) -> Result<Vec<TransitionView>, String> {
    let mut out = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/v1/topology/history?limit=1000&before={b}"),
            None => "/v1/topology/history?limit=1000".to_string(),
        };
        let a = sh
            .api
            .get(sh.cluster.api_addr(id), &path, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        let p: HistoryPage = serde_json::from_value(a.body).map_err(|e| e.to_string())?;
        out.extend(p.transitions);
        match p.next_before {
            Some(b) if before != Some(b) => before = Some(b),
            _ => break,
        }
    }
    out.sort_by_key(|v| v.id);
    Ok(out)
}

async fn collect(sh: &Shared, nodes: &[NodeId]) -> Evidence {
    let mut e = Evidence {
        nodes: nodes.to_vec(),
        ..Evidence::default()
    };
    for &id in nodes {
        let h = history_of(sh, id).await;
        if let Err(err) = &h {
            eprintln!("topod-chaos: node {id} history: {err}");
        }
        e.histories.insert(id, h.ok());
        match deliveries(sh, id).await {
            Ok((d, lost)) => {
                e.deliveries.insert(id, Some(d));
                e.delivery_losses.insert(id, lost);
            }
            Err(err) => {
                eprintln!("topod-chaos: node {id} deliveries: {err}");
                e.deliveries.insert(id, None);
            }
        }
    }
    e
}

fn summarize(
    seed: u64,
    scenario: Scenario,
    schedule: Vec<Step>,
    verdicts: Vec<Verdict>,
    faults_by_kind: BTreeMap<String, u64>,
    e: &Evidence,
    started: Instant,
) -> Report {
    let mut kinds = BTreeMap::new();
    let mut ops: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in &e.records {
        match r {
            Record::Invoke { op, kind, .. } => {
                kinds.insert(*op, format!("{kind:?}").to_lowercase());
            }
            Record::Complete { op, outcome, .. } => {
                if let Some(k) = kinds.get(op) {
                    *ops.entry(k.clone())
                        .or_default()
                        .entry(format!("{outcome:?}").to_lowercase())
                        .or_default() += 1;
                }
            }
            _ => {}
        }
    }
    let first = e.histories.values().flatten().next();
    let count = |s: topod::api::types::TransitionStatus| {
        first.map_or(0, |h| h.iter().filter(|v| v.status == s).count() as u64)
    };
    Report {
        seed,
        scenario,
        schedule,
        verdicts,
        faults_by_kind,
        ops,
        committed: count(topod::api::types::TransitionStatus::Committed),
        aborted: count(topod::api::types::TransitionStatus::Aborted),
        convergence: e.convergence.clone(),
        elapsed_s: started.elapsed().as_secs_f64(),
        extras: Default::default(),
    }
}
