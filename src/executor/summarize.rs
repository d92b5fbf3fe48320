//! The actor's side of the node summary: once a second (a timer of its own) it
//! closes a slot of the sliding window (`super::summary::Recorder`) with
//! the node's cumulative figures, and it answers `Cmd::Summary` with a
//! [`NodeSummary`] of the window asked for. Nothing here runs per message:
//! the transport and the counters are read at most once a second and per
//! request; RTTs and hop counts are recorded where they arrive.

use std::sync::Arc;
use std::time::Duration;

use super::actor::Actor;
use super::cpu::process_cpu_time;
use super::expected::links_expected;
use super::handle::SendShared;
use super::status::ExecCounters;
use super::summary::Totals;
use crate::model::metrics::MAX_SUMMARY_LINKS;
use crate::model::NodeSummary;
use crate::overlay::Protocol;
use crate::transport::{NodeTotals, Transport};

/// The node's cumulative figures now, and the transport's gauges.
pub(crate) fn read(
    transport: &Transport,
    shared: &Arc<SendShared>,
    task: &ExecCounters,
) -> (Totals, NodeTotals) {
    let t = transport.totals();
    let c = shared.counters(task);
    let totals = Totals {
        bytes_in: t.bytes_in,
        bytes_out: t.bytes_out,
        messages_in: t.frames_in,
        messages_out: t.frames_out,
        disconnects: t.disconnects,
        app_broadcasts: c.broadcasts_sent,
        app_direct: c.direct_sent,
        cpu: process_cpu_time(),
    };
    (totals, t)
}

/// [`read`]'s cumulative figures alone.
pub(crate) fn totals(
    transport: &Transport,
    shared: &Arc<SendShared>,
    task: &ExecCounters,
) -> Totals {
    read(transport, shared, task).0
}

impl Actor {
    /// Closes the summary's open slot when it is a second old.
    pub fn summary_tick(&mut self) {
        let now = self.now();
        if !self.summary.due(now) {
            return;
        }
        let (totals, t) = read(self.transport(), self.shared(), &self.task_counters());
        self.summary.close(now, totals, t.max_queue_depth);
    }

    /// This node's summary of the last `window`.
    pub fn node_summary(&self, window: Duration) -> NodeSummary {
        let (totals, t) = read(self.transport(), self.shared(), &self.task_counters());
        let core = self.core();
        let f = self
            .summary
            .window(self.now(), window, totals, t.max_queue_depth);
        let mut s = NodeSummary {
            node: self.me(),
            window_ms: u64::try_from(f.covered.as_millis()).unwrap_or(u64::MAX),
            rtt_ms: f.rtt_ms,
            disconnects: f.disconnects,
            bytes_per_s: f.bytes_per_s,
            messages_per_s: f.messages_per_s,
            max_queue_depth: f.max_queue_depth,
            app_broadcasts: f.app_broadcasts,
            app_direct: f.app_direct,
            hops: f.hops,
            cpu_share: f.cpu_share,
            link_count: t.links_up,
            ..NodeSummary::default()
        };
        if let Some(cur) = core.slots().current() {
            let links = cur.overlay.links();
            let clients = links.iter().filter(|p| !cur.servers.contains(p)).count();
            s.topology = Some(cur.topology);
            s.instance = cur.id;
            s.links_up = count(links.iter().filter(|p| core.up().contains(p)).count());
            s.links_expected = links_expected(
                &cur.config,
                self.me(),
                core.members(),
                &cur.servers,
                clients,
            );
            s.links_truncated = links.len() > MAX_SUMMARY_LINKS;
            s.links = links;
            s.links.sort_unstable();
            s.links.truncate(MAX_SUMMARY_LINKS);
        }
        s
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
