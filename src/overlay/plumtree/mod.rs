//! Plumtree: epidemic broadcast trees (Leitão, Pereira, Rodrigues, SRDS
//! 2007), the `pub_sub` topology, over a HyParView membership layer.
//!
//! Every node splits its HyParView active view into **eager** peers, which
//! receive full payloads (`GOSSIP`), and **lazy** peers, which receive only
//! announcements (`IHAVE`, batched for `ihave_batch_ms`). New neighbours
//! start eager, so the first broadcast floods; the tree then shapes itself:
//! - a node receiving a payload it already has answers `PRUNE` and moves
//!   the sender to its lazy set (the receiver of the `PRUNE` does the same),
//!   so the eager links converge to a spanning tree;
//! - a node that hears `IHAVE` for a message it lacks starts the
//!   missing-message timer (`ihave_timeout_ms`); when it fires it sends
//!   `GRAFT` to the first announcer, which sends the payload and makes the
//!   link eager again; further announcers are tried every
//!   `graft_timeout_ms`. This repairs the tree after a link is lost;
//! - optimisation (section 3.8): when an `IHAVE` announces a message whose
//!   path through the announcer is shorter by at least
//!   `optimization_threshold` hops (paper: 7) than the path it came by,
//!   the lazy link is grafted (`GRAFT` without id) and the eager one
//!   pruned.
//!
//! Delivered ids and payloads stay in a FIFO cache of `message_cache`
//! entries to suppress duplicates and serve `GRAFT`s.
//!
//! Beyond the paper:
//! - a neighbour that comes up (passive promotion after a failed send) is
//!   sent the payloads delivered within the last `catch_up_window` straight
//!   away, so a broadcast in flight crosses the repaired link without
//!   waiting for an IHAVE/GRAFT round;
//! - the wait before the first GRAFT adapts to the announce-to-eager lag
//!   measured lately (between `ihave_timeout` and 8 times it, see
//!   `lag.rs`): with a different sender each round, a fixed 80 ms grafts
//!   many messages whose eager copy was merely on a longer path, and each
//!   such race costs a duplicate payload.
//!
//! Hop counts: a `GOSSIP` or `IHAVE` carries the hops the message has at
//! the receiver when taken over this link (the sender's hops + 1).

mod lag;
#[cfg(test)]
mod scale;
mod state;
#[cfg(test)]
mod tests;

use std::time::Duration;

use bytes::Bytes;

pub use state::State;

use super::hyparview::{self, MembershipMessage};
use super::{MessageClass, MessageId, ProtocolMessage};
use crate::model::PlumtreeConfig;

/// Plumtree parameters, built from [`PlumtreeConfig`] (see there for the
/// sources of the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The membership layer.
    pub hyparview: hyparview::Config,
    /// Wait for an announced payload before the first GRAFT.
    pub ihave_timeout: Duration,
    /// Wait between GRAFTs to further announcers.
    pub graft_timeout: Duration,
    /// Hop difference that swaps a lazy link for an eager one. Paper: 7.
    pub optimization_threshold: u32,
    /// Delivered ids and payloads kept (FIFO), and the most messages
    /// tracked as missing at once.
    pub message_cache: usize,
    /// IHAVEs are batched this long; zero sends each at once.
    pub ihave_batch: Duration,
    /// At most this many ids in one IHAVE message (longer batches are
    /// split, longer received ones cut). Guess: 256.
    pub max_ihave_ids: usize,
    /// Announcers remembered per missing message. Guess: 8 (more than an
    /// active view of 5 can produce).
    pub max_announcers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config::from(&PlumtreeConfig::default())
    }
}

impl From<&PlumtreeConfig> for Config {
    fn from(c: &PlumtreeConfig) -> Self {
        Config {
            hyparview: hyparview::Config::from(&c.hyparview),
            ihave_timeout: Duration::from_millis(c.ihave_timeout_ms.max(1)),
            graft_timeout: Duration::from_millis(c.graft_timeout_ms.max(1)),
            optimization_threshold: c.optimization_threshold.max(1),
            message_cache: c.message_cache.max(1) as usize,
            ihave_batch: Duration::from_millis(c.ihave_batch_ms),
            max_ihave_ids: 256,
            max_announcers: (c.hyparview.active_view as usize + 3).max(8),
        }
    }
}

/// One announced message in an IHAVE.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Announce {
    pub id: MessageId,
    /// Hops the message would have at the receiver over this link.
    pub hops: u32,
}

/// Plumtree messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Message {
    /// HyParView membership traffic.
    Membership(MembershipMessage),
    /// A payload (eager push, or the answer to a GRAFT).
    Gossip {
        id: MessageId,
        hops: u32,
        payload: Bytes,
    },
    /// Lazy push: ids the sender has delivered.
    IHave(Vec<Announce>),
    /// Make the link eager; with an id, also send that payload.
    Graft { id: Option<MessageId> },
    /// Make the link lazy.
    Prune,
}

impl From<MembershipMessage> for Message {
    fn from(m: MembershipMessage) -> Self {
        Message::Membership(m)
    }
}

impl ProtocolMessage for Message {
    fn class(&self) -> MessageClass {
        match self {
            Message::Membership(m) => m.class(),
            Message::Gossip { .. } => MessageClass::Payload,
            Message::IHave(_) | Message::Graft { .. } | Message::Prune => MessageClass::Gossip,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Message::Membership(m) => m.kind(),
            Message::Gossip { .. } => "GOSSIP",
            Message::IHave(_) => "IHAVE",
            Message::Graft { .. } => "GRAFT",
            Message::Prune => "PRUNE",
        }
    }
}

/// Plumtree timers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    Membership(hyparview::Timer),
    /// Send the batched IHAVEs.
    IHaveFlush,
    /// An announced message is still missing; `token` tells a stale timer
    /// (the message arrived, or a newer timer replaced this one).
    Missing {
        id: MessageId,
        token: u64,
    },
}

impl From<hyparview::Timer> for Timer {
    fn from(t: hyparview::Timer) -> Self {
        Timer::Membership(t)
    }
}
