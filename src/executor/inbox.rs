//! [`Inbox`]: the node's subscribers and its dedup window, shared by the
//! executor task and the transport's link readers. Every delivery — a
//! broadcast the overlay hands to the task, a repaired one, a message to
//! this node itself, and a point-to-point message a link reader takes off
//! the wire ([`FrameSink`]) — goes through [`Inbox::deliver`]: one lock
//! around the dedup check and the push to the channel's subscribers, so a
//! message that reaches the node on two paths (say directly and relayed
//! through a server) is delivered at most once whichever path is first.
//!
//! Point-to-point messages for this node are delivered by the reader of
//! the link they arrive on, without a hop through the executor task: in
//! the link's order, and with the task's queue out of their way. Frames
//! the fast path does not take (overlay, repair, probe frames and
//! point-to-point messages to relay) go to the task as before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::broadcast;

use super::dedup::Dedup;
use super::handle::{Delivery, SendShared};
use super::wire;
use crate::model::NodeId;
use crate::overlay::MessageId;
use crate::transport::FrameSink;

#[derive(Default)]
struct State {
    dedup: Dedup,
    subs: HashMap<Arc<str>, broadcast::Sender<Delivery>>,
}

impl State {
    /// Hands a message to `channel`'s subscribers, if any.
    fn hand(&self, id: MessageId, channel: &str, payload: Bytes, broadcast: bool) {
        if let Some((name, tx)) = self.subs.get_key_value(channel) {
            let d = Delivery {
                id,
                origin: id.origin,
                channel: name.clone(),
                payload,
                broadcast,
            };
            if tx.send(d).is_err() {
                // Every subscriber of this channel is gone.
            }
        }
    }
}

/// See the module docs.
pub(crate) struct Inbox {
    me: NodeId,
    state: Mutex<State>,
    delivered: AtomicU64,
    duplicates: AtomicU64,
}

impl Inbox {
    pub fn new(me: NodeId) -> Self {
        Inbox {
            me,
            state: Mutex::default(),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
        }
    }

    /// A new receiver of `channel`'s messages (its queue holds `cap`).
    pub fn subscribe(&self, channel: &str, cap: usize) -> broadcast::Receiver<Delivery> {
        let mut st = self.lock();
        if let Some(tx) = st.subs.get(channel) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(cap);
        st.subs.insert(Arc::from(channel), tx);
        rx
    }

    /// Delivers a message to `channel`'s subscribers unless its id was
    /// seen; true if it was new (counted as delivered, subscribers or
    /// not), false for a duplicate (counted, dropped).
    pub fn deliver(&self, id: MessageId, channel: &str, payload: Bytes, broadcast: bool) -> bool {
        let mut st = self.lock();
        if !st.dedup.insert(id) {
            drop(st);
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        st.hand(id, channel, payload, broadcast);
        drop(st);
        self.delivered.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Hands a broadcast the executor's core found new to `channel`'s
    /// subscribers (the core filters duplicate broadcasts by their own
    /// numbers and counts them; this filter is for point-to-point
    /// messages, which the link readers deliver too).
    pub fn deliver_new(&self, id: MessageId, channel: &str, payload: Bytes, broadcast: bool) {
        self.lock().hand(id, channel, payload, broadcast);
    }

    /// Forgets the point-to-point dedup state of origins not in `members`.
    pub fn retain(&self, members: &std::collections::BTreeSet<NodeId>) {
        self.lock().dedup.retain(members);
    }

    /// Drops every channel's sender: subscriptions end (`recv` gives
    /// `None`) once the node stops.
    pub fn close(&self) {
        self.lock().subs.clear();
    }

    /// Messages delivered and duplicates dropped so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.delivered.load(Ordering::Relaxed),
            self.duplicates.load(Ordering::Relaxed),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The inbox as the transport's [`FrameSink`].
pub(crate) struct InboxSink(pub Arc<SendShared>);

impl FrameSink for InboxSink {
    /// Takes point-to-point messages for this node; everything else
    /// (including a frame that does not decode: the task counts it) goes
    /// to the executor task.
    fn consume(&self, _from: NodeId, payload: &Bytes) -> bool {
        let inbox = &self.0.inbox;
        let Some((id, to, channel, data)) = wire::peek_direct(payload) else {
            return false;
        };
        if to != inbox.me {
            return false;
        }
        inbox.deliver(id, channel, data, false);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::wire::direct_head;

    #[test]
    fn a_message_on_both_paths_is_delivered_once() {
        let shared = Arc::new(SendShared::new(2));
        let sink = InboxSink(shared.clone());
        let mut rx = shared.inbox.subscribe("c", 16);
        let id = MessageId {
            origin: 1,
            incarnation: 1,
            seq: 7,
        };
        let mut frame = direct_head(id, 2, "c", 3).to_vec();
        frame.extend_from_slice(b"abc");
        let frame = Bytes::from(frame);
        // The reader's fast path takes it...
        assert!(sink.consume(1, &frame));
        // ...and the same message relayed through the task is a duplicate.
        assert!(!shared
            .inbox
            .deliver(id, "c", Bytes::from_static(b"abc"), false));
        assert!(sink.consume(3, &frame), "consumed, dropped as a duplicate");
        let d = rx.try_recv().expect("delivered");
        assert_eq!((d.id, &*d.channel, &d.payload[..]), (id, "c", &b"abc"[..]));
        assert!(rx.try_recv().is_err(), "delivered once");
        assert_eq!(shared.inbox.counts(), (1, 2));
        // Not for this node: left to the task (to relay).
        let other = Bytes::copy_from_slice(&direct_head(id, 5, "c", 0));
        assert!(!sink.consume(1, &other));
        shared.inbox.close();
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ));
    }
}
