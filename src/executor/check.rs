//! [`Check`]: a prepare or verify in progress — wait until the overlay has
//! formed, check round trips over its links, then broadcast probes over it
//! until every expected live member has acked one or time runs out. The
//! actor advances it on every tick; the outcome answers the control plane.

use std::collections::BTreeSet;

use tokio::sync::oneshot;
use tokio::time::{Duration, Instant};

use super::actor::Actor;
use super::wire::Body;
use crate::control::executor::ExecError;
use crate::model::{NodeId, Topology};
use crate::overlay::{Command, InEvent, MessageId, Protocol};

/// Why the check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    Prepare,
    Verify,
    /// A periodic check of a steady HyParView/Plumtree overlay: nobody
    /// waits for it; a probe that misses members makes this node join
    /// through one of them (which heals a split graph), and a failure is
    /// recorded in the status (`last_failure`, `probes_failed`).
    Health,
}

/// The probing stage: one round of probes, re-sent every probe interval
/// until every expected member acked one.
#[derive(Debug)]
pub struct Probing {
    started: Instant,
    deadline: Instant,
    next: Instant,
    ids: BTreeSet<MessageId>,
    acks: BTreeSet<NodeId>,
    /// Probes sent this round.
    sent: u32,
}

impl Probing {
    fn new(now: Instant, timeout: Duration, interval: Duration, first: MessageId) -> Self {
        Probing {
            started: now,
            deadline: now + timeout,
            next: now + interval,
            ids: [first].into(),
            acks: BTreeSet::new(),
            sent: 1,
        }
    }
}

/// A prepare or verify in progress.
#[derive(Debug)]
pub struct Check {
    pub kind: CheckKind,
    pub instance: u64,
    /// The live members when the check started (this node excluded).
    expected: BTreeSet<NodeId>,
    form_started: Instant,
    form_deadline: Instant,
    /// A verify keeps probing in rounds until this instant (the watch
    /// after a cut-over); a prepare stops at its first good round.
    watch_until: Instant,
    /// While watching: when the next round starts.
    next_round: Option<Instant>,
    probing: Option<Probing>,
    reply: oneshot::Sender<Result<(), ExecError>>,
}

impl Check {
    pub fn new(
        kind: CheckKind,
        instance: u64,
        expected: BTreeSet<NodeId>,
        form_timeout: Duration,
        watch: Duration,
        reply: oneshot::Sender<Result<(), ExecError>>,
    ) -> Self {
        let now = Instant::now();
        let watch_until = match kind {
            CheckKind::Verify => now + watch,
            CheckKind::Prepare | CheckKind::Health => now,
        };
        Check {
            kind,
            instance,
            expected,
            form_started: now,
            form_deadline: now + form_timeout,
            watch_until,
            next_round: None,
            probing: None,
            reply,
        }
    }

    /// Answers the caller.
    pub fn finish(self, result: Result<(), String>) {
        if self.reply.send(result.map_err(ExecError)).is_err() {
            tracing::debug!(
                instance = self.instance,
                "nobody waits for the check any more"
            );
        }
    }

    /// Records a probe ack from `from`.
    pub fn ack(&mut self, instance: u64, probe: MessageId, from: NodeId) {
        if let Some(p) = &mut self.probing {
            if instance == self.instance && p.ids.contains(&probe) {
                p.acks.insert(from);
            }
        }
    }
}

impl Actor {
    /// Advances the check in progress, if any.
    pub async fn advance_check(&mut self) {
        let Some(mut check) = self.check.take() else {
            return;
        };
        let now = Instant::now();
        let id = check.instance;
        // Members lost during the check are not waited for, unless this
        // node lost most of them: then it is the one cut off, and a node
        // alone must not call its overlay healthy.
        let now_live = self.live();
        let live: BTreeSet<NodeId> = check.expected.intersection(&now_live).copied().collect();
        if live.len() * 2 < check.expected.len() {
            let lost: Vec<NodeId> = check.expected.difference(&live).copied().collect();
            let n = check.expected.len();
            return self.fail(
                check,
                format!("lost contact with {lost:?} of the {n} other members during the check"),
            );
        }
        let up = self.up.clone();
        let Some(inst) = self.instance_mut(id) else {
            return check.finish(Err(format!("overlay instance {id} was torn down")));
        };
        let topology = inst.topology;
        let formed = inst.formed(&live, &up);
        let links = inst.overlay.links();
        if check.probing.is_none() {
            if check.next_round.is_some_and(|t| now < t) {
                self.check = Some(check);
                return;
            }
            // Formed, and every round trip over its links under the
            // threshold (a slow one may be a spike: it has until the
            // formation deadline to come down).
            let ready = formed.and_then(|()| self.slow_link(&links).map_or(Ok(()), Err));
            match ready {
                Ok(()) => {
                    let pid = self.broadcast_on(id, &Body::Probe { instance: id }).await;
                    check.probing = Some(Probing::new(
                        now,
                        self.cfg.verify_timeout(),
                        self.cfg.probe_interval(),
                        pid,
                    ));
                }
                Err(why) if now >= check.form_deadline => {
                    let t = now - check.form_started;
                    return self.fail(
                        check,
                        format!(
                            "{topology} overlay (instance {id}) did not form within {t:.1?}: {why}"
                        ),
                    );
                }
                Err(_) => {}
            }
            self.check = Some(check);
            return;
        }
        let p = check.probing.as_mut().expect("probing");
        let missing: Vec<NodeId> = live.difference(&p.acks).copied().collect();
        if missing.is_empty() {
            if now < check.watch_until {
                // Watching after a cut-over: another round soon.
                check.probing = None;
                // The last round ends the watch: it runs at its end.
                let next = (now + self.cfg.probe_interval()).min(check.watch_until);
                check.next_round = Some(next);
                self.check = Some(check);
                return;
            }
            self.counters.probes_ok += 1;
            self.verified = Some(id);
            self.last_failure = None;
            self.mark_dirty();
            metrics::counter!("topod_executor_probes_total", "result" => "ok").increment(1);
            return check.finish(Ok(()));
        }
        if now >= p.deadline {
            let total = live.len() + 1;
            let reached = total - missing.len();
            let t = now - p.started;
            return self.fail(
                check,
                format!(
                    "probe over {topology} (instance {id}) reached {reached}/{total} members within {t:.1?}: missing {missing:?}"
                ),
            );
        }
        if now >= p.next {
            p.next = now + self.cfg.probe_interval();
            p.sent += 1;
            let sent = p.sent;
            // A HyParView graph (Plumtree's too) that the probes do not
            // cross is split: join through a member on the other side,
            // which links the two parts.
            if sent % 2 == 0 && matches!(topology, Topology::HyParView | Topology::PubSub) {
                let other = missing[(sent as usize / 2) % missing.len()];
                tracing::info!(
                    instance = id,
                    peer = other,
                    ?missing,
                    "probe does not reach every member: joining through one it missed"
                );
                self.drive(id, InEvent::Command(Command::Join(vec![other])))
                    .await;
            }
            let pid = self.broadcast_on(id, &Body::Probe { instance: id }).await;
            if let Some(p) = check.probing.as_mut() {
                p.ids.insert(pid);
            }
        }
        self.check = Some(check);
    }

    fn slow_link(&self, links: &[NodeId]) -> Option<String> {
        let limit = self.cfg.rtt_threshold();
        links.iter().find_map(|p| {
            let rtt = *self.rtt.get(p)?;
            (rtt > limit).then(|| {
                format!("round trip to node {p} is {rtt:.1?}, above the {limit:?} threshold")
            })
        })
    }

    fn fail(&mut self, check: Check, why: String) {
        tracing::warn!(instance = check.instance, kind = ?check.kind, reason = %why, "overlay check failed");
        self.counters.probes_failed += 1;
        self.last_failure = Some(why.clone());
        self.mark_dirty();
        metrics::counter!("topod_executor_probes_total", "result" => "failed").increment(1);
        check.finish(Err(why));
    }
}
