//! The actor's side of gap repair (see [`super::repair`]): numbering and
//! keeping its own broadcasts, sending summaries and nacks on the tick,
//! and answering repair frames.

use bytes::Bytes;
use tokio::time::Instant;

use super::actor::Actor;
use super::repair::NACK_MAX;
use super::wire::{encode, Body, Frame, RepairKind, RepairMsg};
use crate::model::NodeId;
use crate::overlay::MessageId;
use crate::transport::FrameClass;

/// Summaries sent after this node's last broadcast (rounds of
/// `summary_interval`), so that a receiver that lost the tail hears of it.
const SUMMARY_ROUNDS: u32 = 5;

impl Actor {
    /// Broadcasts an application message over the current overlay `cur`,
    /// numbered and kept for repair.
    pub async fn broadcast_app(&mut self, cur: u64, channel: String, data: Bytes) {
        let id = self.next_id();
        let bseq = self.repair.outbox.push(id, &channel, &data);
        let body = Body::App {
            channel,
            data,
            bseq,
        };
        self.broadcast_with(cur, id, &body).await;
    }

    /// An application broadcast arrived over an overlay.
    pub fn broadcast_seen(&mut self, id: MessageId, bseq: u64) {
        if id.origin != self.me {
            self.repair
                .gaps
                .seen(id.origin, id.incarnation, bseq, Instant::now());
        }
    }

    /// On the tick: summaries while broadcasting, nacks for old gaps.
    pub async fn repair_round(&mut self) {
        let now = Instant::now();
        if now < self.repair.next_round {
            return;
        }
        self.repair.next_round = now + self.cfg.summary_interval();
        let last = self.repair.outbox.last();
        if last != self.repair.summarized {
            self.repair.summarized = last;
            self.repair.summaries_left = SUMMARY_ROUNDS;
        }
        if self.repair.summaries_left > 0 {
            self.repair.summaries_left -= 1;
            for p in self.live() {
                self.send_summary(p).await;
            }
        }
        let unrecoverable = self.repair.gaps.unrecoverable;
        for due in self.repair.gaps.due(now, self.cfg.repair_delay()) {
            self.counters.repairs_requested += due.missing.len() as u64;
            let kind = RepairKind::Nack {
                incarnation: due.incarnation,
                missing: due.missing,
            };
            self.send_repair(due.origin, kind).await;
        }
        self.note_unrecoverable(unrecoverable);
    }

    /// Tells `peer` this node's latest broadcast number (if any).
    pub async fn send_summary(&mut self, peer: NodeId) {
        let last = self.repair.outbox.last();
        if last == 0 {
            return;
        }
        let kind = RepairKind::Summary {
            incarnation: self.incarnation,
            last,
        };
        self.send_repair(peer, kind).await;
    }

    async fn send_repair(&mut self, to: NodeId, kind: RepairKind) {
        let class = match kind {
            RepairKind::Resend { .. } => FrameClass::Data,
            _ => FrameClass::Control,
        };
        let frame = encode(&Frame::Repair(RepairMsg {
            from: self.me,
            to,
            kind,
        }));
        let via = self.route(to);
        if !self.send_frame(via, class, frame).await {
            tracing::debug!(peer = to, via, "repair message could not be sent");
        }
    }

    /// A repair frame: relayed if it is for another node, else handled.
    pub async fn on_repair(&mut self, msg: RepairMsg, payload: Bytes) {
        if msg.to != self.me {
            let class = match msg.kind {
                RepairKind::Resend { .. } => FrameClass::Data,
                _ => FrameClass::Control,
            };
            if !self.send_frame(msg.to, class, payload).await {
                tracing::debug!(to = msg.to, "relayed repair message could not be sent");
            }
            return;
        }
        let now = Instant::now();
        let from = msg.from;
        let unrecoverable = self.repair.gaps.unrecoverable;
        match msg.kind {
            RepairKind::Summary { incarnation, last } => {
                self.repair.gaps.summary(from, incarnation, last, now)
            }
            RepairKind::Nack {
                incarnation,
                missing,
            } => self.resend(from, incarnation, missing).await,
            RepairKind::Resend {
                bseq,
                id,
                channel,
                data,
            } => {
                self.repair.gaps.seen(from, id.incarnation, bseq, now);
                if self.deliver_msg(id, &channel, data, true) {
                    self.counters.repaired += 1;
                }
            }
            RepairKind::Gone { incarnation, below } => {
                self.repair.gaps.gone(from, incarnation, below, now)
            }
        }
        self.note_unrecoverable(unrecoverable);
    }

    /// Resends what `to` asked for and still is kept; says what is gone.
    async fn resend(&mut self, to: NodeId, incarnation: u32, missing: Vec<u64>) {
        if incarnation != self.incarnation {
            // A previous run of this node: nothing of it is kept.
            let kind = RepairKind::Gone {
                incarnation,
                below: u64::MAX,
            };
            return self.send_repair(to, kind).await;
        }
        let oldest = self.repair.outbox.oldest();
        let mut gone = false;
        for bseq in missing.into_iter().take(NACK_MAX) {
            let Some(k) = self.repair.outbox.get(bseq).cloned() else {
                gone |= bseq < oldest;
                continue;
            };
            self.counters.repairs_sent += 1;
            let kind = RepairKind::Resend {
                bseq,
                id: k.id,
                channel: k.channel,
                data: k.data,
            };
            self.send_repair(to, kind).await;
        }
        if gone {
            let kind = RepairKind::Gone {
                incarnation,
                below: oldest,
            };
            self.send_repair(to, kind).await;
        }
    }

    fn note_unrecoverable(&mut self, before: u64) {
        let now = self.repair.gaps.unrecoverable;
        if now > before {
            self.counters.unrecoverable += now - before;
            self.mark_dirty();
        }
    }
}
