//! The vocabulary of the transport's API: frame classes, the events the
//! owner receives, and the errors of sending and connecting.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::model::NodeId;

/// Whether a frame may be dropped under pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FrameClass {
    /// Overlay control (joins, shuffles, IHAVE, probes). Dropped when a
    /// queue is full; the sender is told ([`SendError::QueueFull`]) and the
    /// receiving side counts it.
    Control,
    /// Application messages. Never dropped silently: a full send queue
    /// makes the sender wait ([`crate::transport::Transport::send`]) or fail
    /// with [`SendError::Backpressure`]; a full event queue stops reading
    /// the socket until the owner catches up.
    Data,
}

impl FrameClass {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FrameClass::Control => "control",
            FrameClass::Data => "data",
        }
    }
}

/// What the transport tells its owner, in order per peer: a `LinkUp`
/// precedes every frame of that link, and its `LinkDown` follows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// A frame from `from`, in the order it was sent.
    Frame {
        from: NodeId,
        class: FrameClass,
        payload: Bytes,
    },
    /// A link to `peer` completed its handshake. Never dropped.
    LinkUp { peer: NodeId },
    /// The link to `peer` is gone. Frames still queued for it stay queued
    /// if the peer is `connect`ed (they go out on the next link); otherwise
    /// they are discarded and a [`TransportEvent::SendFailed`] says how many.
    /// Never dropped.
    LinkDown {
        peer: NodeId,
        reason: LinkDownReason,
    },
    /// Frames to `peer` could not be delivered, or a dial attempt failed
    /// (the overlay treats the peer as failed). `unsent` counts queued frames
    /// that were discarded (0 for a failed dial). Dropped and counted when
    /// the event queue is full.
    SendFailed {
        peer: NodeId,
        reason: String,
        unsent: usize,
    },
    /// One ping round trip to `peer`. Dropped and counted when the event
    /// queue is full.
    Rtt { peer: NodeId, rtt: Duration },
}

/// Why a link went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkDownReason {
    /// The peer closed the connection.
    ClosedByPeer,
    /// No frame from the peer for `ping_timeout_ms`.
    PingTimeout,
    /// A socket error.
    Io(String),
    /// The peer sent a frame we cannot accept (too large, undecodable, or a
    /// handshake frame after the handshake). The link is closed.
    Protocol(String),
    /// The owner called `disconnect`.
    Disconnected,
    /// The peer opened a new link that replaced this one.
    Replaced,
    /// The transport is shutting down.
    Shutdown,
}

impl fmt::Display for LinkDownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkDownReason::ClosedByPeer => write!(f, "closed by peer"),
            LinkDownReason::PingTimeout => write!(f, "ping timeout"),
            LinkDownReason::Io(e) => write!(f, "io error: {e}"),
            LinkDownReason::Protocol(e) => write!(f, "protocol error: {e}"),
            LinkDownReason::Disconnected => write!(f, "disconnected locally"),
            LinkDownReason::Replaced => write!(f, "replaced by a newer link"),
            LinkDownReason::Shutdown => write!(f, "transport shut down"),
        }
    }
}

/// Why a frame was not queued. In every case nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The queue to `peer` is full and the frame was a control frame: it was
    /// dropped (and counted).
    #[error("send queue to node {peer} is full: control frame dropped")]
    QueueFull { peer: NodeId },
    /// The queue to `peer` is full and the frame was a data frame: it was not
    /// queued; retry later or use the waiting `send`.
    #[error("send queue to node {peer} is full: data frame not queued (backpressure)")]
    Backpressure { peer: NodeId },
    /// There is no link to `peer` and no standing `connect` for it.
    #[error("no link to node {peer}: call connect first")]
    UnknownPeer { peer: NodeId },
    /// The payload cannot fit in one frame of at most `max` bytes.
    #[error("payload of {len} bytes exceeds the frame limit ({max} bytes)")]
    TooLarge { len: usize, max: usize },
    /// `send` waited `after` for queue space to `peer` without getting it.
    #[error("no queue space to node {peer} within {after:?}")]
    Timeout { peer: NodeId, after: Duration },
    /// The transport was shut down.
    #[error("transport is shut down")]
    Closed,
}

/// Why `connect` refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// `peer` has no address in the address book.
    #[error("node {peer} is not in the address book")]
    UnknownPeer { peer: NodeId },
    /// A node does not link to itself.
    #[error("node {peer} is this node")]
    SelfPeer { peer: NodeId },
    /// The transport was shut down.
    #[error("transport is shut down")]
    Closed,
}

/// Why the transport could not start, or a runtime setting was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The config is invalid; nothing was started.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The listener could not bind; nothing was started.
    #[error("cannot bind the peer listener on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// `set_faults` was called but the config has `chaos = false`; no rule
    /// was installed.
    #[error("chaos mode is off (transport.chaos = false): fault rules are refused")]
    ChaosDisabled,
    /// The fault rules are invalid (e.g. a probability outside 0..=1); the
    /// previous rules stay.
    #[error("invalid fault rule: {0}")]
    InvalidFault(String),
}
