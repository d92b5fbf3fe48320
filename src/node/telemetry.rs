//! Process-wide Prometheus recorder and the task that turns Raft and
//! applied-state changes into `topod_*` metrics.
//!
//! Names follow Prometheus conventions: `topod_` prefix, base units,
//! counters ending in `_total`. No label recorded here grows with the
//! cluster size; the data plane's per-peer series (`peer` label) are
//! rendered by `crate::api::exposition` when `/metrics` is scraped.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use openraft::ServerState;
use tokio_util::sync::CancellationToken;

use crate::control::applied::AppliedRx;
use crate::control::types::Raft;
use crate::model::{Outcome, Topology, TransitionId};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets, seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The process's Prometheus handle, installing the recorder on first use.
/// In-process test clusters share it (the recorder is global).
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("bucket list is not empty");
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed (a test harness): render
                // from a recorder of our own that nothing writes to.
                Err(e) => {
                    tracing::warn!(error = %e, "a metrics recorder is already installed");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}

/// Keeps the Raft and topology gauges current until `cancel` fires.
pub async fn run(raft: Raft, mut applied: AppliedRx, cancel: CancellationToken) {
    metrics::gauge!("topod_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let mut raft_rx = raft.metrics();
    let mut last_leader = None;
    let mut counted = highest_final(&applied.borrow().state.history);
    let mut upkeep = tokio::time::interval(Duration::from_secs(30));
    loop {
        {
            let m = raft_rx.borrow_and_update();
            metrics::gauge!("topod_has_leader").set(if m.current_leader.is_some() {
                1.0
            } else {
                0.0
            });
            metrics::gauge!("topod_term").set(m.current_term as f64);
            metrics::gauge!("topod_is_leader").set(if m.state == ServerState::Leader {
                1.0
            } else {
                0.0
            });
            metrics::gauge!("topod_last_log_index").set(m.last_log_index.unwrap_or(0) as f64);
            if m.current_leader != last_leader {
                if m.current_leader.is_some() {
                    metrics::counter!("topod_leader_changes_total").increment(1);
                }
                last_leader = m.current_leader;
            }
        }
        {
            let a = applied.borrow_and_update();
            metrics::gauge!("topod_applied_index").set(a.applied_index() as f64);
            metrics::gauge!("topod_topology_epoch").set(a.state.epoch as f64);
            for t in Topology::ALL {
                let v = if t == a.state.topology { 1.0 } else { 0.0 };
                metrics::gauge!("topod_current_topology", "topology" => t.as_str()).set(v);
            }
            metrics::gauge!("topod_transition_in_flight").set(if a.state.in_flight.is_some() {
                1.0
            } else {
                0.0
            });
            let since = counted;
            for r in a.state.history.iter().filter(|r| r.id > since) {
                let outcome = match r.outcome {
                    Outcome::InProgress => continue,
                    Outcome::Committed { .. } => "committed",
                    Outcome::Aborted { .. } => "aborted",
                };
                metrics::counter!("topod_switches_total", "outcome" => outcome, "reason" => r.reason.label())
                    .increment(1);
                counted = r.id;
            }
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            r = raft_rx.changed() => if r.is_err() { return },
            r = applied.changed() => if r.is_err() { return },
            _ = upkeep.tick() => {}
        }
    }
}

/// The highest transition id already decided (not counted again after a
/// restart).
fn highest_final(
    history: &std::collections::VecDeque<crate::model::HistoryRecord>,
) -> TransitionId {
    history
        .iter()
        .filter(|r| r.outcome != Outcome::InProgress)
        .map(|r| r.id)
        .max()
        .unwrap_or(0)
}
