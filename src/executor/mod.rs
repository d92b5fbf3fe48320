//! The data plane's executor: one task per node (`actor`) owns every
//! overlay this node runs — the current one and, during a switch, the
//! shadow (preparing) or old (draining) one beside it — on top of the
//! [`crate::transport`]. [`ExecutorHandle`] is its cloneable handle: it
//! implements the control plane's [`crate::control::executor::Executor`]
//! and the channels API (`broadcast`, `send`, `subscribe`).
//!
//! States, as the contract names them: `Steady{current}` →
//! `Preparing{current, shadow}` → `Draining{current: new, old}` →
//! `Steady{new}`; an abort returns to `Steady{current}`. A prepare that
//! arrives while draining ends the drain first (not before `drain_min`).
//!
//! # Layout
//!
//! - `core` — [`core::Core`]: every decision of the data plane as a sans-IO
//!   state machine (slots, checks, drain, health probes, re-joins, gap
//!   repair, duplicate suppression of broadcasts), in the overlays' API
//!   shape; the simulator runs the same core.
//! - `actor` — `actor::Actor`: the task, a thin shell that feeds the core
//!   and carries out its outputs on the transport; `spill` — the bounded
//!   per-peer queues that keep it from ever waiting on a slow peer.
//! - `instance` — one running overlay and its formation test.
//! - `links` — reference-counted link users per peer; direct-link LRU.
//! - `dedup` — duplicate suppression by message id, bounded.
//! - `inbox` — subscribers and the point-to-point dedup window, shared by
//!   the task and the link readers, which deliver point-to-point messages
//!   for this node themselves (no hop through the task).
//! - `repair` — gap repair of broadcasts: the outbox kept for resending
//!   and what was seen of each origin (the core's `recovery` is its
//!   other half).
//! - `wire` — frames on the wire (postcard) and broadcast bodies.
//! - `handle` — [`ExecutorHandle`], [`Subscription`], [`ChannelError`].
//! - `status` — [`ExecStatus`], what the task publishes.
//! - `config` — [`ExecutorConfig`] (`[executor]`).
//! - `incarnation` — the per-start incarnation kept in the data dir.
//! - `summary` — the node summary's sliding window ([`summary::Recorder`],
//!   sans-IO), over `histogram` ([`histogram::LogHistogram`]);
//!   `summarize` — the actor's side (a slot a second, `Cmd::Summary`);
//!   `expected` — the links a topology expects of a node; `cpu` — the
//!   process's CPU time.

mod actor;
pub mod config;
pub mod core;
mod cpu;
pub mod dedup;
pub mod expected;
pub mod handle;
pub mod histogram;
mod inbox;
pub mod incarnation;
mod instance;
pub mod links;
pub mod repair;
mod spill;
pub mod status;
mod summarize;
pub mod summary;
pub mod wire;

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::core::{CheckFailure, FormGap};
pub use config::ExecutorConfig;
pub use handle::{ChannelError, Delivery, Event, ExecutorHandle, Subscription};
pub use status::{ExecCounters, ExecState, ExecStatus, OverlayStatus};

use crate::control::applied::AppliedRx;
use crate::model::NodeId;
use crate::transport::{Transport, TransportEvent};

/// Starts node `me`'s executor task on a transport and its event
/// receiver, following `applied` for membership and addresses. The task
/// stops, and shuts the transport down, when `cancel` fires.
pub fn start(
    me: NodeId,
    incarnation: u32,
    config: ExecutorConfig,
    (transport, events): (Transport, mpsc::Receiver<TransportEvent>),
    applied: AppliedRx,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> ExecutorHandle {
    let (cmd_tx, cmd_rx) = mpsc::channel(config.command_queue_len as usize);
    let initial = ExecStatus {
        node: me,
        incarnation,
        state: ExecState::Starting,
        current: None,
        other: None,
        verified: None,
        last_failure: None,
        rtt_us: Default::default(),
        counters: Default::default(),
    };
    let (status_tx, status_rx) = watch::channel(Arc::new(initial));
    let shared = Arc::new(handle::SendShared::new(me));
    if !transport.set_frame_sink(Arc::new(inbox::InboxSink(shared.clone()))) {
        tracing::warn!("transport already has a frame sink: point-to-point messages go through the executor task");
    }
    let actor = actor::Actor::new(
        me,
        incarnation,
        config,
        transport.clone(),
        status_tx,
        shared.clone(),
    );
    tracker.spawn(actor.run(cmd_rx, events, applied.clone(), cancel));
    ExecutorHandle {
        me,
        incarnation,
        shared,
        cmds: cmd_tx,
        status: status_rx,
        applied,
        transport,
    }
}
