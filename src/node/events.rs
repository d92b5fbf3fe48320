//! Topology announcements for applications (design §4, §7): the
//! [`TopologyEvent`]s of `Node::topology_events()` and `GET /v1/events`.
//!
//! Events are derived by diffing successive applied states
//! ([`events_between`], a pure function), not read from the log: a node
//! publishes what its own state machine applied. One task per node
//! ([`run`]) diffs each new state against the previous one and sends the
//! events on a bounded broadcast channel ([`EventHub`]); a subscriber that
//! falls more than [`EVENTS_CAPACITY`] behind is told how many it missed.
//!
//! **Skipped states.** The applied state is published on a `watch`, so a
//! node that catches up (log replay, a snapshot, a slow task) may see
//! several transitions happen between two states it observes. It then
//! emits, in transition order, for every transition in the newer state's
//! history that it had not seen decided: `Announced` (if it had not seen
//! it at all), `Prepared` (if the record shows this node's `Prepared`
//! report and it had not seen it), then `Committed`, `RolledBack` or
//! `Aborted`. Transitions already pruned from the history (beyond
//! `history_retention`) are not reconstructed. The first state the task
//! sees is the baseline: a node restarted on its data dir does not replay
//! its history; a new member catching up from an empty state does (its
//! history up to the retention, through the bounded channel).

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::control::applied::AppliedRx;
use crate::model::{
    HistoryRecord, NodeId, Outcome, OverlayConfig, Phase, SwitchReason, Topology, TopologyState,
    TransitionId,
};
use std::sync::Arc;

/// Events kept for a subscriber that falls behind.
pub const EVENTS_CAPACITY: usize = 256;
/// Most concurrent `GET /v1/events` clients of one node (guess: an
/// operator's few `topoctl watch` plus some dashboards; each holds a
/// connection and two channel receivers).
pub const MAX_EVENT_CLIENTS: usize = 32;

/// The transition an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionRef {
    pub id: TransitionId,
    pub from: Topology,
    pub to: Topology,
    pub reason: SwitchReason,
}

impl TransitionRef {
    fn of(r: &HistoryRecord) -> Self {
        TransitionRef {
            id: r.id,
            from: r.from,
            to: r.to,
            reason: r.reason.clone(),
        }
    }
}

/// A step of a transition as this node applied it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopologyEvent {
    /// A switch was accepted: the cluster prepares `to`.
    Announced(TransitionRef),
    /// This node's shadow overlay of `to` is prepared (its own `Prepared`
    /// report was applied).
    Prepared(TransitionRef),
    /// The cluster cut over to `to`; the epoch it started.
    Committed {
        transition: TransitionRef,
        epoch: u64,
    },
    /// The transition was given up; the current overlay is untouched.
    Aborted {
        transition: TransitionRef,
        reason: String,
    },
    /// A rollback committed: the cluster is back on `to`, reverting
    /// transition `reverted`. (Emitted instead of `Committed` for a
    /// rollback; both mean the current topology changed.)
    RolledBack {
        transition: TransitionRef,
        reverted: TransitionId,
        epoch: u64,
    },
}

impl TopologyEvent {
    /// The transition the event is about.
    pub fn transition(&self) -> &TransitionRef {
        match self {
            TopologyEvent::Announced(t) | TopologyEvent::Prepared(t) => t,
            TopologyEvent::Committed { transition, .. }
            | TopologyEvent::Aborted { transition, .. }
            | TopologyEvent::RolledBack { transition, .. } => transition,
        }
    }

    /// snake_case name (`announced`, …, `rolled_back`): the SSE event name.
    pub fn kind(&self) -> &'static str {
        match self {
            TopologyEvent::Announced(_) => "announced",
            TopologyEvent::Prepared(_) => "prepared",
            TopologyEvent::Committed { .. } => "committed",
            TopologyEvent::Aborted { .. } => "aborted",
            TopologyEvent::RolledBack { .. } => "rolled_back",
        }
    }

    /// Whether the current topology changed (a commit or a rollback).
    pub fn changes_topology(&self) -> bool {
        matches!(
            self,
            TopologyEvent::Committed { .. } | TopologyEvent::RolledBack { .. }
        )
    }
}

/// What a transition looked like in one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    decided: bool,
    prepared_by_me: bool,
}

fn seen(state: &TopologyState, id: TransitionId, me: NodeId) -> Option<Seen> {
    let record = state.record(id)?;
    let reports = match &state.in_flight {
        Some(t) if t.id == id => &t.reports,
        _ => &record.reports,
    };
    Some(Seen {
        decided: record.outcome != Outcome::InProgress,
        prepared_by_me: reports.get(&me) == Some(&Phase::Prepared),
    })
}

/// The events that take `old` to `new` as seen by node `me`, in order
/// (see the module doc for skipped states).
pub fn events_between(old: &TopologyState, new: &TopologyState, me: NodeId) -> Vec<TopologyEvent> {
    // Records are in id order and at most one is undecided (the newest):
    // walk back until one that `old` had already seen decided.
    let mut touched: Vec<&HistoryRecord> = Vec::new();
    for r in new.history.iter().rev() {
        if seen(old, r.id, me).is_some_and(|s| s.decided) {
            break;
        }
        touched.push(r);
    }
    let mut events = Vec::new();
    for r in touched.into_iter().rev() {
        let before = seen(old, r.id, me);
        let now = seen(new, r.id, me).expect("the record is in `new`");
        let t = TransitionRef::of(r);
        if before.is_none() {
            events.push(TopologyEvent::Announced(t.clone()));
        }
        if now.prepared_by_me && !before.is_some_and(|s| s.prepared_by_me) {
            events.push(TopologyEvent::Prepared(t.clone()));
        }
        match &r.outcome {
            Outcome::InProgress => {}
            Outcome::Committed { epoch, .. } => {
                events.push(match r.reason {
                    SwitchReason::Rollback { of } => TopologyEvent::RolledBack {
                        transition: t,
                        reverted: of,
                        epoch: *epoch,
                    },
                    _ => TopologyEvent::Committed {
                        transition: t,
                        epoch: *epoch,
                    },
                });
            }
            Outcome::Aborted { reason, .. } => events.push(TopologyEvent::Aborted {
                transition: t,
                reason: reason.clone(),
            }),
        }
    }
    events
}

/// The current topology as this node applied it (`Node::topology()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentTopology {
    pub topology: Topology,
    pub config: OverlayConfig,
    /// Grows by one per committed switch.
    pub epoch: u64,
    /// The transition that created the current overlay (0: bootstrap).
    pub instance: TransitionId,
}

impl From<&TopologyState> for CurrentTopology {
    fn from(s: &TopologyState) -> Self {
        CurrentTopology {
            topology: s.topology,
            config: s.config.clone(),
            epoch: s.epoch,
            instance: s.current_instance,
        }
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsItem {
    Event(TopologyEvent),
    /// The subscriber fell behind and missed this many events.
    Lagged(u64),
}

/// A stream of this node's topology events.
pub struct TopologyEvents {
    rx: broadcast::Receiver<TopologyEvent>,
}

impl TopologyEvents {
    /// The next event, or how many were missed. `None` once the node
    /// stops.
    pub async fn recv(&mut self) -> Option<EventsItem> {
        match self.rx.recv().await {
            Ok(e) => Some(EventsItem::Event(e)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(EventsItem::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The events as a `Stream`.
    pub fn into_stream(self) -> impl futures::Stream<Item = EventsItem> {
        futures::stream::unfold(self, |mut s| async move { s.recv().await.map(|e| (e, s)) })
    }
}

/// Where a node's events are published, shared by the embedding API and
/// `GET /v1/events`: the broadcast sender, the SSE client limit and the
/// node's stop signal (open SSE streams end with it, or the API server's
/// graceful shutdown would wait for them forever).
#[derive(Debug, Clone)]
pub struct EventHub {
    tx: broadcast::Sender<TopologyEvent>,
    clients: Arc<Semaphore>,
    stop: CancellationToken,
}

impl EventHub {
    /// A hub that stops with `stop`.
    pub fn new(stop: CancellationToken) -> Self {
        EventHub {
            tx: broadcast::Sender::new(EVENTS_CAPACITY),
            clients: Arc::new(Semaphore::new(MAX_EVENT_CLIENTS)),
            stop,
        }
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> TopologyEvents {
        TopologyEvents {
            rx: self.tx.subscribe(),
        }
    }

    /// A raw receiver (for the SSE route).
    pub fn receiver(&self) -> broadcast::Receiver<TopologyEvent> {
        self.tx.subscribe()
    }

    /// A place for one more SSE client, or `None` when
    /// [`MAX_EVENT_CLIENTS`] are connected.
    pub fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.clients.clone().try_acquire_owned().ok()
    }

    /// Resolves when the node stops.
    pub fn stopped(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.stop.clone().cancelled_owned()
    }

    fn publish(&self, event: TopologyEvent) {
        // No subscriber is not an error: nobody is listening.
        let _receivers = self.tx.send(event);
    }
}

/// Diffs each applied state against the previous one and publishes the
/// events, until `cancel` fires.
pub async fn run(mut applied: AppliedRx, hub: EventHub, me: NodeId, cancel: CancellationToken) {
    let mut prev = applied.borrow_and_update().clone();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = applied.changed() => if r.is_err() { return },
        }
        let next = applied.borrow_and_update().clone();
        for e in events_between(&prev.state, &next.state, me) {
            hub.publish(e);
        }
        prev = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ApplyContext, Command, CommandResponse, ProposeSwitch};

    const ME: NodeId = 2;

    fn ctx(index: u64) -> ApplyContext {
        ApplyContext {
            index,
            term: 1,
            members: vec![1, 2],
        }
    }

    /// A state machine driven step by step, keeping every state.
    struct Run {
        states: Vec<TopologyState>,
        index: u64,
    }

    impl Run {
        fn new() -> Self {
            Run {
                states: vec![TopologyState::default()],
                index: 0,
            }
        }
        fn last(&self) -> &TopologyState {
            self.states.last().unwrap()
        }
        fn apply(&mut self, c: Command) -> CommandResponse {
            self.index += 1;
            let mut s = self.last().clone();
            let r = s.apply(&ctx(self.index), 1000 + self.index, &c);
            self.states.push(s);
            r
        }
        fn propose(&mut self, to: Topology, reason: SwitchReason) -> TransitionId {
            let p = ProposeSwitch::new(to, OverlayConfig::default_for(to), reason, None, "t");
            match self.apply(Command::ProposeSwitch(p)) {
                CommandResponse::Accepted { id } => id,
                r => panic!("{r:?}"),
            }
        }
        fn prepared(&mut self, id: TransitionId, node: NodeId) {
            let c = Command::ReportPhase {
                id,
                node,
                phase: Phase::Prepared,
            };
            assert_eq!(self.apply(c), CommandResponse::Applied);
        }
        fn commit(&mut self, id: TransitionId) {
            let c = Command::CommitSwitch {
                id,
                term: 1,
                missing: vec![],
            };
            assert_eq!(self.apply(c), CommandResponse::Applied);
        }
        fn abort(&mut self, id: TransitionId) {
            let c = Command::AbortSwitch {
                id,
                term: 1,
                reason: "node 1 failed".into(),
            };
            assert_eq!(self.apply(c), CommandResponse::Applied);
        }
        /// Every event, state by state.
        fn stepwise(&self) -> Vec<TopologyEvent> {
            self.states
                .windows(2)
                .flat_map(|w| events_between(&w[0], &w[1], ME))
                .collect()
        }
        /// The events from the first state straight to the last.
        fn skipped(&self) -> Vec<TopologyEvent> {
            events_between(&self.states[0], self.last(), ME)
        }
    }

    fn tref(id: TransitionId, from: Topology, to: Topology, reason: SwitchReason) -> TransitionRef {
        TransitionRef {
            id,
            from,
            to,
            reason,
        }
    }

    #[test]
    fn a_switch_is_announced_prepared_and_committed_in_order() {
        let mut run = Run::new();
        let id = run.propose(Topology::HyParView, SwitchReason::Manual);
        run.prepared(id, 1);
        run.prepared(id, ME);
        run.commit(id);
        let t = tref(
            id,
            Topology::FullMesh,
            Topology::HyParView,
            SwitchReason::Manual,
        );
        let expected = vec![
            TopologyEvent::Announced(t.clone()),
            TopologyEvent::Prepared(t.clone()),
            TopologyEvent::Committed {
                transition: t,
                epoch: 1,
            },
        ];
        assert_eq!(run.stepwise(), expected);
        // Each step yields at most its own event: another node's report
        // (node 1) yields nothing.
        assert!(events_between(&run.states[1], &run.states[2], ME).is_empty());
        // A node that skipped every intermediate state emits the same.
        assert_eq!(run.skipped(), expected);
    }

    #[test]
    fn an_abort_is_announced_then_aborted_without_prepared() {
        let mut run = Run::new();
        let id = run.propose(Topology::PubSub, SwitchReason::Manual);
        run.abort(id);
        let t = tref(
            id,
            Topology::FullMesh,
            Topology::PubSub,
            SwitchReason::Manual,
        );
        let expected = vec![
            TopologyEvent::Announced(t.clone()),
            TopologyEvent::Aborted {
                transition: t,
                reason: "node 1 failed".into(),
            },
        ];
        assert_eq!(run.stepwise(), expected);
        assert_eq!(run.skipped(), expected);
    }

    #[test]
    fn a_committed_rollback_names_what_it_reverted() {
        let mut run = Run::new();
        let first = run.propose(Topology::HyParView, SwitchReason::Manual);
        run.prepared(first, 1);
        run.prepared(first, ME);
        run.commit(first);
        let back = run.propose(Topology::FullMesh, SwitchReason::Rollback { of: first });
        run.prepared(back, 1);
        run.prepared(back, ME);
        let before_commit = run.last().clone();
        run.commit(back);
        let t = tref(
            back,
            Topology::HyParView,
            Topology::FullMesh,
            SwitchReason::Rollback { of: first },
        );
        assert_eq!(
            events_between(&before_commit, run.last(), ME),
            vec![TopologyEvent::RolledBack {
                transition: t,
                reverted: first,
                epoch: 2,
            }]
        );
        // Catching up over both transitions: all seven events, in order.
        let kinds: Vec<&str> = run.skipped().iter().map(TopologyEvent::kind).collect();
        assert_eq!(
            kinds,
            [
                "announced",
                "prepared",
                "committed",
                "announced",
                "prepared",
                "rolled_back"
            ]
        );
        assert_eq!(run.skipped(), run.stepwise());
    }

    #[test]
    fn decided_transitions_seen_before_are_not_repeated() {
        let mut run = Run::new();
        let a = run.propose(Topology::HyParView, SwitchReason::Manual);
        run.abort(a);
        let mid = run.last().clone();
        let b = run.propose(Topology::PubSub, SwitchReason::Manual);
        let events = events_between(&mid, run.last(), ME);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind(), "announced");
        assert_eq!(events[0].transition().id, b);
        // A state compared with itself yields nothing.
        assert!(events_between(run.last(), run.last(), ME).is_empty());
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_how_many_it_missed() {
        let hub = EventHub::new(CancellationToken::new());
        let mut sub = hub.subscribe();
        let t = tref(
            1,
            Topology::FullMesh,
            Topology::HyParView,
            SwitchReason::Manual,
        );
        for _ in 0..EVENTS_CAPACITY + 5 {
            hub.publish(TopologyEvent::Announced(t.clone()));
        }
        assert_eq!(sub.recv().await, Some(EventsItem::Lagged(5)));
        assert_eq!(
            sub.recv().await,
            Some(EventsItem::Event(TopologyEvent::Announced(t)))
        );
    }

    #[test]
    fn the_client_limit_admits_at_most_max_clients() {
        let hub = EventHub::new(CancellationToken::new());
        let permits: Vec<_> = (0..MAX_EVENT_CLIENTS)
            .map(|_| hub.admit().expect("a place"))
            .collect();
        assert!(hub.admit().is_none());
        drop(permits);
        assert!(hub.admit().is_some());
    }
}
