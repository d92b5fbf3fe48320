//! The core's time-driven work — the end of a drain, health checks of a
//! steady HyParView/Plumtree overlay, gap-repair rounds, full meshes
//! re-joining members they lack — and the one pending [`Timer::Wake`] at
//! the earliest instant any of it (or the check in progress) is due.
//! Nothing is polled: a node with nothing due sleeps.

use std::time::Duration;

use super::{Core, Output, Slots, Timer};
use crate::model::{NodeId, Topology};
use crate::overlay::{Command, InEvent as OverlayIn, Protocol};

/// Period of the check of full meshes for members they lack.
pub(super) const MESH_CHECK: Duration = Duration::from_millis(500);
/// The shortest wait between two wake-ups (no busy loop if something
/// stays due).
const MIN_WAKE: Duration = Duration::from_millis(1);

impl Core {
    pub(super) fn on_wake(&mut self, now: Duration, out: &mut Vec<Output>) {
        if self.drain_over(now) {
            if let Some(o) = self.slots.drop_other() {
                self.teardown(now, o, out);
            }
            if let Some(p) = self.queued.take() {
                self.prepare(now, p, out);
            }
        }
        self.start_health_check(now);
        if self.repair_pending() {
            self.repair_round(now, out);
        }
        self.complete_meshes(now, out);
    }

    /// When the drain ends: at the grace period, or early — not before
    /// `drain_min` — when a prepare waits or the old overlay has gone quiet
    /// (every node sends on the new one). A broadcast a slow node still
    /// sends on the old overlay after that is dropped as stale and
    /// recovered by gap repair.
    fn drain_end(&self) -> Option<Duration> {
        let Slots::Draining {
            since,
            last_payload,
            ..
        } = self.slots
        else {
            return None;
        };
        let min = since + self.cfg.drain_min();
        let early = if self.queued.is_some() {
            min
        } else {
            min.max(last_payload + self.cfg.drain_min())
        };
        Some(early.min(since + self.cfg.drain_grace()))
    }

    fn drain_over(&self, now: Duration) -> bool {
        self.drain_end().is_some_and(|end| now >= end)
    }

    /// The earliest instant something time-driven is due, if anything is.
    pub(super) fn next_due(&self) -> Option<Duration> {
        let mut due: Option<Duration> = None;
        let mut at = |t: Duration| due = Some(due.map_or(t, |d| d.min(t)));
        if let Some(end) = self.drain_end() {
            at(end);
        }
        if let Some(c) = &self.check {
            at(c.due());
        } else if self.cfg.health_interval().is_some()
            && self.slots.other().is_none()
            && self
                .slots
                .current()
                .is_some_and(|c| matches!(c.topology, Topology::HyParView | Topology::PubSub))
        {
            at(self.next_health);
        }
        if self.repair_pending() {
            at(self.repair.next_round);
        }
        if self.slots.iter().any(|i| i.topology == Topology::FullMesh) {
            at(self.next_mesh_check);
        }
        due
    }

    /// Asks for a wake-up at the next due instant unless one is pending by
    /// then.
    pub(super) fn schedule_wake(&mut self, now: Duration, out: &mut Vec<Output>) {
        let Some(due) = self.next_due() else {
            return;
        };
        let due = due.max(now + MIN_WAKE);
        if self.wake_at.is_some_and(|w| w <= due) {
            return;
        }
        self.wake_at = Some(due);
        out.push(Output::ScheduleTimer {
            after: due - now,
            timer: Timer::Wake,
        });
    }

    /// Every half second: a full mesh that lacks a member whose link is up
    /// joins it again (its join may have been lost while the link was
    /// failing; the overlay itself re-probes only after `probe_after`).
    fn complete_meshes(&mut self, now: Duration, out: &mut Vec<Output>) {
        if now < self.next_mesh_check {
            return;
        }
        self.next_mesh_check = now + MESH_CHECK;
        let wanted: Vec<(u64, Vec<NodeId>)> = self
            .slots
            .iter()
            .filter(|i| i.topology == Topology::FullMesh)
            .map(|i| {
                let links = i.overlay.links();
                let lacking = self
                    .up
                    .iter()
                    .copied()
                    .filter(|p| self.members.contains(p) && !links.contains(p))
                    .collect();
                (i.id, lacking)
            })
            .filter(|(_, l): &(u64, Vec<NodeId>)| !l.is_empty())
            .collect();
        for (id, lacking) in wanted {
            tracing::debug!(
                instance = id,
                ?lacking,
                "full mesh lacks linked members: joining them"
            );
            self.drive(now, id, OverlayIn::Command(Command::Join(lacking)), out);
        }
    }
}
