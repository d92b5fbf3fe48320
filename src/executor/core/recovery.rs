//! Gap repair of broadcasts, the core's side (see `crate::executor::repair`
//! for the scheme): summaries while this node broadcasts, nacks for gaps
//! that lasted, resends of what it still keeps.

use std::time::Duration;

use bytes::Bytes;

use super::{Core, Output};
use crate::executor::repair::NACK_MAX;
use crate::executor::wire::{encode, Frame, RepairKind, RepairMsg};
use crate::model::NodeId;
use crate::overlay::Protocol;
use crate::transport::FrameClass;

/// Summaries sent after this node's last broadcast (rounds of
/// `summary_interval`), so that a receiver that lost the tail hears of it.
const SUMMARY_ROUNDS: u32 = 5;

impl Core {
    /// Whether a repair round has anything to do: summaries still to send,
    /// or gaps open.
    pub(super) fn repair_pending(&self) -> bool {
        self.repair.summaries_left > 0
            || self.repair.outbox.last() != self.repair.summarized
            || self.repair.gaps.open()
    }

    /// Summaries while broadcasting, nacks for old gaps.
    pub(super) fn repair_round(&mut self, now: Duration, out: &mut Vec<Output>) {
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
            for p in self.summary_targets() {
                self.send_summary(p, out);
            }
        }
        let unrecoverable = self.repair.gaps.unrecoverable;
        for due in self.repair.gaps.due(now, self.cfg.repair_delay()) {
            self.counters.repairs_requested += due.missing.len() as u64;
            let kind = RepairKind::Nack {
                incarnation: due.incarnation,
                missing: due.missing,
            };
            self.send_repair(due.origin, kind, out);
        }
        self.note_unrecoverable(unrecoverable);
    }

    /// Who hears this round's summary: every live member, or (with
    /// `executor.summary_peers` = k) the next k of them in turn and the
    /// current overlay's links.
    fn summary_targets(&mut self) -> Vec<NodeId> {
        let k = self.cfg.summary_peers as usize;
        if k == 0 || k >= self.live.len() {
            return self.live.iter().copied().collect();
        }
        let n = self.live.len();
        let start = self.repair.summary_turn % n;
        self.repair.summary_turn = (start + k) % n;
        let mut to: std::collections::BTreeSet<NodeId> = self
            .live
            .iter()
            .copied()
            .cycle()
            .skip(start)
            .take(k)
            .collect();
        if let Some(cur) = self.slots.current() {
            to.extend(
                cur.overlay
                    .links()
                    .into_iter()
                    .filter(|p| self.live.contains(p)),
            );
        }
        to.into_iter().collect()
    }

    /// Tells `peer` this node's latest broadcast number (if any).
    pub(super) fn send_summary(&mut self, peer: NodeId, out: &mut Vec<Output>) {
        let last = self.repair.outbox.last();
        if last == 0 {
            return;
        }
        let kind = RepairKind::Summary {
            incarnation: self.incarnation,
            last,
        };
        self.send_repair(peer, kind, out);
    }

    fn send_repair(&mut self, to: NodeId, kind: RepairKind, out: &mut Vec<Output>) {
        let class = repair_class(&kind);
        let frame = encode(&Frame::Repair(RepairMsg {
            from: self.me,
            to,
            kind,
        }));
        let Ok(via) = self.route(to) else {
            tracing::debug!(peer = to, "repair message has no route");
            return;
        };
        if !self.send_frame(via, class, frame, None, out) {
            tracing::debug!(peer = to, via, "repair message could not be sent");
        }
    }

    /// A repair frame: relayed if it is for another node, else handled.
    pub(super) fn on_repair(
        &mut self,
        now: Duration,
        msg: RepairMsg,
        payload: Bytes,
        out: &mut Vec<Output>,
    ) {
        if msg.to != self.me {
            let class = repair_class(&msg.kind);
            if !self.members.contains(&msg.to)
                || !self.send_frame(msg.to, class, payload, None, out)
            {
                tracing::debug!(to = msg.to, "relayed repair message could not be sent");
            }
            return;
        }
        let from = msg.from;
        let unrecoverable = self.repair.gaps.unrecoverable;
        match msg.kind {
            RepairKind::Summary { incarnation, last } => {
                self.repair.gaps.summary(from, incarnation, last, now)
            }
            RepairKind::Nack {
                incarnation,
                missing,
            } => self.resend(from, incarnation, missing, out),
            RepairKind::Resend {
                bseq,
                id,
                channel,
                data,
            } => {
                // The gap closes only with the delivery: the filter is by
                // broadcast number, so a resend is refused only when this
                // very broadcast was delivered before.
                if self.deliver_broadcast(now, id, bseq, channel, data, None, out) {
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
    fn resend(&mut self, to: NodeId, incarnation: u32, missing: Vec<u64>, out: &mut Vec<Output>) {
        if incarnation != self.incarnation {
            // A previous run of this node: nothing of it is kept.
            let kind = RepairKind::Gone {
                incarnation,
                below: u64::MAX,
            };
            return self.send_repair(to, kind, out);
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
            self.send_repair(to, kind, out);
        }
        if gone {
            let kind = RepairKind::Gone {
                incarnation,
                below: oldest,
            };
            self.send_repair(to, kind, out);
        }
    }

    fn note_unrecoverable(&mut self, before: u64) {
        let now = self.repair.gaps.unrecoverable;
        if now > before {
            self.counters.unrecoverable += now - before;
            self.dirty = true;
        }
    }
}

fn repair_class(kind: &RepairKind) -> FrameClass {
    match kind {
        RepairKind::Resend { .. } => FrameClass::Data,
        _ => FrameClass::Control,
    }
}
