//! The data plane's per-node and per-overlay metrics, rendered in the
//! Prometheus text format when `/metrics` is scraped and appended to the
//! recorder's output.
//!
//! They are read from [`ExecutorHandle::status`] and
//! [`ExecutorHandle::transport_stats`] at scrape time instead of being
//! recorded on every frame: the transport already keeps these counters,
//! so the hot path pays nothing more. Rendering here (rather than setting
//! recorder gauges) also keeps each node's figures apart when several
//! nodes share one process, as the tests do.
//!
//! No series carries a `peer` label: the number of series must not grow
//! with the cluster (a `client_server` server has a link per client).
//! Per-peer detail is in `GET /v1/node/stats`; the figures here are this
//! node's totals over its peers.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `topod_node_links_up` | gauge: transport links up now | |
//! | `topod_node_peers` | gauge: peers with a link or a standing connect | |
//! | `topod_node_bytes_total` | counter | `direction` (in, out) |
//! | `topod_node_messages_total` | counter: frames | `direction` |
//! | `topod_node_send_queue_depth` | gauge: frames queued, all peers | |
//! | `topod_node_send_queue_depth_max` | gauge: the deepest peer queue | |
//! | `topod_node_disconnects_total` | counter | |
//! | `topod_node_dropped_frames_total` | counter | |
//! | `topod_overlay_links` | gauge | `role` (current, other), `instance`, `topology` |
//! | `topod_overlay_eager_peers` | gauge (pub_sub) | `role`, `instance`, `topology` |
//! | `topod_executor_state` | gauge: 1 for the state the executor is in | `state` |
//! | `topod_executor_messages_total` | counter | `kind` (broadcast_sent, direct_sent, delivered, duplicate_dropped, send_failed, undecodable, repair_requested, repair_sent, repaired, unrecoverable) |
//!
//! Recorded by the executor through the recorder instead (not repeated
//! here): `topod_overlay_rtt_seconds` (histogram of every ping, no
//! labels), `topod_executor_probes_total{result}`,
//! `topod_executor_disconnects_total`, `topod_executor_stale_frames_total`;
//! and the transport's process-wide `topod_transport_*` series.
//!
//! [`ExecutorHandle::status`]: crate::executor::ExecutorHandle::status
//! [`ExecutorHandle::transport_stats`]: crate::executor::ExecutorHandle::transport_stats

use std::fmt::Write;

use crate::executor::{ExecState, ExecStatus, OverlayStatus};
use crate::transport::{NodeTotals, TransportStats};

/// Every series name [`render`] can produce (for tests and for checking
/// that the recorder does not export the same name).
pub const NAMES: [&str; 12] = [
    "topod_node_links_up",
    "topod_node_peers",
    "topod_node_bytes_total",
    "topod_node_messages_total",
    "topod_node_send_queue_depth",
    "topod_node_send_queue_depth_max",
    "topod_node_disconnects_total",
    "topod_node_dropped_frames_total",
    "topod_overlay_links",
    "topod_overlay_eager_peers",
    "topod_executor_state",
    "topod_executor_messages_total",
];

/// One metric family: `# HELP`, `# TYPE`, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        // Writing to a String cannot fail.
        let _infallible = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        Family { out }
    }

    /// One sample. Label values here are node ids, instance ids and fixed
    /// snake_case words, so they need no escaping.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _infallible = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _infallible = writeln!(self.out, " {value}");
        self
    }
}

/// The data-plane metrics of one node, in the Prometheus text format.
pub fn render(status: &ExecStatus, transport: &TransportStats) -> String {
    let mut out = String::new();
    node(&mut out, &transport.totals);
    overlays(&mut out, status);
    executor(&mut out, status);
    out
}

fn node(out: &mut String, t: &NodeTotals) {
    type Get = fn(&NodeTotals) -> u64;
    let one: [(&str, &str, &str, Get); 6] = [
        (
            "topod_node_links_up",
            "gauge",
            "Transport links up now",
            |t| u64::from(t.links_up),
        ),
        (
            "topod_node_peers",
            "gauge",
            "Peers with a transport link or a standing connect now",
            |t| u64::from(t.peers),
        ),
        (
            "topod_node_send_queue_depth",
            "gauge",
            "Frames waiting in the send queues of all peers",
            |t| t.queue_depth,
        ),
        (
            "topod_node_send_queue_depth_max",
            "gauge",
            "Frames waiting in the deepest send queue",
            |t| t.max_queue_depth,
        ),
        (
            "topod_node_disconnects_total",
            "counter",
            "Transport links that went down",
            |t| t.disconnects,
        ),
        (
            "topod_node_dropped_frames_total",
            "counter",
            "Frames to or from peers dropped (full queue, fault filter, link gone)",
            |t| t.dropped,
        ),
    ];
    for (name, kind, help, get) in one {
        Family::new(out, name, kind, help).sample(name, &[], get(t) as f64);
    }
    let both: [(&str, &str, Get, Get); 2] = [
        (
            "topod_node_bytes_total",
            "Bytes exchanged with peers, framing included",
            |t| t.bytes_in,
            |t| t.bytes_out,
        ),
        (
            "topod_node_messages_total",
            "Frames exchanged with peers (data, control, pings)",
            |t| t.frames_in,
            |t| t.frames_out,
        ),
    ];
    for (name, help, get_in, get_out) in both {
        Family::new(out, name, "counter", help)
            .sample(name, &[("direction", "in")], get_in(t) as f64)
            .sample(name, &[("direction", "out")], get_out(t) as f64);
    }
}

fn overlays(out: &mut String, status: &ExecStatus) {
    let running: Vec<(&str, &OverlayStatus)> = [
        ("current", status.current.as_ref()),
        ("other", status.other.as_ref()),
    ]
    .into_iter()
    .filter_map(|(role, o)| o.map(|o| (role, o)))
    .collect();
    for (name, help, count) in [
        (
            "topod_overlay_links",
            "This node's links in each running overlay (current, and the shadow or old one)",
            (|o: &OverlayStatus| Some(o.links.len())) as fn(&OverlayStatus) -> Option<usize>,
        ),
        (
            "topod_overlay_eager_peers",
            "Plumtree eager peers in each running pub_sub overlay",
            |o| o.eager.as_ref().map(Vec::len),
        ),
    ] {
        let mut fam = Family::new(out, name, "gauge", help);
        for (role, o) in &running {
            if let Some(n) = count(o) {
                let instance = o.instance.to_string();
                let labels = [
                    ("role", *role),
                    ("instance", instance.as_str()),
                    ("topology", o.topology.as_str()),
                ];
                fam.sample(name, &labels, n as f64);
            }
        }
    }
}

fn executor(out: &mut String, status: &ExecStatus) {
    let now = match status.state {
        ExecState::Starting => "starting",
        ExecState::Steady { .. } => "steady",
        ExecState::Preparing { .. } => "preparing",
        ExecState::Draining { .. } => "draining",
    };
    let name = "topod_executor_state";
    let mut fam = Family::new(out, name, "gauge", "1 for the executor's current state");
    for s in ["starting", "steady", "preparing", "draining"] {
        fam.sample(name, &[("state", s)], f64::from(u8::from(s == now)));
    }
    let c = &status.counters;
    let name = "topod_executor_messages_total";
    let mut fam = Family::new(
        out,
        name,
        "counter",
        "Channel messages by what happened to them",
    );
    for (kind, v) in [
        ("broadcast_sent", c.broadcasts_sent),
        ("direct_sent", c.direct_sent),
        ("delivered", c.delivered),
        ("duplicate_dropped", c.duplicates_dropped),
        ("send_failed", c.send_failures),
        ("undecodable", c.undecodable_frames),
        ("repair_requested", c.repairs_requested),
        ("repair_sent", c.repairs_sent),
        ("repaired", c.repaired),
        ("unrecoverable", c.unrecoverable),
    ] {
        fam.sample(name, &[("kind", kind)], v as f64);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::executor::ExecCounters;
    use crate::model::Topology;
    use crate::transport::PeerStats;

    fn status() -> ExecStatus {
        ExecStatus {
            node: 1,
            incarnation: 3,
            state: ExecState::Preparing {
                current: 4,
                shadow: 9,
            },
            current: Some(OverlayStatus {
                instance: 4,
                topology: Topology::FullMesh,
                links: vec![2, 3],
                eager: None,
            }),
            other: Some(OverlayStatus {
                instance: 9,
                topology: Topology::PubSub,
                links: vec![3],
                eager: Some(vec![3]),
            }),
            verified: Some(4),
            last_failure: None,
            rtt_us: BTreeMap::from([(2, 1500)]),
            counters: ExecCounters {
                broadcasts_sent: 5,
                delivered: 7,
                ..ExecCounters::default()
            },
        }
    }

    fn transport() -> TransportStats {
        let peer = PeerStats {
            link_up: true,
            bytes_in: 100,
            queue_depth: 2,
            last_rtt: Some(Duration::from_micros(1500)),
            ..PeerStats::default()
        };
        TransportStats {
            peers: BTreeMap::from([(2, peer), (3, PeerStats::default())]),
            dropped_events: 0,
            totals: NodeTotals {
                bytes_in: 100,
                bytes_out: 200,
                frames_in: 3,
                frames_out: 4,
                dropped: 1,
                disconnects: 1,
                links_up: 1,
                peers: 2,
                queue_depth: 5,
                max_queue_depth: 2,
            },
        }
    }

    #[test]
    fn renders_every_family_with_exact_samples() {
        let text = render(&status(), &transport());
        for name in NAMES {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}\n{text}");
        }
        for line in [
            "topod_node_links_up 1",
            "topod_node_peers 2",
            "topod_node_bytes_total{direction=\"in\"} 100",
            "topod_node_bytes_total{direction=\"out\"} 200",
            "topod_node_messages_total{direction=\"out\"} 4",
            "topod_node_send_queue_depth 5",
            "topod_node_send_queue_depth_max 2",
            "topod_node_disconnects_total 1",
            "topod_node_dropped_frames_total 1",
            "topod_overlay_links{role=\"current\",instance=\"4\",topology=\"full_mesh\"} 2",
            "topod_overlay_links{role=\"other\",instance=\"9\",topology=\"pub_sub\"} 1",
            "topod_overlay_eager_peers{role=\"other\",instance=\"9\",topology=\"pub_sub\"} 1",
            "topod_executor_state{state=\"preparing\"} 1",
            "topod_executor_state{state=\"steady\"} 0",
            "topod_executor_messages_total{kind=\"broadcast_sent\"} 5",
            "topod_executor_messages_total{kind=\"delivered\"} 7",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        assert!(
            !text.contains("topod_overlay_eager_peers{role=\"current\""),
            "full_mesh has no eager peers"
        );
    }

    #[test]
    fn no_series_carries_a_peer_label() {
        let text = render(&status(), &transport());
        assert!(!text.contains("peer=\""), "{text}");
    }

    #[test]
    fn every_family_is_declared_once() {
        let text = render(&status(), &transport());
        for name in NAMES {
            let n = text
                .lines()
                .filter(|l| l.starts_with(&format!("# HELP {name} ")))
                .count();
            assert_eq!(n, 1, "{name}");
        }
    }
}
