//! Properties 8 and 9, about what a client or an operator is told:
//! a node cut off from the majority does not say it is ready (issue 11,
//! item 10), and a switch whose outcome a client did not learn can be
//! resolved afterwards by its request id (item 12). Pure functions over
//! the records and the lookups collected at the end, like [`crate::checker`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use topod::api::types::TransitionView;

use crate::checker::{verdict, Evidence, Verdict};
use crate::history::{OpKind, Outcome, Record};
use crate::NodeId;

/// How long a cut-off node may still say it is ready: the readiness
/// window (`raft.election_timeout_max_ms`, 300 ms by default), a status
/// sample period (200 ms), and slack for a loaded machine.
pub const NOT_READY_GRACE_MS: u64 = 1_500;

/// A sample this close to the heal may have been answered after it.
const HEAL_SLACK_MS: u64 = 300;

/// What `GET /v1/transitions?request_id=` answered for one switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Lookup {
    Found { id: u64, to: String },
    NotFound,
    Failed { error: String },
}

/// A switch the workload or the nemesis sent, with its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchOp {
    pub request_id: String,
    pub topology: String,
    pub outcome: Outcome,
    /// The id a 202 acknowledged.
    pub acked_id: Option<u64>,
}

/// Every switch operation that completed, in order.
pub fn switch_ops(records: &[Record]) -> Vec<SwitchOp> {
    let mut invokes = BTreeMap::new();
    let mut out = Vec::new();
    for r in records {
        match r {
            Record::Invoke {
                op,
                kind: OpKind::Switch,
                value,
                ..
            } => {
                invokes.insert(*op, value.clone());
            }
            Record::Complete {
                op, outcome, value, ..
            } => {
                if let Some(inv) = invokes.remove(op) {
                    out.push(SwitchOp {
                        request_id: inv["request_id"].as_str().unwrap_or("").to_string(),
                        topology: inv["topology"].as_str().unwrap_or("").to_string(),
                        outcome: *outcome,
                        acked_id: value["transition_id"].as_u64(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// One partition's cut-off nodes and when it held.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cut {
    from_ms: u64,
    to_ms: u64,
    nodes: BTreeSet<NodeId>,
}

fn cuts(records: &[Record]) -> Vec<Cut> {
    let mut out = Vec::new();
    let mut open: Option<Cut> = None;
    for r in records {
        if let Record::Nemesis {
            at_ms,
            phase,
            detail,
            ..
        } = r
        {
            match phase.as_str() {
                "cut" => {
                    let nodes = detail["cut_off"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
                        .unwrap_or_default();
                    open = Some(Cut {
                        from_ms: *at_ms,
                        to_ms: u64::MAX,
                        nodes,
                    });
                }
                "stop" => {
                    if let Some(mut c) = open.take() {
                        c.to_ms = *at_ms;
                        out.push(c);
                    }
                }
                _ => {}
            }
        }
    }
    out.extend(open);
    out
}

/// How long cut-off nodes took to stop saying they are ready, ms (one
/// figure per cut-off node per partition that saw a not-ready sample).
pub fn time_to_not_ready(records: &[Record]) -> Vec<u64> {
    let mut out = Vec::new();
    for c in cuts(records) {
        for node in &c.nodes {
            let first = records.iter().find_map(|r| match r {
                Record::Ready {
                    at_ms,
                    node: n,
                    ready: false,
                } if n == node && *at_ms >= c.from_ms && *at_ms <= c.to_ms => Some(*at_ms),
                _ => None,
            });
            if let Some(t) = first {
                out.push(t - c.from_ms);
            }
        }
    }
    out
}

/// Property 8: a node a partition leaves without a majority of voters in
/// sight answers `/readyz` with 503 within [`NOT_READY_GRACE_MS`] and
/// until the heal.
pub fn cut_off_nodes_not_ready(e: &Evidence) -> Verdict {
    let cuts = cuts(&e.records);
    let mut problems = Vec::new();
    let mut checked = 0;
    for c in &cuts {
        let lo = c.from_ms + NOT_READY_GRACE_MS;
        let hi = c.to_ms.saturating_sub(HEAL_SLACK_MS);
        for r in &e.records {
            if let Record::Ready { at_ms, node, ready } = r {
                if c.nodes.contains(node) && *at_ms >= lo && *at_ms <= hi {
                    checked += 1;
                    if *ready {
                        problems.push(format!(
                            "node {node} answered /readyz 200 at {at_ms} ms, {} ms into a \
                             partition that left it without a majority",
                            at_ms - c.from_ms
                        ));
                    }
                }
            }
        }
    }
    verdict(
        8,
        "cut_off_nodes_not_ready",
        problems,
        format!(
            "{checked} samples of cut-off nodes in {} partitions all 503",
            cuts.len()
        ),
    )
}

/// Property 9: every switch can be looked up by its request id after the
/// run: an acknowledged one is found at its id; one whose outcome was
/// unknown is found (then it is in every history at that id, to the
/// topology asked for) or certainly absent.
pub fn outcomes_resolvable(e: &Evidence) -> Verdict {
    let mut problems = Vec::new();
    let ops = switch_ops(&e.records);
    let histories: BTreeMap<NodeId, BTreeMap<u64, &TransitionView>> = e
        .histories
        .iter()
        .filter_map(|(n, h)| {
            h.as_ref()
                .map(|h| (*n, h.iter().map(|v| (v.id, v)).collect()))
        })
        .collect();
    let (mut landed, mut absent) = (0, 0);
    for op in ops.iter().filter(|o| o.outcome != Outcome::Fail) {
        let rid = &op.request_id;
        match (e.lookups.get(rid), op.outcome) {
            (None, _) => problems.push(format!("switch {rid} was not looked up")),
            (Some(Lookup::Failed { error }), _) => {
                problems.push(format!("switch {rid}: lookup failed: {error}"))
            }
            (Some(Lookup::NotFound), Outcome::Ok) => problems.push(format!(
                "switch {rid} acknowledged as {:?} is not found by its request id",
                op.acked_id
            )),
            (Some(Lookup::Found { id, .. }), Outcome::Ok) if Some(*id) != op.acked_id => problems
                .push(format!(
                    "switch {rid} acknowledged as {:?} is found as {id}",
                    op.acked_id
                )),
            (Some(Lookup::NotFound), _) => absent += 1,
            (Some(Lookup::Found { id, to }), outcome) => {
                if outcome == Outcome::Unknown {
                    landed += 1;
                }
                if *to != op.topology {
                    problems.push(format!(
                        "switch {rid} to {} is found as {id} to {to}",
                        op.topology
                    ));
                }
                for (node, h) in &histories {
                    match h.get(id) {
                        Some(v) if v.request_id.as_deref() == Some(rid.as_str()) => {}
                        Some(v) => problems.push(format!(
                            "switch {rid} found as {id}, node {node}'s {id} has request id {:?}",
                            v.request_id
                        )),
                        None => problems.push(format!(
                            "switch {rid} found as {id}, not in node {node}'s history"
                        )),
                    }
                }
            }
        }
    }
    let unknown = ops.iter().filter(|o| o.outcome == Outcome::Unknown).count();
    verdict(
        9,
        "outcomes_resolvable",
        problems,
        format!(
            "{} acknowledged found at their ids; {unknown} unknown resolved: {landed} landed, \
             {absent} did not",
            ops.iter().filter(|o| o.outcome == Outcome::Ok).count()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use topod::api::types::{ReasonView, TransitionStatus};
    use topod::model::Topology;

    fn ready(at_ms: u64, node: NodeId, ready: bool) -> Record {
        Record::Ready { at_ms, node, ready }
    }

    fn nem(at_ms: u64, phase: &str, cut: &[NodeId]) -> Record {
        Record::Nemesis {
            at_ms,
            phase: phase.into(),
            fault: "split".into(),
            detail: json!({ "cut_off": cut }),
        }
    }

    #[test]
    fn a_cut_off_node_saying_ready_past_the_grace_fails() {
        let mut e = Evidence {
            records: vec![
                nem(1_000, "cut", &[4, 5]),
                ready(1_200, 4, true),
                ready(1_900, 4, false),
                ready(3_000, 5, false),
                ready(3_000, 1, true),
                nem(6_000, "stop", &[]),
                ready(6_500, 4, true),
            ],
            ..Default::default()
        };
        let v = cut_off_nodes_not_ready(&e);
        assert!(v.pass, "{}", v.reason);
        assert_eq!(time_to_not_ready(&e.records), vec![900, 2_000]);
        e.records.insert(4, ready(4_000, 5, true));
        let v = cut_off_nodes_not_ready(&e);
        assert!(!v.pass);
        assert!(
            v.reason.contains("node 5 answered /readyz 200 at 4000 ms"),
            "{}",
            v.reason
        );
    }

    fn switch(op: u64, rid: &str, outcome: Outcome, id: Option<u64>) -> Vec<Record> {
        vec![
            Record::Invoke {
                op,
                at_ms: op,
                kind: OpKind::Switch,
                node: 1,
                value: json!({"request_id": rid, "topology": "hyparview"}),
            },
            Record::Complete {
                op,
                at_ms: op + 1,
                outcome,
                status: None,
                value: id.map_or(json!({}), |id| json!({ "transition_id": id })),
            },
        ]
    }

    #[test]
    fn unknown_outcomes_must_be_resolved_and_agree_with_the_histories() {
        let mut e = Evidence {
            records: [
                switch(1, "a", Outcome::Ok, Some(3)),
                switch(2, "b", Outcome::Unknown, None),
                switch(3, "c", Outcome::Unknown, None),
                switch(4, "d", Outcome::Fail, None),
            ]
            .concat(),
            ..Default::default()
        };
        let found = |id| Lookup::Found {
            id,
            to: "hyparview".into(),
        };
        e.lookups.insert("a".into(), found(3));
        e.lookups.insert("b".into(), Lookup::NotFound);
        e.lookups.insert("c".into(), found(4));
        let view = |id: u64, rid: &str| TransitionView {
            id,
            from: Topology::FullMesh,
            to: Topology::HyParView,
            reason: ReasonView::Manual,
            requested_by: "api@node1".into(),
            proposed_at_ms: 0,
            status: TransitionStatus::Committed,
            decided_at_ms: Some(1),
            missing: vec![],
            abort_reason: None,
            epoch: Some(id),
            members: vec![],
            reports: BTreeMap::new(),
            health: BTreeMap::new(),
            request_id: Some(rid.into()),
            trigger: None,
        };
        e.histories
            .insert(1, Some(vec![view(3, "a"), view(4, "c")]));
        let v = outcomes_resolvable(&e);
        assert!(v.pass, "{}", v.reason);
        assert!(
            v.reason.contains("2 unknown resolved: 1 landed, 1 did not"),
            "{}",
            v.reason
        );
        e.lookups
            .insert("b".into(), Lookup::Failed { error: "x".into() });
        e.lookups.insert("a".into(), Lookup::NotFound);
        let v = outcomes_resolvable(&e);
        assert!(!v.pass);
        assert!(
            v.reason
                .contains("switch a acknowledged as Some(3) is not found"),
            "{}",
            v.reason
        );
        assert!(v.reason.contains("switch b: lookup failed"), "{}", v.reason);
    }
}
