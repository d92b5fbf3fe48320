//! What the harness reads once the run is over, besides the histories and
//! deliveries: every switch looked up by its request id (property 9), the
//! warnings and errors each node logged (issue 11 item 11: a cut-off peer
//! is logged once per change, not per heartbeat), and the figures the
//! report carries about readiness and automatic switches.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use topod::api::types::{ReasonView, TransitionView};

use crate::checker::Evidence;
use crate::history::Outcome;
use crate::serving::{self, Lookup};
use crate::workload::Shared;
use crate::NodeId;

/// Looks every switch that was not refused up by its request id, on the
/// nodes in turn.
pub async fn lookups(sh: &Shared, nodes: &[NodeId], e: &mut Evidence) {
    let ops = serving::switch_ops(&e.records);
    for (i, op) in ops
        .iter()
        .filter(|o| o.outcome != Outcome::Fail)
        .enumerate()
    {
        let node = nodes[i % nodes.len()];
        let path = format!("/v1/transitions?request_id={}", op.request_id);
        let answer = sh
            .api
            .get(sh.cluster.api_addr(node), &path, Duration::from_secs(5))
            .await;
        let lookup = match answer {
            Ok(a) if a.status == 200 => match serde_json::from_value::<TransitionView>(a.body) {
                Ok(v) => Lookup::Found {
                    id: v.id,
                    to: v.to.as_str().to_string(),
                },
                Err(err) => Lookup::Failed {
                    error: format!("node {node}: undecodable answer: {err}"),
                },
            },
            Ok(a) if a.status == 404 => Lookup::NotFound,
            Ok(a) => Lookup::Failed {
                error: format!("node {node}: HTTP {}: {}", a.status, a.body),
            },
            Err(err) => Lookup::Failed {
                error: format!("node {node}: {err}"),
            },
        };
        e.lookups.insert(op.request_id.clone(), lookup);
    }
}

/// Lines at WARN and ERROR in one node's log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogCounts {
    pub warn: u64,
    pub error: u64,
}

/// Counts the WARN and ERROR lines of a plain-text (NO_COLOR) tracing log.
pub fn count_levels(text: &str) -> LogCounts {
    let mut c = LogCounts::default();
    for line in text.lines() {
        // `2026-12-02T19:00:00.000000Z  WARN topod::…: …`: the level is
        // the second field.
        match line.split_whitespace().nth(1) {
            Some("WARN") => c.warn += 1,
            Some("ERROR") => c.error += 1,
            _ => {}
        }
    }
    c
}

/// Each node's log counts, read from `out/node{N}.log`.
pub fn log_counts(out: &Path, nodes: &[NodeId]) -> BTreeMap<NodeId, LogCounts> {
    nodes
        .iter()
        .map(|&n| {
            let text =
                std::fs::read_to_string(out.join(format!("node{n}.log"))).unwrap_or_default();
            (n, count_levels(&text))
        })
        .collect()
}

/// Figures of a run beyond the verdicts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Extras {
    /// Transitions in the history the monitor proposed (`reason.kind = auto`).
    pub automatic_switches: u64,
    /// Per cut-off node and partition: ms until its first 503 from `/readyz`.
    pub time_to_not_ready_ms: Vec<u64>,
    /// Switches whose outcome was unknown to the client, and how many of
    /// them the lookup found in the history.
    pub unknown_switches: u64,
    pub unknown_landed: u64,
    pub log_lines: BTreeMap<NodeId, LogCounts>,
}

/// The extras from the evidence and the logs.
pub fn extras(e: &Evidence, out: &Path) -> Extras {
    let automatic_switches = e.histories.values().flatten().next().map_or(0, |h| {
        h.iter()
            .filter(|v| matches!(v.reason, ReasonView::Auto { .. }))
            .count() as u64
    });
    let ops = serving::switch_ops(&e.records);
    let unknown: Vec<_> = ops
        .iter()
        .filter(|o| o.outcome == Outcome::Unknown)
        .collect();
    let unknown_landed = unknown
        .iter()
        .filter(|o| matches!(e.lookups.get(&o.request_id), Some(Lookup::Found { .. })))
        .count() as u64;
    Extras {
        automatic_switches,
        time_to_not_ready_ms: serving::time_to_not_ready(&e.records),
        unknown_switches: unknown.len() as u64,
        unknown_landed,
        log_lines: log_counts(out, &e.nodes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_read_from_the_second_field() {
        let log = "2026-12-02T19:00:00.1Z  WARN topod::control: Raft peer stopped answering\n\
                   2026-12-02T19:00:00.2Z ERROR topod::node: boom\n\
                   2026-12-02T19:00:00.3Z  INFO topod::node: WARN in the message\n\
                   not a log line\n";
        assert_eq!(count_levels(log), LogCounts { warn: 1, error: 1 });
    }
}
