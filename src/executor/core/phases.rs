//! The phases of a switch on this node: build (start-up, catch-up),
//! prepare beside the current overlay, cut over, abort, verify, and the
//! check in progress that answers prepare and verify.

use std::time::Duration;

use super::check::{Check, CheckKind, Step, View};
use super::failure::{CheckFailure, FormGap, SupersededBy};
use super::{Core, Input, Output, Token};
use crate::control::executor::ExecError;
use crate::executor::instance::Instance;
use crate::executor::wire::Body;
use crate::model::{NodeId, OverlayConfig, Topology};
use crate::overlay::{Command, InEvent as OverlayIn, Protocol};

impl Core {
    pub(super) fn build(
        &mut self,
        now: Duration,
        instance: u64,
        topology: Topology,
        config: OverlayConfig,
        out: &mut Vec<Output>,
    ) -> Result<(), ExecError> {
        if self
            .slots
            .current()
            .is_some_and(|c| c.id == instance && c.topology == topology)
        {
            return Ok(());
        }
        if self.slots.shadow().is_some_and(|s| s.id == instance) {
            return self.cut_over(now, instance);
        }
        let inst = Instance::new(self.me, instance, topology, config, &self.voters)
            .map_err(|error| ExecError::Build { topology, error })?;
        self.start_instance(now, inst, true, out);
        Ok(())
    }

    pub(super) fn prepare(&mut self, now: Duration, input: Input, out: &mut Vec<Output>) {
        let Input::Prepare {
            token,
            id,
            topology,
            config,
        } = input
        else {
            return;
        };
        if let super::Slots::Draining { since, .. } = self.slots {
            if now < since + self.cfg.drain_min() {
                if let Some(Input::Prepare { token: old, .. }) =
                    self.queued.replace(Input::Prepare {
                        token,
                        id,
                        topology,
                        config,
                    })
                {
                    out.push(Output::Reply {
                        token: old,
                        result: Err(CheckFailure::superseded(SupersededBy::Prepare(id)).into()),
                    });
                }
                return;
            }
        }
        if let Some(o) = self.slots.drop_other() {
            self.teardown(now, o, out);
        }
        self.finish_check(CheckFailure::superseded(SupersededBy::Prepare(id)), out);
        if self.slots.current().is_none() {
            return out.push(Output::Reply {
                token,
                result: Err(ExecError::NoCurrent),
            });
        }
        let inst = match Instance::new(self.me, id, topology, config, &self.voters) {
            Ok(i) => i,
            Err(error) => {
                return out.push(Output::Reply {
                    token,
                    result: Err(ExecError::Build { topology, error }),
                })
            }
        };
        self.start_instance(now, inst, false, out);
        self.check = Some(self.new_check(CheckKind::Prepare, id, Some(token), now));
    }

    pub(super) fn cut_over(&mut self, now: Duration, id: u64) -> Result<(), ExecError> {
        if self.slots.current().is_some_and(|c| c.id == id) {
            return Ok(());
        }
        if !self.slots.cut_over(id, now) {
            return Err(ExecError::NotPrepared { id });
        }
        self.dirty = true;
        Ok(())
    }

    pub(super) fn abort(&mut self, now: Duration, id: u64, out: &mut Vec<Output>) {
        if self.slots.shadow().is_some_and(|s| s.id == id) {
            if let Some(o) = self.slots.drop_other() {
                self.teardown(now, o, out);
            }
        }
        if matches!(&self.queued, Some(Input::Prepare { id: q, .. }) if *q == id) {
            if let Some(Input::Prepare { token, .. }) = self.queued.take() {
                out.push(Output::Reply {
                    token,
                    result: Err(CheckFailure::TornDown { instance: id }.into()),
                });
            }
        }
    }

    pub(super) fn verify(&mut self, now: Duration, token: Token, out: &mut Vec<Output>) {
        let Some(cur) = self.slots.current().map(|c| c.id) else {
            return out.push(Output::Reply {
                token,
                result: Err(ExecError::NoOverlay),
            });
        };
        self.finish_check(CheckFailure::superseded(SupersededBy::Verify), out);
        self.check = Some(self.new_check(CheckKind::Verify, cur, Some(token), now));
    }

    /// Ends the check in progress (if any) with `failure`, unrecorded (it
    /// was not the overlay's fault).
    fn finish_check(&mut self, failure: CheckFailure, out: &mut Vec<Output>) {
        if let Some(c) = self.check.take() {
            if let Some(token) = c.token {
                out.push(Output::Reply {
                    token,
                    result: Err(failure.into()),
                });
            }
        }
    }

    /// Starts the periodic check of a steady HyParView/Plumtree overlay
    /// when it is due and nothing else is being checked.
    pub(super) fn start_health_check(&mut self, now: Duration) {
        let Some(every) = self.cfg.health_interval() else {
            return;
        };
        if now < self.next_health || self.check.is_some() || self.slots.other().is_some() {
            return;
        }
        self.next_health = now + every;
        let Some(cur) = self
            .slots
            .current()
            .filter(|c| matches!(c.topology, Topology::HyParView | Topology::PubSub))
            .map(|c| c.id)
        else {
            return;
        };
        // A node that does not probe has nothing to learn from a health
        // check (its formation is kept by the overlay itself).
        if self.prober(cur) {
            self.check = Some(self.new_check(CheckKind::Health, cur, None, now));
        }
    }

    fn new_check(
        &self,
        kind: CheckKind,
        instance: u64,
        token: Option<Token>,
        now: Duration,
    ) -> Check {
        Check::with_probes(
            kind,
            instance,
            token,
            self.live.clone(),
            now,
            self.timing(),
            self.prober(instance),
        )
    }

    /// Whether this node probes overlay `instance`: every node, or the
    /// `executor.probers` live nodes of lowest rank by a hash of
    /// (instance, node) — the same choice on every node that sees the
    /// same members.
    pub(super) fn prober(&self, instance: u64) -> bool {
        let k = self.cfg.probers;
        if k == 0 {
            return true;
        }
        let rank = |n: NodeId| {
            (
                crate::sim::latency::mix64(instance ^ crate::sim::latency::mix64(n)),
                n,
            )
        };
        let mine = rank(self.me);
        let below = self.live.iter().filter(|m| rank(**m) < mine).count() as u64;
        below < k
    }

    /// Steps the check in progress until it waits or is done.
    pub(super) fn advance_check(&mut self, now: Duration, out: &mut Vec<Output>) {
        // A bound on the steps of one call (a join is followed by a probe).
        for _ in 0..4 {
            let Some(check) = self.check.as_mut() else {
                return;
            };
            let id = check.instance;
            let needs = check.needs_formation();
            let (topology, formed) = match self.slots.get(id) {
                Some(inst) if needs => (
                    Some(inst.topology),
                    inst.formed(&self.live, &self.up).and_then(|()| {
                        slow_link(&self.rtt, &inst.overlay.links(), self.cfg.rtt_threshold())
                    }),
                ),
                Some(inst) => (Some(inst.topology), Ok(())),
                None => (None, Ok(())),
            };
            let view = View {
                live: &self.live,
                version: self.live_version,
                topology,
                formed,
            };
            match check.step(now, &view) {
                Step::Wait => return,
                Step::Probe => {
                    let pid = self.next_id();
                    if let Some(c) = self.check.as_mut() {
                        c.probe_sent(pid);
                    }
                    self.broadcast_with(now, id, pid, &Body::Probe { instance: id }, out);
                }
                Step::Join(peer) => {
                    tracing::info!(
                        instance = id,
                        peer,
                        "probe does not reach every member: joining through one it missed"
                    );
                    self.drive(now, id, OverlayIn::Command(Command::Join(vec![peer])), out);
                }
                Step::Done(result) => {
                    let check = self.check.take().expect("a check in progress");
                    self.check_done(check, result, out);
                    return;
                }
            }
        }
    }

    fn check_done(
        &mut self,
        check: Check,
        result: Result<(), CheckFailure>,
        out: &mut Vec<Output>,
    ) {
        match &result {
            Ok(()) => {
                self.counters.probes_ok += 1;
                self.verified = Some(check.instance);
                self.last_failure = None;
                metrics::counter!("topod_executor_probes_total", "result" => "ok").increment(1);
            }
            Err(why) => {
                tracing::warn!(instance = check.instance, kind = ?check.kind, reason = %why, "overlay check failed");
                self.counters.probes_failed += 1;
                self.last_failure = Some(why.to_string());
                metrics::counter!("topod_executor_probes_total", "result" => "failed").increment(1);
            }
        }
        self.dirty = true;
        if let Some(token) = check.token {
            out.push(Output::Reply {
                token,
                result: result.map_err(ExecError::from),
            });
        }
    }
}

/// The first link whose measured round trip is above `limit`.
fn slow_link(
    rtt: &std::collections::BTreeMap<NodeId, Duration>,
    links: &[NodeId],
    limit: Duration,
) -> Result<(), FormGap> {
    match links.iter().find_map(|p| {
        let r = *rtt.get(p)?;
        (r > limit).then_some((*p, r))
    }) {
        Some((peer, rtt)) => Err(FormGap::SlowRoundTrip { peer, rtt, limit }),
        None => Ok(()),
    }
}
