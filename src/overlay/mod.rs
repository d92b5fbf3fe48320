//! Overlay protocols as sans-IO state machines.
//!
//! Every protocol has the same shape: a `Config`, a `State<R: Rng>` that
//! takes an [`InEvent`] plus the current time and pushes [`OutEvent`]s, a
//! `Timer` type and a `Message` type. No tokio, no clock, no thread RNG:
//! the caller passes `now` and owns the seeded RNG, and protocol state
//! iterates only ordered collections, so a seed replays a run exactly. The
//! same code runs in the simulator (`src/sim/`) and, later, on real sockets.

pub mod hyparview;
pub(crate) mod id_cache;
pub mod plumtree;

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub mod any;
pub mod client_server;
pub mod full_mesh;

pub use crate::model::NodeId as PeerId;

/// Protocol time: elapsed time since an arbitrary origin chosen by the
/// caller (simulated time in the simulator, a tokio instant offset on real
/// nodes).
pub type Time = Duration;

/// Identity of an application broadcast: (origin node, origin incarnation,
/// per-origin sequence). The incarnation is bumped at every start of the
/// origin, so a restarted sender is never mistaken for duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId {
    pub origin: PeerId,
    pub incarnation: u32,
    pub seq: u64,
}

/// Commands from the application or the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Join the overlay through these contacts (may be empty for the first
    /// node). For full mesh and client-server this also carries the known
    /// membership.
    Join(Vec<PeerId>),
    /// Leave gracefully: tell neighbours, close links.
    Leave,
    /// Broadcast a payload to every member.
    Broadcast { id: MessageId, payload: Bytes },
}

/// Input to a protocol state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InEvent<M, T> {
    /// A message arrived from `from`.
    Message { from: PeerId, message: M },
    /// The transport reports that the link to a peer is gone (a send
    /// failed, or the link-loss detection delay passed).
    PeerDown(PeerId),
    /// A timer the protocol scheduled has fired.
    Timer(T),
    /// A command from above.
    Command(Command),
}

/// Output of a protocol state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutEvent<M, T> {
    /// Send a message (opening a link on demand).
    Send { to: PeerId, message: M },
    /// Keep a standing link to this peer.
    Connect(PeerId),
    /// Close the link to this peer.
    Disconnect(PeerId),
    /// Hand back `timer` as [`InEvent::Timer`] after `after`.
    ScheduleTimer { after: Duration, timer: T },
    /// Deliver a broadcast to the application (at most once per id).
    Deliver {
        id: MessageId,
        /// The neighbour it came from (the node itself for its own).
        from: PeerId,
        /// Overlay hops travelled from the origin.
        hops: u32,
        payload: Bytes,
    },
    /// This node's set of standing overlay links changed.
    ViewChanged { links: Vec<PeerId> },
}

/// How a message counts in the simulator's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageClass {
    /// Carries an application payload (counted in RMR).
    Payload,
    /// Tree maintenance: IHAVE, GRAFT, PRUNE.
    Gossip,
    /// Membership: JOIN, FORWARD_JOIN, NEIGHBOR, SHUFFLE, ...
    Membership,
}

/// What the simulator and executor need to know of any protocol message.
pub trait ProtocolMessage: Clone + std::fmt::Debug {
    /// Class for statistics.
    fn class(&self) -> MessageClass;
    /// A short name (`"JOIN"`, `"GOSSIP"`) for per-kind counters.
    fn kind(&self) -> &'static str;
}

/// One overlay protocol of any topology, as the simulator and the executor
/// drive it.
pub trait Protocol {
    type Message: ProtocolMessage;
    type Timer: Clone + std::fmt::Debug;

    /// This node's id.
    fn me(&self) -> PeerId;
    /// Handles one event at time `now`, appending outputs to `out`.
    fn handle(
        &mut self,
        now: Time,
        event: InEvent<Self::Message, Self::Timer>,
        out: &mut Vec<OutEvent<Self::Message, Self::Timer>>,
    );
    /// The peers this node currently keeps standing links to.
    fn links(&self) -> Vec<PeerId>;
}
