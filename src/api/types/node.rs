//! `GET /v1/node/stats`: this node's data plane, for the monitor and
//! `topoctl node stats`. Built from [`ExecStatus`] (the executor's state,
//! overlays, RTTs and counters), [`TransportStats`] (per-peer link
//! figures) and the node's [`NodeSummary`] over the default window (the
//! answer of `GET /v1/node/summary`). Fields are only ever added, never
//! renamed.
//!
//! Transport figures are read live. The executor's part (state, links,
//! RTTs, counters) is its last published status: republished at every
//! change of state or links and at every RTT sample, so its counters are
//! at most about one ping interval (`transport.ping_interval_ms`) old on a
//! node with peers.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::executor::{ExecCounters, ExecState, ExecStatus, OverlayStatus};
use crate::model::{NodeId, NodeSummary, Topology, TransitionId};
use crate::transport::{PeerStats, TransportStats};

/// The whole answer of `GET /v1/node/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStats {
    pub node_id: NodeId,
    /// Grows by one per start of this node's data plane.
    pub incarnation: u32,
    pub state: ExecStateView,
    /// The last overlay instance that passed verification.
    pub verified: Option<TransitionId>,
    /// The last verification failure, if any.
    pub last_failure: Option<String>,
    /// The overlay carrying traffic (`None` before the first build).
    pub current: Option<OverlayView>,
    /// The shadow (state `preparing`) or old (state `draining`) overlay.
    pub other: Option<OverlayView>,
    /// One entry per peer with a transport link, a standing connect or an
    /// RTT sample, by ascending id.
    pub peers: Vec<PeerView>,
    /// Sums over `peers`.
    pub totals: TotalsView,
    pub counters: CountersView,
    /// Transport events dropped because the executor's queue was full.
    pub dropped_events: u64,
    /// The node summary over the default window (60 s); absent from
    /// nodes older than the field (read as the empty summary).
    #[serde(default)]
    pub summary: NodeSummary,
}

/// The executor's state, with the instance ids it involves:
/// `{"name":"preparing","current":3,"shadow":7}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum ExecStateView {
    /// Nothing built yet.
    Starting,
    Steady {
        current: TransitionId,
    },
    /// A shadow overlay is being built and verified beside the current one.
    Preparing {
        current: TransitionId,
        shadow: TransitionId,
    },
    /// Cut over; the old overlay is kept for a grace period.
    Draining {
        current: TransitionId,
        old: TransitionId,
    },
}

impl ExecStateView {
    /// The state's name (`starting`, `steady`, `preparing`, `draining`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ExecStateView::Starting => "starting",
            ExecStateView::Steady { .. } => "steady",
            ExecStateView::Preparing { .. } => "preparing",
            ExecStateView::Draining { .. } => "draining",
        }
    }
}

impl From<ExecState> for ExecStateView {
    fn from(s: ExecState) -> Self {
        match s {
            ExecState::Starting => ExecStateView::Starting,
            ExecState::Steady { current } => ExecStateView::Steady { current },
            ExecState::Preparing { current, shadow } => {
                ExecStateView::Preparing { current, shadow }
            }
            ExecState::Draining { current, old } => ExecStateView::Draining { current, old },
        }
    }
}

/// One running overlay instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayView {
    /// The transition that created it (0: bootstrap).
    pub instance: TransitionId,
    pub topology: Topology,
    /// Standing overlay links of this node (pub_sub: its HyParView active
    /// view), ascending.
    pub links: Vec<NodeId>,
    /// Plumtree's eager peers (pub_sub only; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eager: Option<Vec<NodeId>>,
}

impl From<&OverlayStatus> for OverlayView {
    fn from(o: &OverlayStatus) -> Self {
        let sorted = |v: &[NodeId]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v
        };
        OverlayView {
            instance: o.instance,
            topology: o.topology,
            links: sorted(&o.links),
            eager: o.eager.as_deref().map(sorted),
        }
    }
}

/// One peer's figures. Byte and message counts include framing and
/// control traffic (pings, overlay membership), since the link came up
/// first in this process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    pub peer: NodeId,
    /// A transport link to the peer is up now.
    pub link_up: bool,
    /// The peer is an overlay link of the current overlay.
    pub overlay_link: bool,
    /// Latest ping round trip, µs.
    pub rtt_us: Option<u64>,
    /// Median of the recent round trips, µs.
    pub rtt_p50_us: Option<u64>,
    /// 99th percentile of the recent round trips, µs.
    pub rtt_p99_us: Option<u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Frames received (data, control and pings).
    pub messages_in: u64,
    /// Frames sent (data, control and pings).
    pub messages_out: u64,
    /// Frames waiting in the send queue now.
    pub send_queue_depth: u64,
    /// Links to the peer that went down.
    pub disconnects: u64,
    /// Frames to or from the peer dropped (full queue, fault filter, link
    /// gone).
    pub frames_dropped: u64,
}

/// Sums over every peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalsView {
    pub peers: u64,
    pub links_up: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub send_queue_depth: u64,
    pub disconnects: u64,
    pub frames_dropped: u64,
}

/// The executor's counters since this node started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersView {
    pub broadcasts_sent: u64,
    /// Point-to-point messages sent.
    pub direct_sent: u64,
    /// Messages handed to subscribers.
    pub delivered: u64,
    pub duplicates_dropped: u64,
    /// Frames for an overlay instance this node no longer runs.
    pub stale_frames_dropped: u64,
    pub undecodable_frames: u64,
    pub send_failures: u64,
    /// Verification probes that passed.
    pub probes_ok: u64,
    pub probes_failed: u64,
    /// Broadcasts asked for again after a gap (gap repair).
    pub repairs_requested: u64,
    /// Own broadcasts resent on request.
    pub repairs_sent: u64,
    /// Broadcasts delivered through a repair (the overlay lost them).
    pub repaired: u64,
    /// Broadcasts given up: their origin no longer kept them.
    pub unrecoverable: u64,
}

impl From<&ExecCounters> for CountersView {
    fn from(c: &ExecCounters) -> Self {
        CountersView {
            broadcasts_sent: c.broadcasts_sent,
            direct_sent: c.direct_sent,
            delivered: c.delivered,
            duplicates_dropped: c.duplicates_dropped,
            stale_frames_dropped: c.stale_frames_dropped,
            undecodable_frames: c.undecodable_frames,
            send_failures: c.send_failures,
            probes_ok: c.probes_ok,
            probes_failed: c.probes_failed,
            repairs_requested: c.repairs_requested,
            repairs_sent: c.repairs_sent,
            repaired: c.repaired,
            unrecoverable: c.unrecoverable,
        }
    }
}

fn micros(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl PeerView {
    fn new(peer: NodeId, status: &ExecStatus, t: Option<&PeerStats>) -> Self {
        let overlay_link = status
            .current
            .as_ref()
            .is_some_and(|c| c.links.contains(&peer));
        let t = t.cloned().unwrap_or_default();
        PeerView {
            peer,
            link_up: t.link_up,
            overlay_link,
            rtt_us: status.rtt_us.get(&peer).copied().or(micros(t.last_rtt)),
            rtt_p50_us: micros(t.rtt_p50),
            rtt_p99_us: micros(t.rtt_p99),
            bytes_in: t.bytes_in,
            bytes_out: t.bytes_out,
            messages_in: t.frames_in,
            messages_out: t.frames_out,
            send_queue_depth: t.queue_depth as u64,
            disconnects: t.disconnects,
            frames_dropped: t.dropped,
        }
    }
}

impl TotalsView {
    fn of(peers: &[PeerView]) -> Self {
        let mut t = TotalsView {
            peers: peers.len() as u64,
            ..TotalsView::default()
        };
        for p in peers {
            t.links_up += u64::from(p.link_up);
            t.bytes_in += p.bytes_in;
            t.bytes_out += p.bytes_out;
            t.messages_in += p.messages_in;
            t.messages_out += p.messages_out;
            t.send_queue_depth += p.send_queue_depth;
            t.disconnects += p.disconnects;
            t.frames_dropped += p.frames_dropped;
        }
        t
    }
}

impl NodeStats {
    /// The stats of one node from its executor's status, its transport's
    /// figures and its summary (taken one after the other, so they may
    /// differ by a few frames).
    pub fn new(status: &ExecStatus, transport: &TransportStats, summary: NodeSummary) -> Self {
        let ids: BTreeSet<NodeId> = transport
            .peers
            .keys()
            .chain(status.rtt_us.keys())
            .chain(status.current.iter().flat_map(|c| c.links.iter()))
            .copied()
            .filter(|p| *p != status.node)
            .collect();
        let peers: Vec<PeerView> = ids
            .into_iter()
            .map(|p| PeerView::new(p, status, transport.peers.get(&p)))
            .collect();
        NodeStats {
            node_id: status.node,
            incarnation: status.incarnation,
            state: status.state.into(),
            verified: status.verified,
            last_failure: status.last_failure.clone(),
            current: status.current.as_ref().map(OverlayView::from),
            other: status.other.as_ref().map(OverlayView::from),
            totals: TotalsView::of(&peers),
            peers,
            counters: CountersView::from(&status.counters),
            dropped_events: transport.dropped_events,
            summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use serde_json::json;

    fn status() -> ExecStatus {
        ExecStatus {
            node: 1,
            incarnation: 2,
            state: ExecState::Draining { current: 9, old: 4 },
            current: Some(OverlayStatus {
                instance: 9,
                topology: Topology::PubSub,
                links: vec![4, 2],
                eager: Some(vec![2]),
            }),
            other: None,
            verified: Some(9),
            last_failure: Some("probe to 3 timed out".into()),
            rtt_us: BTreeMap::from([(2, 800)]),
            counters: ExecCounters {
                probes_ok: 3,
                ..ExecCounters::default()
            },
        }
    }

    #[test]
    fn stats_merge_executor_and_transport_figures_per_peer() {
        let t = TransportStats {
            peers: BTreeMap::from([
                (
                    2,
                    PeerStats {
                        link_up: true,
                        bytes_in: 10,
                        bytes_out: 20,
                        frames_in: 1,
                        frames_out: 2,
                        queue_depth: 5,
                        rtt_p50: Some(Duration::from_micros(700)),
                        ..PeerStats::default()
                    },
                ),
                (
                    3,
                    PeerStats {
                        disconnects: 2,
                        dropped: 4,
                        bytes_in: 1,
                        ..PeerStats::default()
                    },
                ),
            ]),
            dropped_events: 6,
            ..TransportStats::default()
        };
        let s = NodeStats::new(&status(), &t, NodeSummary::default());
        // Peer 4 is an overlay link without transport figures yet.
        assert_eq!(
            s.peers.iter().map(|p| p.peer).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        let p2 = &s.peers[0];
        assert!(p2.link_up && p2.overlay_link);
        assert_eq!(
            (p2.rtt_us, p2.rtt_p50_us, p2.send_queue_depth),
            (Some(800), Some(700), 5)
        );
        assert!(!s.peers[1].overlay_link && s.peers[2].overlay_link);
        assert_eq!(
            s.totals,
            TotalsView {
                peers: 3,
                links_up: 1,
                bytes_in: 11,
                bytes_out: 20,
                messages_in: 1,
                messages_out: 2,
                send_queue_depth: 5,
                disconnects: 2,
                frames_dropped: 4,
            }
        );
        assert_eq!(s.current.as_ref().unwrap().links, vec![2, 4]);
        assert_eq!(s.counters.probes_ok, 3);
        assert_eq!(s.dropped_events, 6);
    }

    #[test]
    fn state_and_overlay_have_the_documented_json_shape() {
        let summary = NodeSummary {
            node: 1,
            window_ms: 60_000,
            links_up: 2,
            links_expected: 2,
            ..NodeSummary::default()
        };
        let s = NodeStats::new(&status(), &TransportStats::default(), summary);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["state"],
            json!({"name": "draining", "current": 9, "old": 4})
        );
        assert_eq!(
            v["current"],
            json!({"instance": 9, "topology": "pub_sub", "links": [2, 4], "eager": [2]})
        );
        assert_eq!(v["other"], json!(null));
        assert_eq!(v["summary"]["window_ms"], json!(60_000));
        assert_eq!(v["summary"]["links_expected"], json!(2));
        let back: NodeStats = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        let starting = serde_json::to_value(ExecStateView::Starting).unwrap();
        assert_eq!(starting, json!({"name": "starting"}));
    }
}
