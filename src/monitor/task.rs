//! The monitor task: runs on every node, works only while its node leads.
//!
//! When the node becomes leader in term T, the task starts a fresh run
//! (round 1, empty rule memory) and does a round at once, then one every
//! `policy.monitor_interval_ms` (read anew each round, so a policy change
//! takes effect at the next round). It stops the moment the node is no
//! longer leader of T. A proposal it makes carries `fence_term: T`: if it
//! reaches the log in another term (a deposed leader's late write), the
//! state machine refuses it (`stale_term`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::ServerState;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::derive::{derive, DeriveSettings};
use super::gather::{Gatherer, Member};
use super::round::{MonitorHandle, MonitorRound, RoundAction};
use super::telemetry;
use crate::config::{MonitorConfig, OverlayDefaults};
use crate::control::applied::AppliedRx;
use crate::control::proposer::Proposer;
use crate::control::types::Raft;
use crate::model::{
    Command, CommandResponse, NodeId, OverlayConfig, ProposeSwitch, SwitchReason, Topology, Trigger,
};
use crate::rules::{self, Decision, RuleContext, RuleMemory};

/// Shortest and longest window a round asks summaries for.
const WINDOW_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(600));

/// The monitor's local settings (`[monitor]`).
pub type MonitorSettings = MonitorConfig;

/// The monitor task of one node.
pub struct Monitor {
    pub raft: Raft,
    pub applied: AppliedRx,
    pub proposer: Arc<Proposer>,
    pub me: NodeId,
    pub handle: MonitorHandle,
    /// The configured overlay defaults, for the config of a switch it
    /// proposes.
    pub overlay: OverlayDefaults,
    pub settings: MonitorSettings,
    /// How members are called (plain or mutual TLS).
    pub peer: crate::security::PeerHttp,
}

/// Why [`Monitor::lead`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeadEnd {
    /// Another term or role: look at Raft's metrics again.
    NoLongerLeads,
    /// Cancelled, or Raft or the applied state stopped: the monitor ends.
    Stopped,
}

/// Whether this node leads in `term` now.
fn leads_in(raft: &Raft, term: u64) -> bool {
    let m = raft.metrics();
    let m = m.borrow();
    m.state == ServerState::Leader && m.current_term == term
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Monitor {
    /// Runs until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        telemetry::describe();
        let gatherer = Gatherer::new(
            &self.peer,
            self.settings.gather_concurrency as usize,
            self.settings.gather_timeout(),
        );
        let mut metrics = self.raft.metrics();
        loop {
            let term = {
                let m = metrics.borrow_and_update();
                (m.state == ServerState::Leader).then_some(m.current_term)
            };
            if let Some(term) = term {
                tracing::info!(term, "monitor starts: this node leads");
                let end = self.lead(term, &gatherer, &cancel).await;
                if end == LeadEnd::Stopped {
                    // Raft's metrics channel closed (shutdown) or cancel:
                    // looking at the last metrics again would say "leads"
                    // and spin.
                    return;
                }
                tracing::info!(term, "monitor stops: this node no longer leads");
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = metrics.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Rounds while this node leads in `term`.
    async fn lead(&self, term: u64, gatherer: &Gatherer, cancel: &CancellationToken) -> LeadEnd {
        let mut memory = RuleMemory::default();
        let mut metrics = self.raft.metrics();
        let mut round = 0u64;
        loop {
            if cancel.is_cancelled() {
                return LeadEnd::Stopped;
            }
            if !leads_in(&self.raft, term) {
                return LeadEnd::NoLongerLeads;
            }
            round += 1;
            let started = Instant::now();
            let interval =
                Duration::from_millis(self.applied.borrow().state.policy.monitor_interval_ms);
            let r = self
                .round(term, round, interval, gatherer, &mut memory)
                .await;
            telemetry::record(&r);
            self.handle.publish(r);
            // Sleep until the next round; a policy change of the interval
            // applies to the round being waited for.
            let mut applied = self.applied.clone();
            loop {
                let interval = applied.borrow_and_update().state.policy.monitor_interval_ms;
                let next = started + Duration::from_millis(interval);
                tokio::select! {
                    _ = cancel.cancelled() => return LeadEnd::Stopped,
                    _ = tokio::time::sleep_until(next) => break,
                    changed = applied.changed() => if changed.is_err() { return LeadEnd::Stopped },
                    changed = metrics.changed() => {
                        if changed.is_err() {
                            return LeadEnd::Stopped;
                        }
                        if !leads_in(&self.raft, term) {
                            return LeadEnd::NoLongerLeads;
                        }
                    }
                }
            }
        }
    }

    /// One round: gather, derive, evaluate, act.
    async fn round(
        &self,
        term: u64,
        round: u64,
        interval: Duration,
        gatherer: &Gatherer,
        memory: &mut RuleMemory,
    ) -> MonitorRound {
        let started = Instant::now();
        let started_at_ms = now_ms();
        let applied = self.applied.borrow().clone();
        let membership = applied.membership.membership();
        let members: Vec<Member> = membership
            .nodes()
            .map(|(id, addr)| Member {
                id: *id,
                base: self.peer.api_base(addr),
            })
            .collect();
        let ids: Vec<NodeId> = members.iter().map(|m| m.id).collect();
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        let window = interval.clamp(WINDOW_RANGE.0, WINDOW_RANGE.1);
        let gathered = gatherer.gather(&members, window).await;
        for (node, e) in &gathered.failures {
            tracing::debug!(node, error = %e, "member's summary not received");
        }
        let unreachable = gathered.unreachable();
        let policy = &applied.state.policy;
        let settings = DeriveSettings {
            link_capacity_bytes_per_s: self.settings.link_capacity_bytes_per_s as f64,
            max_links_per_node: self.settings.max_links_per_node as f64,
        };
        let cluster = derive(
            &ids,
            &gathered.summaries,
            &unreachable,
            &settings,
            &policy.thresholds,
        );
        let now = now_ms().max(applied.state.last_stamp_ms);
        let servers_available = !voters.is_empty();
        let ctx = RuleContext::from_state(&applied.state, now, servers_available);
        let app = super::derive::aggregate_app(&gathered.summaries);
        let evaluation = rules::evaluate_with_app(&ctx, &cluster, &app, policy, memory);
        *memory = evaluation.memory.clone();
        let action = match &evaluation.decision {
            Decision::Switch {
                target,
                rule,
                explanation,
            } => {
                let proposal = ProposeSwitch {
                    target: *target,
                    config: self.config_for(*target, &voters),
                    reason: SwitchReason::Auto { rule: rule.clone() },
                    request_id: Some(format!("auto-n{}-t{term}-r{round}", self.me)),
                    requested_by: format!("monitor@node{}", self.me),
                    trigger: Some(Trigger {
                        metrics: cluster.clone(),
                        explanation: explanation.clone(),
                    }),
                    fence_term: Some(term),
                };
                self.propose(term, proposal).await
            }
            Decision::Stay | Decision::Deferred { .. } => RoundAction::None,
        };
        MonitorRound {
            round,
            leader: self.me,
            term,
            started_at_ms,
            duration_ms: started.elapsed().as_millis() as u64,
            asked: members.len() as u32,
            unreachable,
            bytes_gathered: gathered.bytes,
            metrics: cluster,
            app,
            evaluation,
            action,
        }
    }

    /// The effective config of an automatic switch to `target`: the
    /// configured defaults, with `client_server`'s servers resolved to the
    /// voters when none are configured (as for an operator's switch).
    fn config_for(&self, target: Topology, voters: &[NodeId]) -> OverlayConfig {
        let mut config = self.overlay.default_for(target);
        if let OverlayConfig::ClientServer(cs) = &mut config {
            if cs.servers.is_empty() {
                cs.servers = voters.to_vec();
            }
        }
        config
    }

    async fn propose(&self, term: u64, proposal: ProposeSwitch) -> RoundAction {
        if !leads_in(&self.raft, term) {
            return RoundAction::Failed {
                error: format!("no longer the leader of term {term}"),
            };
        }
        let target = proposal.target;
        match self.proposer.write(Command::ProposeSwitch(proposal)).await {
            Ok(CommandResponse::Accepted { id }) => {
                tracing::info!(id, %target, term, "monitor proposed an automatic switch");
                RoundAction::Proposed { id }
            }
            Ok(CommandResponse::Rejected(r)) => {
                tracing::info!(code = r.code(), reason = %r, "automatic switch refused");
                RoundAction::Rejected {
                    code: r.code().to_string(),
                    message: r.to_string(),
                }
            }
            Ok(CommandResponse::Applied | CommandResponse::Batch(_)) => RoundAction::Failed {
                error: "unexpected answer to a proposal".into(),
            },
            Err(e) => {
                tracing::warn!(error = %e, "automatic switch not written");
                RoundAction::Failed {
                    error: e.to_string(),
                }
            }
        }
    }
}
