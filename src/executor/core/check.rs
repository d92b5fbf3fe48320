//! [`Check`]: a prepare, verify or health check in progress, as a step
//! function. The core calls [`Check::step`] with what it sees now (the
//! live members, whether the overlay has formed); the answer says what to
//! do: wait, broadcast a probe, join through a member the probes miss, or
//! finish with the outcome. Nothing here reads a clock or sends.
//!
//! Stages: wait until the overlay has formed (and its round trips are
//! under the limit) or the formation deadline passes; then probe in
//! rounds, re-sent every probe interval, until every expected live member
//! acked one or the verify deadline passes. A verify keeps probing in
//! rounds until its watch ends; a prepare and a health check stop at
//! their first good round.

use std::collections::BTreeSet;
use std::time::Duration;

use super::failure::{CheckFailure, FormGap};
use super::Token;
use crate::model::{NodeId, Topology};
use crate::overlay::MessageId;

/// Why the check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    Prepare,
    Verify,
    /// A periodic check of a steady HyParView/Plumtree overlay: nobody
    /// waits for it; a probe that misses members makes this node join
    /// through one of them (which heals a split graph), and a failure is
    /// recorded in the status.
    Health,
}

/// What the check asks for next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing until something changes or [`Check::due`] passes.
    Wait,
    /// Broadcast a probe over the overlay (then [`Check::probe_sent`]).
    Probe,
    /// Join the overlay through this member (a probe follows).
    Join(NodeId),
    /// The check is over.
    Done(Result<(), CheckFailure>),
}

/// What the core sees when it steps a check.
#[derive(Debug)]
pub struct View<'a> {
    /// Live members now (this node excluded).
    pub live: &'a BTreeSet<NodeId>,
    /// Changes whenever `live` does (the check recomputes what it derives
    /// from `live` only then: a step costs O(1) on the busy path).
    pub version: u64,
    /// The overlay under check (`None`: torn down).
    pub topology: Option<Topology>,
    /// Whether it has formed among `live`, its round trips included; read
    /// only while [`Check::needs_formation`].
    pub formed: Result<(), FormGap>,
}

/// Timings of a check (from the executor's config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub form_timeout: Duration,
    pub verify_timeout: Duration,
    pub probe_interval: Duration,
    pub watch: Duration,
}

/// One round of probes.
#[derive(Debug)]
struct Probing {
    started: Duration,
    deadline: Duration,
    next: Duration,
    ids: BTreeSet<MessageId>,
    acks: BTreeSet<NodeId>,
    /// Probes sent this round.
    sent: u32,
    /// A join was asked for: the probe that follows it is due.
    probe_due: bool,
}

/// A check in progress.
#[derive(Debug)]
pub struct Check {
    pub kind: CheckKind,
    pub instance: u64,
    /// Who waits for the outcome (a health check: nobody).
    pub token: Option<Token>,
    /// Whether this node probes (else formation alone decides; see
    /// `executor.probers`).
    probes: bool,
    timing: Timing,
    /// The live members when the check started (this node excluded).
    expected: BTreeSet<NodeId>,
    /// `expected` that are still live, as of `live_version`.
    live: BTreeSet<NodeId>,
    live_version: Option<u64>,
    /// Acks this round from members of `live`.
    acked: usize,
    form_started: Duration,
    form_deadline: Duration,
    watch_until: Duration,
    /// While watching: when the next round starts.
    next_round: Option<Duration>,
    probing: Option<Probing>,
}

impl Check {
    pub fn new(
        kind: CheckKind,
        instance: u64,
        token: Option<Token>,
        expected: BTreeSet<NodeId>,
        now: Duration,
        timing: Timing,
    ) -> Self {
        Self::with_probes(kind, instance, token, expected, now, timing, true)
    }

    /// [`Check::new`] for a node that probes (`probes`) or checks
    /// formation alone.
    pub fn with_probes(
        kind: CheckKind,
        instance: u64,
        token: Option<Token>,
        expected: BTreeSet<NodeId>,
        now: Duration,
        timing: Timing,
        probes: bool,
    ) -> Self {
        let watch_until = match kind {
            CheckKind::Verify => now + timing.watch,
            CheckKind::Prepare | CheckKind::Health => now,
        };
        Check {
            kind,
            instance,
            token,
            probes,
            timing,
            expected,
            live: BTreeSet::new(),
            live_version: None,
            acked: 0,
            form_started: now,
            form_deadline: now + timing.form_timeout,
            watch_until,
            next_round: None,
            probing: None,
        }
    }

    /// The members the check waits for.
    pub fn expected(&self) -> &BTreeSet<NodeId> {
        &self.expected
    }

    /// Records the id of the probe just broadcast after [`Step::Probe`].
    pub fn probe_sent(&mut self, id: MessageId) {
        if let Some(p) = &mut self.probing {
            p.ids.insert(id);
        }
    }

    /// Records a probe ack from `from`; true if it was one of ours.
    pub fn ack(&mut self, instance: u64, probe: MessageId, from: NodeId) -> bool {
        match &mut self.probing {
            Some(p) if instance == self.instance && p.ids.contains(&probe) => {
                let new = p.acks.insert(from);
                if new && self.live.contains(&from) {
                    self.acked += 1;
                }
                new
            }
            _ => false,
        }
    }

    /// Whether the next step reads [`View::formed`] (the check waits for
    /// the overlay to form).
    pub fn needs_formation(&self) -> bool {
        self.probing.is_none()
    }

    /// When the passing of time alone next changes what [`Check::step`]
    /// answers (formation and acks are events the core steps on).
    pub fn due(&self) -> Duration {
        match &self.probing {
            None => self.next_round.unwrap_or(self.form_deadline),
            Some(p) if p.probe_due => p.started,
            Some(p) => p.next.min(p.deadline),
        }
    }

    /// What to do now.
    pub fn step(&mut self, now: Duration, view: &View<'_>) -> Step {
        // Members lost during the check are not waited for, unless this
        // node lost most of them: then it is the one cut off, and a node
        // alone must not call its overlay healthy.
        if self.live_version != Some(view.version) {
            self.live = self.expected.intersection(view.live).copied().collect();
            self.live_version = Some(view.version);
            self.acked = self
                .probing
                .as_ref()
                .map_or(0, |p| p.acks.intersection(&self.live).count());
        }
        if self.live.len() * 2 < self.expected.len() {
            let lost = self.expected.difference(&self.live).copied().collect();
            let of = self.expected.len();
            return Step::Done(Err(CheckFailure::LostContact { lost, of }));
        }
        let Some(topology) = view.topology else {
            return Step::Done(Err(CheckFailure::TornDown {
                instance: self.instance,
            }));
        };
        let Some(p) = self.probing.as_mut() else {
            if self.next_round.is_some_and(|t| now < t) {
                return Step::Wait;
            }
            return match &view.formed {
                Ok(()) if !self.probes => Step::Done(Ok(())),
                Ok(()) => {
                    self.acked = 0;
                    self.probing = Some(Probing {
                        started: now,
                        deadline: now + self.timing.verify_timeout,
                        next: now + self.timing.probe_interval,
                        ids: BTreeSet::new(),
                        acks: BTreeSet::new(),
                        sent: 1,
                        probe_due: false,
                    });
                    Step::Probe
                }
                Err(gap) if now >= self.form_deadline => Step::Done(Err(CheckFailure::NotFormed {
                    topology,
                    instance: self.instance,
                    after: now - self.form_started,
                    gap: gap.clone(),
                })),
                Err(_) => Step::Wait,
            };
        };
        if p.probe_due {
            p.probe_due = false;
            return Step::Probe;
        }
        if self.acked >= self.live.len() {
            if now < self.watch_until {
                // Watching after a cut-over: another round soon; the last
                // round runs at the end of the watch.
                self.probing = None;
                self.next_round = Some((now + self.timing.probe_interval).min(self.watch_until));
                return Step::Wait;
            }
            return Step::Done(Ok(()));
        }
        let missing = |live: &BTreeSet<NodeId>, p: &Probing| -> Vec<NodeId> {
            live.difference(&p.acks).copied().collect()
        };
        if now >= p.deadline {
            let missing = missing(&self.live, p);
            let total = self.live.len() + 1;
            return Step::Done(Err(CheckFailure::ProbeMissed {
                topology,
                instance: self.instance,
                reached: total - missing.len(),
                total,
                missing,
                after: now - p.started,
            }));
        }
        if now < p.next {
            return Step::Wait;
        }
        p.next = now + self.timing.probe_interval;
        p.sent += 1;
        // A HyParView graph (Plumtree's too) that the probes do not cross
        // is split: join through a member on the other side, which links
        // the two parts.
        if p.sent % 2 == 0 && matches!(topology, Topology::HyParView | Topology::PubSub) {
            p.probe_due = true;
            let missing = missing(&self.live, p);
            return Step::Join(missing[(p.sent as usize / 2) % missing.len()]);
        }
        Step::Probe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn timing() -> Timing {
        Timing {
            form_timeout: 1000 * MS,
            verify_timeout: 500 * MS,
            probe_interval: 100 * MS,
            watch: 250 * MS,
        }
    }

    fn probe(seq: u64) -> MessageId {
        MessageId {
            origin: 1,
            incarnation: 1,
            seq,
        }
    }

    fn view(live: &BTreeSet<NodeId>, formed: Result<(), FormGap>) -> View<'_> {
        View {
            live,
            version: version(live),
            topology: Some(Topology::HyParView),
            formed,
        }
    }

    /// A version per set (the tests pass sets, not a live view).
    fn version(live: &BTreeSet<NodeId>) -> u64 {
        live.iter().fold(live.len() as u64, |h, n| {
            h.wrapping_mul(31).wrapping_add(*n)
        })
    }

    fn gap() -> FormGap {
        FormGap::EmptyActiveView { size: 5 }
    }

    #[test]
    fn a_prepare_waits_for_formation_probes_and_passes_when_all_ack() {
        let live: BTreeSet<NodeId> = [2, 3].into();
        let mut c = Check::new(
            CheckKind::Prepare,
            7,
            None,
            live.clone(),
            Duration::ZERO,
            timing(),
        );
        assert_eq!(c.step(10 * MS, &view(&live, Err(gap()))), Step::Wait);
        assert_eq!(c.due(), 1000 * MS, "the formation deadline");
        assert_eq!(c.step(20 * MS, &view(&live, Ok(()))), Step::Probe);
        c.probe_sent(probe(1));
        assert!(c.ack(7, probe(1), 2));
        assert!(!c.ack(7, probe(99), 3), "not our probe");
        assert!(!c.ack(6, probe(1), 3), "another instance");
        assert_eq!(c.step(30 * MS, &view(&live, Ok(()))), Step::Wait);
        assert_eq!(c.due(), 120 * MS, "the next probe");
        assert!(c.ack(7, probe(1), 3));
        assert_eq!(c.step(40 * MS, &view(&live, Ok(()))), Step::Done(Ok(())));
    }

    #[test]
    fn formation_that_never_comes_fails_at_the_deadline_with_the_gap() {
        let live: BTreeSet<NodeId> = [2].into();
        let mut c = Check::new(
            CheckKind::Prepare,
            3,
            None,
            live.clone(),
            Duration::ZERO,
            timing(),
        );
        assert_eq!(c.step(999 * MS, &view(&live, Err(gap()))), Step::Wait);
        assert_eq!(
            c.step(1000 * MS, &view(&live, Err(gap()))),
            Step::Done(Err(CheckFailure::NotFormed {
                topology: Topology::HyParView,
                instance: 3,
                after: 1000 * MS,
                gap: gap(),
            }))
        );
    }

    #[test]
    fn missed_probes_are_resent_join_through_a_missing_member_and_fail_at_the_deadline() {
        let live: BTreeSet<NodeId> = [2, 3].into();
        let mut c = Check::new(
            CheckKind::Prepare,
            5,
            None,
            live.clone(),
            Duration::ZERO,
            timing(),
        );
        assert_eq!(c.step(Duration::ZERO, &view(&live, Ok(()))), Step::Probe);
        c.probe_sent(probe(1));
        c.ack(5, probe(1), 2);
        assert_eq!(c.step(50 * MS, &view(&live, Ok(()))), Step::Wait);
        // Second probe of the round: HyParView joins through node 3 first.
        assert_eq!(c.step(100 * MS, &view(&live, Ok(()))), Step::Join(3));
        assert_eq!(c.step(100 * MS, &view(&live, Ok(()))), Step::Probe);
        c.probe_sent(probe(2));
        assert_eq!(c.step(200 * MS, &view(&live, Ok(()))), Step::Probe);
        assert_eq!(
            c.step(500 * MS, &view(&live, Ok(()))),
            Step::Done(Err(CheckFailure::ProbeMissed {
                topology: Topology::HyParView,
                instance: 5,
                reached: 2,
                total: 3,
                missing: vec![3],
                after: 500 * MS,
            }))
        );
    }

    #[test]
    fn a_verify_probes_in_rounds_until_its_watch_ends() {
        let live: BTreeSet<NodeId> = [2].into();
        let mut c = Check::new(
            CheckKind::Verify,
            1,
            None,
            live.clone(),
            Duration::ZERO,
            timing(),
        );
        let round = |c: &mut Check, at: u32, seq: u64| {
            assert_eq!(c.step(at * MS, &view(&live, Ok(()))), Step::Probe);
            c.probe_sent(probe(seq));
            c.ack(1, probe(seq), 2);
        };
        round(&mut c, 0, 1);
        assert_eq!(c.step(10 * MS, &view(&live, Ok(()))), Step::Wait);
        assert_eq!(c.due(), 110 * MS, "the next round");
        assert_eq!(c.step(50 * MS, &view(&live, Ok(()))), Step::Wait);
        round(&mut c, 110, 2);
        assert_eq!(c.step(120 * MS, &view(&live, Ok(()))), Step::Wait);
        assert_eq!(c.due(), 220 * MS);
        round(&mut c, 220, 3);
        assert_eq!(c.step(230 * MS, &view(&live, Ok(()))), Step::Wait);
        assert_eq!(c.due(), 250 * MS, "the last round runs at the watch's end");
        round(&mut c, 250, 4);
        assert_eq!(c.step(251 * MS, &view(&live, Ok(()))), Step::Done(Ok(())));
    }

    #[test]
    fn losing_most_members_or_the_overlay_ends_the_check() {
        let live: BTreeSet<NodeId> = [2, 3, 4].into();
        let mut c = Check::new(
            CheckKind::Prepare,
            1,
            None,
            live.clone(),
            Duration::ZERO,
            timing(),
        );
        let alone: BTreeSet<NodeId> = [2].into();
        assert_eq!(
            c.step(MS, &view(&alone, Ok(()))),
            Step::Done(Err(CheckFailure::LostContact {
                lost: vec![3, 4],
                of: 3
            }))
        );
        // One lost of three is not waited for.
        let mut c = Check::new(
            CheckKind::Prepare,
            1,
            None,
            live.clone(),
            Duration::ZERO,
            timing(),
        );
        let most: BTreeSet<NodeId> = [2, 3].into();
        assert_eq!(c.step(MS, &view(&most, Ok(()))), Step::Probe);
        c.probe_sent(probe(1));
        c.ack(1, probe(1), 2);
        c.ack(1, probe(1), 3);
        assert_eq!(c.step(2 * MS, &view(&most, Ok(()))), Step::Done(Ok(())));
        let mut c = Check::new(
            CheckKind::Prepare,
            1,
            None,
            live.clone(),
            Duration::ZERO,
            timing(),
        );
        let gone = View {
            live: &live,
            version: version(&live),
            topology: None,
            formed: Ok(()),
        };
        assert_eq!(
            c.step(MS, &gone),
            Step::Done(Err(CheckFailure::TornDown { instance: 1 }))
        );
    }
}
