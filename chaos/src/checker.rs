//! The seven properties of issue 11, each a small pure function over the
//! [`Evidence`] collected at the end of a run (the history, each node's
//! transition history and deliveries, the convergence measurement),
//! answering PASS or FAIL with a reason.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use topod::api::types::{DeliveryView, TransitionStatus, TransitionView};

use crate::history::{OpKind, Outcome, Record};
use crate::NodeId;

/// Everything the properties are computed from.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub records: Vec<Record>,
    pub nodes: Vec<NodeId>,
    /// Each node's applied history, ascending by id (`None`: it could not
    /// be read).
    pub histories: BTreeMap<NodeId, Option<Vec<TransitionView>>>,
    /// Each node's deliveries (`None`: not read), and whether its ring
    /// dropped or its recorder lagged.
    pub deliveries: BTreeMap<NodeId, Option<Vec<DeliveryView>>>,
    pub delivery_losses: BTreeMap<NodeId, u64>,
    pub convergence: Convergence,
    /// What `GET /v1/transitions?request_id=` answered at the end, by
    /// request id, for every switch not refused.
    pub lookups: BTreeMap<String, crate::serving::Lookup>,
}

/// What the harness saw after the final heal.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Convergence {
    /// Ms from the final heal until every node ran the same topology and
    /// epoch with nothing in flight and a connected overlay; `None` if
    /// that did not happen before the deadline.
    pub t_ms: Option<u64>,
    pub deadline_ms: u64,
    /// The last disagreement seen (when it did not converge).
    pub last_problem: String,
}

/// One property's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub number: u8,
    pub name: &'static str,
    pub pass: bool,
    pub reason: String,
}

pub(crate) fn verdict(
    number: u8,
    name: &'static str,
    problems: Vec<String>,
    ok: String,
) -> Verdict {
    let pass = problems.is_empty();
    let reason = if pass {
        ok
    } else {
        let more = problems.len().saturating_sub(5);
        let mut r = problems.into_iter().take(5).collect::<Vec<_>>().join("; ");
        if more > 0 {
            r.push_str(&format!("; and {more} more"));
        }
        r
    };
    Verdict {
        number,
        name,
        pass,
        reason,
    }
}

/// Every property, in order.
pub fn check(e: &Evidence) -> Vec<Verdict> {
    vec![
        histories_agree(e),
        acknowledged_switches_kept(e),
        transitions_decided_alike(e),
        one_leader_per_term(e),
        converged_after_heal(e),
        broadcasts_exactly_once(e),
        no_unexpected_crash(e),
        crate::serving::cut_off_nodes_not_ready(e),
        crate::serving::outcomes_resolvable(e),
    ]
}

/// The fields of a record that never change once it is decided.
fn decided_fields(v: &TransitionView) -> Value {
    serde_json::json!({
        "from": v.from, "to": v.to, "reason": v.reason, "requested_by": v.requested_by,
        "proposed_at_ms": v.proposed_at_ms, "status": v.status, "decided_at_ms": v.decided_at_ms,
        "missing": v.missing, "abort_reason": v.abort_reason, "epoch": v.epoch,
    })
}

fn read_histories(
    e: &Evidence,
    problems: &mut Vec<String>,
) -> BTreeMap<NodeId, BTreeMap<u64, TransitionView>> {
    let mut out = BTreeMap::new();
    for (node, h) in &e.histories {
        match h {
            Some(h) => {
                out.insert(*node, h.iter().map(|v| (v.id, v.clone())).collect());
            }
            None => problems.push(format!("node {node}'s history could not be read")),
        }
    }
    out
}

/// Property 1: Applied histories agree index by index on every node.
pub fn histories_agree(e: &Evidence) -> Verdict {
    let mut problems = Vec::new();
    let hs = read_histories(e, &mut problems);
    let ids: BTreeSet<u64> = hs.values().flat_map(|h| h.keys().copied()).collect();
    for id in &ids {
        let mut seen: Option<(NodeId, Value)> = None;
        for (node, h) in &hs {
            let Some(v) = h.get(id) else {
                problems.push(format!("transition {id} is missing on node {node}"));
                continue;
            };
            if !v.status.is_final() {
                continue;
            }
            let f = decided_fields(v);
            match &seen {
                None => seen = Some((*node, f)),
                Some((n0, f0)) if *f0 != f => problems.push(format!(
                    "transition {id}: node {n0} has {f0}, node {node} has {f}"
                )),
                Some(_) => {}
            }
        }
    }
    verdict(
        1,
        "histories_agree",
        problems,
        format!("{} transitions identical on {} nodes", ids.len(), hs.len()),
    )
}

/// The acknowledged switches: (transition id, target topology, request id).
fn acknowledged(records: &[Record]) -> Vec<(u64, String, String)> {
    crate::serving::switch_ops(records)
        .into_iter()
        .filter(|s| s.outcome == Outcome::Ok)
        .filter_map(|s| Some((s.acked_id?, s.topology, s.request_id)))
        .collect()
}

/// Property 2: Every acknowledged switch (202 with id N) is in the final history
/// at N, with the target and the request id asked for.
pub fn acknowledged_switches_kept(e: &Evidence) -> Verdict {
    let mut problems = Vec::new();
    let hs = read_histories(e, &mut problems);
    let acks = acknowledged(&e.records);
    for (id, to, rid) in &acks {
        for (node, h) in &hs {
            match h.get(id) {
                None => problems.push(format!("switch {rid} acknowledged as {id} is not in node {node}'s history")),
                Some(v) if v.to.as_str() != to => problems.push(format!(
                    "switch {rid} to {to} acknowledged as {id}, node {node}'s history has {id} to {}",
                    v.to.as_str()
                )),
                Some(v) if v.request_id.as_deref() != Some(rid.as_str()) => problems.push(format!(
                    "switch {rid} acknowledged as {id}, node {node}'s history has {id} with request id {:?}",
                    v.request_id
                )),
                Some(_) => {}
            }
        }
    }
    verdict(
        2,
        "acknowledged_switches_kept",
        problems,
        format!("{} acknowledged switches all in every history", acks.len()),
    )
}

/// Property 3: Every transition ends committed on all nodes or aborted on all, none
/// left in flight after the heal.
pub fn transitions_decided_alike(e: &Evidence) -> Verdict {
    let mut problems = Vec::new();
    let hs = read_histories(e, &mut problems);
    let mut outcomes: BTreeMap<u64, BTreeMap<&'static str, Vec<NodeId>>> = BTreeMap::new();
    for (node, h) in &hs {
        for v in h.values() {
            outcomes
                .entry(v.id)
                .or_default()
                .entry(v.status.as_str())
                .or_default()
                .push(*node);
        }
    }
    let (mut committed, mut aborted) = (0, 0);
    for (id, by) in &outcomes {
        if let Some(nodes) = by.get(TransitionStatus::InProgress.as_str()) {
            problems.push(format!(
                "transition {id} still in flight on nodes {nodes:?}"
            ));
        }
        if by.len() > 1 {
            problems.push(format!("transition {id} ends differently: {by:?}"));
        } else if by.contains_key(TransitionStatus::Committed.as_str()) {
            committed += 1;
        } else if by.contains_key(TransitionStatus::Aborted.as_str()) {
            aborted += 1;
        }
    }
    verdict(
        3,
        "transitions_decided_alike",
        problems,
        format!("{committed} committed and {aborted} aborted on every node, none in flight"),
    )
}

/// Property 4: At most one leader per term, from the status samples.
pub fn one_leader_per_term(e: &Evidence) -> Verdict {
    let mut leaders: BTreeMap<u64, BTreeSet<NodeId>> = BTreeMap::new();
    let mut samples = 0;
    for r in &e.records {
        if let Record::Status {
            node, term, role, ..
        } = r
        {
            samples += 1;
            if role == "leader" {
                leaders.entry(*term).or_default().insert(*node);
            }
        }
    }
    let problems = leaders
        .iter()
        .filter(|(_, l)| l.len() > 1)
        .map(|(t, l)| format!("term {t} has leaders {l:?}"))
        .collect();
    let max_term = leaders.keys().max().copied().unwrap_or(0);
    verdict(
        4,
        "one_leader_per_term",
        problems,
        format!(
            "{} terms with a leader (up to term {max_term}) in {samples} samples",
            leaders.len()
        ),
    )
}

/// Property 5: After the heal every node runs the same topology and epoch and the
/// overlay graph is connected, within the deadline; reports T.
pub fn converged_after_heal(e: &Evidence) -> Verdict {
    let c = &e.convergence;
    let problems = match c.t_ms {
        Some(_) => Vec::new(),
        None => vec![format!(
            "not converged within {} ms of the heal: {}",
            c.deadline_ms, c.last_problem
        )],
    };
    verdict(
        5,
        "converged_after_heal",
        problems,
        format!("T = {} ms after the heal", c.t_ms.unwrap_or(0)),
    )
}

/// Nodes the nemesis killed at some point (they did not stay up).
pub fn killed_nodes(records: &[Record]) -> BTreeSet<NodeId> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Process { node, event, .. } if event == "killed" => Some(*node),
            _ => None,
        })
        .collect()
}

/// Acknowledged broadcasts (origin, id) and the ids of every broadcast
/// that may have been sent (ok or unknown).
fn broadcasts(records: &[Record]) -> (Vec<(NodeId, String)>, BTreeSet<String>) {
    let mut invokes: BTreeMap<u64, (NodeId, String)> = BTreeMap::new();
    let mut acked = Vec::new();
    let mut maybe = BTreeSet::new();
    for r in records {
        match r {
            Record::Invoke {
                op,
                kind: OpKind::Broadcast,
                node,
                value,
                ..
            } => {
                invokes.insert(*op, (*node, value["id"].as_str().unwrap_or("").to_string()));
            }
            Record::Complete { op, outcome, .. } => {
                if let Some((node, id)) = invokes.get(op) {
                    if *outcome != Outcome::Fail {
                        maybe.insert(id.clone());
                    }
                    if *outcome == Outcome::Ok {
                        acked.push((*node, id.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    (acked, maybe)
}

/// Property 6: Every broadcast acknowledged by a node that stayed up is delivered
/// exactly once to every node that stayed up; no node delivers a
/// broadcast twice or one that was never sent.
pub fn broadcasts_exactly_once(e: &Evidence) -> Verdict {
    let mut problems = Vec::new();
    let killed = killed_nodes(&e.records);
    let up: BTreeSet<NodeId> = e
        .nodes
        .iter()
        .copied()
        .filter(|n| !killed.contains(n))
        .collect();
    let (acked, maybe) = broadcasts(&e.records);
    let required: Vec<&(NodeId, String)> = acked.iter().filter(|(o, _)| up.contains(o)).collect();
    for (node, d) in &e.deliveries {
        let Some(d) = d else {
            problems.push(format!("node {node}'s deliveries could not be read"));
            continue;
        };
        if let Some(n) = e.delivery_losses.get(node).filter(|n| **n > 0) {
            problems.push(format!(
                "node {node}'s delivery record lost {n} entries (ring or lag)"
            ));
        }
        let mut count: BTreeMap<&str, (u64, NodeId)> = BTreeMap::new();
        for x in d {
            let c = count.entry(&x.id).or_insert((0, x.origin));
            c.0 += 1;
        }
        for (id, (n, origin)) in &count {
            if *n > 1 {
                problems.push(format!(
                    "node {node} delivered {id} (from {origin}) {n} times"
                ));
            }
            if !maybe.contains(*id) {
                problems.push(format!("node {node} delivered {id}, which was never sent"));
            }
        }
        if !up.contains(node) {
            continue;
        }
        let missing: Vec<&str> = required
            .iter()
            .filter(|(_, id)| !count.contains_key(id.as_str()))
            .map(|(_, id)| id.as_str())
            .collect();
        if !missing.is_empty() {
            let first: Vec<&str> = missing.iter().take(5).copied().collect();
            problems.push(format!(
                "node {node} misses {} broadcasts, e.g. {first:?}",
                missing.len()
            ));
        }
    }
    verdict(
        6,
        "broadcasts_exactly_once",
        problems,
        format!(
            "{} acknowledged broadcasts from nodes that stayed up delivered once to each of {:?}",
            required.len(),
            up
        ),
    )
}

/// Property 7: No node exited other than by the nemesis, and every node restarted
/// by it became ready again.
pub fn no_unexpected_crash(e: &Evidence) -> Verdict {
    let mut problems = Vec::new();
    let mut awaiting_ready: BTreeMap<NodeId, bool> = BTreeMap::new();
    let mut restarts = 0;
    for r in &e.records {
        if let Record::Process {
            node,
            event,
            expected,
            detail,
            ..
        } = r
        {
            match event.as_str() {
                "exited" if !expected => {
                    problems.push(format!("node {node} exited by itself: {detail}"))
                }
                "started" => {
                    let again = awaiting_ready.insert(*node, true).is_some();
                    restarts += u32::from(again);
                }
                "ready" => {
                    awaiting_ready.insert(*node, false);
                }
                "not_ready" => problems.push(format!("node {node} did not become ready: {detail}")),
                _ => {}
            }
        }
    }
    for (node, waiting) in &awaiting_ready {
        if *waiting {
            problems.push(format!("node {node} was started and never became ready"));
        }
    }
    verdict(
        7,
        "no_unexpected_crash",
        problems,
        format!("no crash; {restarts} restarts, each ready again"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use topod::api::types::ReasonView;
    use topod::model::Topology;

    fn view(id: u64, to: Topology, status: TransitionStatus) -> TransitionView {
        TransitionView {
            id,
            from: Topology::FullMesh,
            to,
            reason: ReasonView::Manual,
            requested_by: "api@node1".into(),
            proposed_at_ms: 1000 + id,
            status,
            decided_at_ms: status.is_final().then_some(2000 + id),
            missing: vec![],
            abort_reason: None,
            epoch: (status == TransitionStatus::Committed).then_some(id),
            members: vec![],
            reports: BTreeMap::new(),
            health: BTreeMap::new(),
            request_id: None,
            trigger: None,
        }
    }

    fn evidence(h: Vec<(NodeId, Vec<TransitionView>)>) -> Evidence {
        Evidence {
            nodes: h.iter().map(|(n, _)| *n).collect(),
            histories: h.into_iter().map(|(n, v)| (n, Some(v))).collect(),
            ..Evidence::default()
        }
    }

    fn status(at_ms: u64, node: NodeId, term: u64, role: &str) -> Record {
        Record::Status {
            at_ms,
            node,
            term,
            role: role.into(),
            leader: None,
            applied: None,
        }
    }

    fn op(
        op: u64,
        kind: OpKind,
        node: NodeId,
        inv: Value,
        outcome: Outcome,
        done: Value,
    ) -> [Record; 2] {
        [
            Record::Invoke {
                op,
                at_ms: op,
                kind,
                node,
                value: inv,
            },
            Record::Complete {
                op,
                at_ms: op + 1,
                outcome,
                status: Some(202),
                value: done,
            },
        ]
    }

    #[test]
    fn histories_that_differ_at_an_index_fail_property_1() {
        let c = TransitionStatus::Committed;
        let same = evidence(vec![
            (1, vec![view(5, Topology::HyParView, c)]),
            (2, vec![view(5, Topology::HyParView, c)]),
        ]);
        assert!(histories_agree(&same).pass);
        let differ = evidence(vec![
            (1, vec![view(5, Topology::HyParView, c)]),
            (2, vec![view(5, Topology::PubSub, c)]),
        ]);
        let v = histories_agree(&differ);
        assert!(!v.pass && v.reason.contains("transition 5"), "{v:?}");
        let hole = evidence(vec![
            (1, vec![view(5, Topology::HyParView, c)]),
            (2, vec![]),
        ]);
        assert!(!histories_agree(&hole).pass);
    }

    #[test]
    fn an_acknowledged_switch_missing_or_changed_fails_property_2() {
        let c = TransitionStatus::Committed;
        let with_rid = |id, to, rid: &str| {
            let mut v = view(id, to, c);
            v.request_id = Some(rid.to_string());
            v
        };
        let mut e = evidence(vec![(1, vec![with_rid(7, Topology::HyParView, "sw-1")])]);
        e.records.extend(op(
            1,
            OpKind::Switch,
            1,
            json!({"topology": "hyparview", "request_id": "sw-1"}),
            Outcome::Ok,
            json!({"transition_id": 7}),
        ));
        assert!(acknowledged_switches_kept(&e).pass);
        e.records.extend(op(
            3,
            OpKind::Switch,
            1,
            json!({"topology": "pub_sub", "request_id": "sw-2"}),
            Outcome::Ok,
            json!({"transition_id": 9}),
        ));
        let v = acknowledged_switches_kept(&e);
        assert!(!v.pass && v.reason.contains("sw-2"), "{v:?}");
        e.histories.insert(
            1,
            Some(vec![
                with_rid(7, Topology::HyParView, "sw-1"),
                with_rid(9, Topology::FullMesh, "sw-2"),
            ]),
        );
        let v = acknowledged_switches_kept(&e);
        assert!(!v.pass && v.reason.contains("to full_mesh"), "{v:?}");
        // The right topology under another request's id is not this switch.
        e.histories.insert(
            1,
            Some(vec![
                with_rid(7, Topology::HyParView, "sw-1"),
                with_rid(9, Topology::PubSub, "sw-other"),
            ]),
        );
        let v = acknowledged_switches_kept(&e);
        assert!(!v.pass && v.reason.contains("request id"), "{v:?}");
    }

    #[test]
    fn in_flight_or_split_outcomes_fail_property_3() {
        use TransitionStatus::*;
        let ok = evidence(vec![
            (1, vec![view(3, Topology::HyParView, Aborted)]),
            (2, vec![view(3, Topology::HyParView, Aborted)]),
        ]);
        assert!(transitions_decided_alike(&ok).pass);
        let split = evidence(vec![
            (1, vec![view(3, Topology::HyParView, Committed)]),
            (2, vec![view(3, Topology::HyParView, Aborted)]),
        ]);
        assert!(!transitions_decided_alike(&split).pass);
        let open = evidence(vec![(1, vec![view(3, Topology::HyParView, InProgress)])]);
        let v = transitions_decided_alike(&open);
        assert!(!v.pass && v.reason.contains("in flight"), "{v:?}");
    }

    #[test]
    fn two_leaders_in_one_term_fail_property_4() {
        let mut e = Evidence {
            records: vec![
                status(1, 1, 2, "leader"),
                status(2, 2, 2, "follower"),
                status(3, 2, 3, "leader"),
            ],
            ..Evidence::default()
        };
        assert!(one_leader_per_term(&e).pass);
        e.records.push(status(4, 3, 3, "leader"));
        let v = one_leader_per_term(&e);
        assert!(!v.pass && v.reason.contains("term 3"), "{v:?}");
    }

    #[test]
    fn property_5_reports_t_or_the_last_problem() {
        let mut e = Evidence {
            convergence: Convergence {
                t_ms: Some(1234),
                deadline_ms: 60_000,
                last_problem: String::new(),
            },
            ..Evidence::default()
        };
        assert_eq!(
            converged_after_heal(&e).reason,
            "T = 1234 ms after the heal"
        );
        e.convergence.t_ms = None;
        e.convergence.last_problem = "node 2 on epoch 3, node 1 on 4".into();
        let v = converged_after_heal(&e);
        assert!(!v.pass && v.reason.contains("epoch 3"), "{v:?}");
    }

    fn delivery(seq: u64, origin: NodeId, id: &str) -> DeliveryView {
        DeliveryView {
            seq,
            origin,
            id: id.into(),
            at_ms: seq,
        }
    }

    #[test]
    fn missing_or_repeated_deliveries_fail_property_6_except_on_killed_nodes() {
        let mut e = Evidence {
            nodes: vec![1, 2, 3],
            ..Evidence::default()
        };
        e.records.extend(op(
            1,
            OpKind::Broadcast,
            1,
            json!({"id": "b1-0"}),
            Outcome::Ok,
            json!({}),
        ));
        e.records.extend(op(
            3,
            OpKind::Broadcast,
            3,
            json!({"id": "b3-0"}),
            Outcome::Ok,
            json!({}),
        ));
        e.records.push(Record::Process {
            at_ms: 5,
            node: 3,
            event: "killed".into(),
            expected: true,
            detail: String::new(),
        });
        let full = vec![delivery(1, 1, "b1-0")];
        e.deliveries = BTreeMap::from([
            (1, Some(full.clone())),
            (2, Some(full.clone())),
            (3, Some(vec![])),
        ]);
        let v = broadcasts_exactly_once(&e);
        assert!(
            v.pass,
            "node 3 was killed: neither its broadcast nor its deliveries count: {v:?}"
        );
        e.deliveries.insert(2, Some(vec![]));
        let v = broadcasts_exactly_once(&e);
        assert!(!v.pass && v.reason.contains("node 2 misses 1"), "{v:?}");
        e.deliveries.insert(
            2,
            Some(vec![delivery(1, 1, "b1-0"), delivery(2, 1, "b1-0")]),
        );
        let v = broadcasts_exactly_once(&e);
        assert!(!v.pass && v.reason.contains("2 times"), "{v:?}");
        e.deliveries
            .insert(2, Some(vec![delivery(1, 1, "b1-0"), delivery(2, 2, "zz")]));
        let v = broadcasts_exactly_once(&e);
        assert!(!v.pass && v.reason.contains("never sent"), "{v:?}");
    }

    fn proc(node: NodeId, event: &str, expected: bool) -> Record {
        Record::Process {
            at_ms: 0,
            node,
            event: event.into(),
            expected,
            detail: "signal: 9".into(),
        }
    }

    #[test]
    fn a_crash_or_a_restart_never_ready_fails_property_7() {
        let mut e = Evidence {
            records: vec![
                proc(1, "started", true),
                proc(1, "ready", true),
                proc(1, "killed", true),
                proc(1, "exited", true),
                proc(1, "started", true),
                proc(1, "ready", true),
            ],
            ..Evidence::default()
        };
        let v = no_unexpected_crash(&e);
        assert!(v.pass && v.reason.contains("1 restarts"), "{v:?}");
        e.records.push(proc(2, "exited", false));
        assert!(!no_unexpected_crash(&e).pass);
        e.records.pop();
        e.records.push(proc(1, "started", true));
        let v = no_unexpected_crash(&e);
        assert!(!v.pass && v.reason.contains("never became ready"), "{v:?}");
    }
}
