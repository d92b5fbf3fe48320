//! The data plane's transport: reliable, ordered frames between nodes,
//! addressed by node id, over TCP or in memory.
//!
//! # Using it
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use topod::transport::{FrameClass, Transport, TransportConfig, TransportEvent};
//! let (t, mut events) =
//!     Transport::bind_tcp("127.0.0.1:0".parse()?, TransportConfig::default(), 1, "c1").await?;
//! t.set_address_book([(2, "127.0.0.1:7302".parse()?)].into());
//! t.connect(2)?; // standing link, redialed with backoff
//! t.try_send(2, FrameClass::Control, bytes::Bytes::from_static(b"join"))?;
//! t.send(2, bytes::Bytes::from_static(b"app message")).await?; // waits for queue space
//! while let Some(ev) = events.recv().await {
//!     match ev {
//!         TransportEvent::Frame { from, class, payload } => { /* decode, route */ }
//!         TransportEvent::LinkUp { peer } | TransportEvent::LinkDown { peer, .. } => {}
//!         TransportEvent::SendFailed { peer, .. } => { /* neighbour failed */ }
//!         TransportEvent::Rtt { peer, rtt } => {}
//!     }
//! }
//! t.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! [`Transport`] is one concrete, cloneable handle; the TCP and in-memory
//! backends differ only in where byte streams come from (`backend`), so
//! the executor is not generic, nothing is boxed per call, and `send` is a
//! plain `async fn`. The in-memory backend runs the same handshake, codec,
//! queues, pings and fault filter, so encoding bugs show in its tests.
//!
//! Every queue is bounded: the per-peer send queue (`queue_len`), the
//! owner's event queue (`event_queue_len`), and the small internal ones.
//!
//! # Layout
//!
//! - `types` — [`FrameClass`], [`TransportEvent`], [`LinkDownReason`] and
//!   the errors.
//! - `config` — [`TransportConfig`]: limits, timings, defaults, `validate`.
//! - `codec` — the wire format: length prefix, [`WireFrame`], frame reader.
//! - `handle` — [`Transport`]: the public handle, shared state, accept loop.
//! - `handshake` — `Hello` exchange and checks, `Ready`/`Duplicate`.
//! - `peer` — one task per peer: dialing, backoff, one link per pair.
//! - `link` — one live link: reader, writer, ping/pong.
//! - `stats` — per-peer counters and RTT windows; metrics.
//! - `fault` — the chaos-mode fault filter ([`FaultRules`]).
//! - `backend`, `memory` — TCP sockets or in-memory pipes
//!   ([`MemoryNetwork`]).
//!
//! # Metrics
//!
//! `topod_transport_bytes_total{direction}`,
//! `topod_transport_frames_total{direction}`,
//! `topod_transport_dropped_frames_total{reason}`, `topod_transport_links`,
//! `topod_transport_disconnects_total`, `topod_transport_rtt_seconds`.
//! Per-peer detail is in [`Transport::stats`], never in these labels; the
//! admin API renders this node's totals ([`NodeTotals`]) as
//! `topod_node_*` series at scrape time (`crate::api::exposition`), with
//! no `peer` label either.
//! [`describe_metrics`] registers their help texts.
//!
//! # Guarantees and limits
//!
//! Frames are reliable and ordered *per link*: what the peer's owner sees
//! is a prefix of what was sent on that link, in order. Frames queued for a
//! `connect`ed peer survive a reconnect; frames already taken by the writer
//! or in the socket when a link breaks may be lost (the overlay's message
//! ids and retransmits cover that). Data frames are never dropped by a full
//! queue; control frames are, and counted.

mod backend;
pub mod codec;
mod config;
mod fault;
mod handle;
pub(crate) mod handshake;
mod link;
mod memory;
mod peer;
mod stats;
mod types;

#[cfg(test)]
mod tests;

pub use codec::{CodecError, WireFrame, PROTOCOL_VERSION};
pub use config::TransportConfig;
pub use fault::{Direction, FaultRule, FaultRules};
pub use handle::{FrameSink, Transport};
pub use memory::MemoryNetwork;
pub use peer::Head;
pub use stats::{describe_metrics, NodeTotals, PeerStats, TransportStats, RTT_WINDOW};
pub use types::{
    ConnectError, FrameClass, LinkDownReason, SendError, TransportError, TransportEvent,
};
