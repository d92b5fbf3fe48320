//! The replicated topology state and the pure function that applies a log
//! command to it.
//!
//! [`TopologyState::apply`] is deterministic: it reads no clock (time is the
//! leader's stamp in the entry, clamped so it never goes backwards) and
//! iterates only ordered collections. Every rejection leaves the state
//! exactly as it was, except that a proposal carrying a request id
//! remembers its answer (so a retry gets the same one) unless the
//! rejection is retryable (see [`Rules`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::command::{Command, CommandResponse, Phase, ProposeSwitch, Trigger};
use super::policy::{Policy, PolicyUpdate};
use super::token::Tokens;
use super::{NodeId, OverlayConfig, Rejection, SwitchReason, Topology, TransitionId};

pub use super::policy::{MAX_COOLDOWN_MS, MAX_HISTORY_RETENTION};

/// Request ids remembered for idempotent proposals.
pub const REQUEST_ID_MEMORY: usize = 1024;
/// Longest accepted request id, bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Which rules an entry is applied by: those of its envelope's version.
///
/// `V1` entries apply exactly as the build that wrote them did, so a node
/// replaying an old log reaches the state every other node reached. `V2`
/// (first written by the build that introduced `Envelope::V2`) differs in
/// two ways (issue 11): a retryable rejection (`transition_in_progress`,
/// `cooldown_active`, `stale_term`) is not remembered under the
/// proposal's request id, and a commit never goes past a member that
/// reported `Failed`, even one listed missing. A build older than `V2`
/// cannot decode a `V2` entry and stops applying at it, so builds never
/// disagree on a `V2` entry's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    V1,
    V2,
}

/// Facts about the entry being applied that come from Raft, not from the
/// command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyContext {
    /// Log index of the entry.
    pub index: u64,
    /// Term of the leader that appended the entry.
    pub term: u64,
    /// Voters and learners of the effective membership at this index.
    pub members: Vec<NodeId>,
}

/// A transition between `Preparing` and its commit or abort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub id: TransitionId,
    pub from: Topology,
    pub from_config: OverlayConfig,
    pub to: Topology,
    pub to_config: OverlayConfig,
    pub reason: SwitchReason,
    pub requested_by: String,
    pub proposed_at_ms: u64,
    /// Members that must prepare: the membership at the proposal's index.
    pub members: Vec<NodeId>,
    /// Reports received so far.
    pub reports: BTreeMap<NodeId, Phase>,
    /// The figures behind an automatic switch.
    pub trigger: Option<Trigger>,
    /// The client's idempotency key, if it gave one.
    pub request_id: Option<String>,
}

impl Transition {
    /// Members that reported `Prepared`.
    pub fn prepared(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.reports
            .iter()
            .filter(|(_, p)| **p == Phase::Prepared)
            .map(|(n, _)| *n)
    }

    /// The first `Failed` report, if any.
    pub fn failure(&self) -> Option<(NodeId, &str)> {
        self.reports.iter().find_map(|(n, p)| match p {
            Phase::Failed { reason } => Some((*n, reason.as_str())),
            _ => None,
        })
    }
}

/// How a transition ended (or that it has not yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    InProgress,
    Committed {
        at_ms: u64,
        /// Members the commit went ahead without.
        missing: Vec<NodeId>,
        /// The epoch the commit started.
        epoch: u64,
    },
    Aborted {
        at_ms: u64,
        reason: String,
    },
}

/// One transition in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub id: TransitionId,
    pub from: Topology,
    pub to: Topology,
    pub reason: SwitchReason,
    pub requested_by: String,
    pub proposed_at_ms: u64,
    pub outcome: Outcome,
    /// Members that had to prepare (filled in when the transition ends;
    /// while in flight they are in [`TopologyState::in_flight`]).
    pub members: Vec<NodeId>,
    /// Prepare reports (`Prepared` / `Failed`) per node, filled in when the
    /// transition ends.
    pub reports: BTreeMap<NodeId, Phase>,
    /// Post-cut-over reports (`Verified` / `Unhealthy`) per node.
    pub health: BTreeMap<NodeId, Phase>,
    /// The figures and explanation behind an automatic switch.
    pub trigger: Option<Trigger>,
    /// The client's idempotency key, if it gave one (so that a client
    /// whose answer was lost can find out whether its switch landed).
    pub request_id: Option<String>,
}

/// The whole replicated state. Small: snapshots serialise it whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopologyState {
    pub topology: Topology,
    pub config: OverlayConfig,
    /// Grows by one per committed switch.
    pub epoch: u64,
    /// The transition that created the current overlay (0: bootstrap).
    pub current_instance: TransitionId,
    /// The config in force before the last committed switch (what a
    /// rollback returns to).
    pub previous_config: Option<OverlayConfig>,
    pub in_flight: Option<Transition>,
    pub policy: Policy,
    /// Whether a `SetPolicy` was ever applied (bootstrap sets it once).
    pub policy_set: bool,
    /// Time of the last committed switch, for the cooldown.
    pub last_switch_ms: Option<u64>,
    /// Latest leader stamp seen; time never goes backwards.
    pub last_stamp_ms: u64,
    /// Newest last; bounded by `policy.history_retention`. Shared
    /// copy-on-write: cloning the state (every apply publishes a copy) does
    /// not copy the history, and a changed history is a new allocation,
    /// which the store uses to write it only when it changed.
    pub history: Arc<VecDeque<HistoryRecord>>,
    /// Answers to recent request ids, oldest first.
    pub requests: VecDeque<(String, CommandResponse)>,
    /// The admin API's tokens (hashes only). Shared copy-on-write, like
    /// the history: publishing a state does not copy them.
    pub tokens: Arc<Tokens>,
}

impl Default for TopologyState {
    fn default() -> Self {
        TopologyState {
            topology: Topology::FullMesh,
            config: OverlayConfig::default_for(Topology::FullMesh),
            epoch: 0,
            current_instance: 0,
            previous_config: None,
            in_flight: None,
            policy: Policy::default(),
            policy_set: false,
            last_switch_ms: None,
            last_stamp_ms: 0,
            history: Arc::new(VecDeque::new()),
            requests: VecDeque::new(),
            tokens: Arc::default(),
        }
    }
}

/// Whether a rejection may not hold for a retry of the same proposal:
/// such answers are not remembered under a request id (`V2` rules).
pub fn is_retryable(answer: &CommandResponse) -> bool {
    matches!(
        answer,
        CommandResponse::Rejected(
            Rejection::TransitionInProgress { .. }
                | Rejection::CooldownActive { .. }
                | Rejection::StaleTerm { .. }
        )
    )
}

fn stale(detail: impl Into<String>) -> CommandResponse {
    CommandResponse::Rejected(Rejection::StaleTransition {
        detail: detail.into(),
    })
}

impl TopologyState {
    /// Applies one command stamped `stamp_ms` by the leader, by the rules
    /// of the envelope this build writes ([`Rules::V2`]).
    pub fn apply(
        &mut self,
        ctx: &ApplyContext,
        stamp_ms: u64,
        command: &Command,
    ) -> CommandResponse {
        self.apply_with(Rules::V2, ctx, stamp_ms, command)
    }

    /// Applies one command by `rules` (the version of its envelope).
    pub fn apply_with(
        &mut self,
        rules: Rules,
        ctx: &ApplyContext,
        stamp_ms: u64,
        command: &Command,
    ) -> CommandResponse {
        let now = stamp_ms.max(self.last_stamp_ms);
        let replay = match command {
            Command::ProposeSwitch(p) => p
                .request_id
                .as_ref()
                .is_some_and(|rid| self.remembered(rules, rid).is_some()),
            _ => false,
        };
        let response = match command {
            Command::ProposeSwitch(p) => self.propose(rules, ctx, now, p),
            Command::ReportPhase { id, node, phase } => self.report(*id, *node, phase),
            Command::CommitSwitch { id, term, missing } => {
                self.commit(rules, ctx, now, *id, *term, missing)
            }
            Command::AbortSwitch { id, term, reason } => self.abort(ctx, now, *id, *term, reason),
            Command::SetPolicy(update) => self.set_policy(update),
            Command::ReportPhases { reports } => CommandResponse::Batch(
                reports
                    .iter()
                    .map(|r| self.report(r.id, r.node, &r.phase))
                    .collect(),
            ),
            Command::CreateToken { token, initial } => {
                let mut tokens = (*self.tokens).clone();
                match tokens.create(now, token, *initial) {
                    Ok(()) => {
                        self.tokens = Arc::new(tokens);
                        CommandResponse::Applied
                    }
                    Err(r) => CommandResponse::Rejected(r),
                }
            }
            Command::RevokeToken { name } => match Arc::make_mut(&mut self.tokens).revoke(name) {
                Ok(()) => CommandResponse::Applied,
                Err(r) => CommandResponse::Rejected(r),
            },
            // Each command applies (and moves the clock) on its own; the
            // batch itself changes nothing more.
            Command::Batch { commands } => {
                return CommandResponse::Batch(
                    commands
                        .iter()
                        .map(|c| self.apply_in_batch(rules, ctx, stamp_ms, c))
                        .collect(),
                )
            }
        };
        // A rejection changes no state, not even the clock (a proposal's
        // request id is the one exception: it remembers its answer); nor
        // does a repeated request id, which only replays the first answer.
        if !replay && !matches!(response, CommandResponse::Rejected(_)) {
            self.last_stamp_ms = now;
        }
        response
    }

    /// One command of a [`Command::Batch`]: what `apply_with` does to a
    /// batchable command; anything else (never written in a batch) is
    /// rejected without a change.
    fn apply_in_batch(
        &mut self,
        rules: Rules,
        ctx: &ApplyContext,
        stamp_ms: u64,
        command: &Command,
    ) -> CommandResponse {
        if command.batchable() {
            self.apply_with(rules, ctx, stamp_ms, command)
        } else {
            CommandResponse::Rejected(Rejection::NotBatchable)
        }
    }

    /// The newest history record proposed with `request_id`.
    pub fn record_by_request(&self, request_id: &str) -> Option<&HistoryRecord> {
        self.history
            .iter()
            .rev()
            .find(|r| r.request_id.as_deref() == Some(request_id))
    }

    /// A history record by transition id.
    pub fn record(&self, id: TransitionId) -> Option<&HistoryRecord> {
        self.history.iter().rev().find(|r| r.id == id)
    }

    /// Up to `limit` records with `id < before`, newest first.
    pub fn history_page(&self, limit: usize, before: Option<TransitionId>) -> Vec<HistoryRecord> {
        self.history
            .iter()
            .rev()
            .filter(|r| before.is_none_or(|b| r.id < b))
            .take(limit)
            .cloned()
            .collect()
    }

    fn record_mut(&mut self, id: TransitionId) -> Option<&mut HistoryRecord> {
        Arc::make_mut(&mut self.history)
            .iter_mut()
            .rev()
            .find(|r| r.id == id)
    }

    /// The remembered answer to `request_id` that `rules` replay: under
    /// `V2` a retryable rejection (remembered by a `V1` entry) is not
    /// replayed but decided anew.
    fn remembered(&self, rules: Rules, request_id: &str) -> Option<&CommandResponse> {
        self.requests
            .iter()
            .find(|(r, _)| r == request_id)
            .map(|(_, answer)| answer)
            .filter(|answer| rules == Rules::V1 || !is_retryable(answer))
    }

    fn propose(
        &mut self,
        rules: Rules,
        ctx: &ApplyContext,
        now: u64,
        p: &ProposeSwitch,
    ) -> CommandResponse {
        if let Some(rid) = &p.request_id {
            if let Some(answer) = self.remembered(rules, rid) {
                return answer.clone();
            }
        }
        let answer = self.decide_proposal(ctx, now, p);
        let Some(rid) = &p.request_id else {
            return answer;
        };
        if rules == Rules::V2 {
            // A V1 entry may have remembered a retryable answer: the new
            // one takes its place.
            self.requests.retain(|(r, _)| r != rid);
            if is_retryable(&answer) {
                return answer;
            }
        }
        if rid.len() <= MAX_REQUEST_ID_LEN {
            if self.requests.len() >= REQUEST_ID_MEMORY {
                self.requests.pop_front();
            }
            self.requests.push_back((rid.clone(), answer.clone()));
        }
        answer
    }

    fn decide_proposal(
        &mut self,
        ctx: &ApplyContext,
        now: u64,
        p: &ProposeSwitch,
    ) -> CommandResponse {
        if let Err(rejection) = self.check_proposal(ctx, now, p) {
            return CommandResponse::Rejected(rejection);
        }
        let transition = Transition {
            id: ctx.index,
            from: self.topology,
            from_config: self.config.clone(),
            to: p.target,
            to_config: p.config.clone(),
            reason: p.reason.clone(),
            requested_by: p.requested_by.clone(),
            proposed_at_ms: now,
            members: ctx.members.clone(),
            reports: BTreeMap::new(),
            trigger: p.trigger.clone(),
            request_id: p.request_id.clone(),
        };
        Arc::make_mut(&mut self.history).push_back(HistoryRecord {
            id: ctx.index,
            from: transition.from,
            to: transition.to,
            reason: transition.reason.clone(),
            requested_by: transition.requested_by.clone(),
            proposed_at_ms: now,
            outcome: Outcome::InProgress,
            members: Vec::new(),
            reports: BTreeMap::new(),
            health: BTreeMap::new(),
            trigger: transition.trigger.clone(),
            request_id: transition.request_id.clone(),
        });
        self.in_flight = Some(transition);
        self.prune_history();
        CommandResponse::Accepted { id: ctx.index }
    }

    fn check_proposal(
        &self,
        ctx: &ApplyContext,
        now: u64,
        p: &ProposeSwitch,
    ) -> Result<(), Rejection> {
        if let Some(term) = p.fence_term {
            if term != ctx.term {
                return Err(Rejection::StaleTerm {
                    decided_in: term,
                    appended_in: ctx.term,
                });
            }
        }
        if p.config.topology() != p.target {
            return Err(Rejection::UnknownTopology {
                detail: format!(
                    "overlay config is for {} but the target is {}",
                    p.config.topology(),
                    p.target
                ),
            });
        }
        if let Err(e) = p.config.validate() {
            return Err(Rejection::InvalidConfig {
                detail: e.to_string(),
            });
        }
        if let Some(t) = &self.in_flight {
            return Err(Rejection::TransitionInProgress { id: t.id });
        }
        if let SwitchReason::Rollback { of } = p.reason {
            self.check_rollback(of, p.target)?;
        }
        if p.target == self.topology && p.config == self.config {
            return Err(Rejection::AlreadyCurrent { topology: p.target });
        }
        if p.reason.is_automatic() {
            if let Some(last) = self.last_switch_ms {
                let elapsed = now.saturating_sub(last);
                if elapsed < self.policy.cooldown_ms {
                    return Err(Rejection::CooldownActive {
                        remaining_ms: self.policy.cooldown_ms - elapsed,
                    });
                }
            }
        }
        Ok(())
    }

    fn check_rollback(&self, of: TransitionId, target: Topology) -> Result<(), Rejection> {
        let stale = |detail: String| Err(Rejection::StaleTransition { detail });
        if of != self.current_instance || of == 0 {
            return stale(format!(
                "rollback of {of} but the last committed transition is {}",
                self.current_instance
            ));
        }
        let Some(record) = self.record(of) else {
            return stale(format!("transition {of} is no longer in the history"));
        };
        if matches!(record.reason, SwitchReason::Rollback { .. }) {
            return stale(format!("transition {of} is itself a rollback"));
        }
        if record.from != target {
            return stale(format!(
                "rollback of {of} must return to {}, not {target}",
                record.from
            ));
        }
        Ok(())
    }

    fn report(&mut self, id: TransitionId, node: NodeId, phase: &Phase) -> CommandResponse {
        if phase.is_prepare_report() {
            let Some(t) = self.in_flight.as_mut().filter(|t| t.id == id) else {
                return stale(format!("transition {id} is not in flight"));
            };
            if !t.members.contains(&node) {
                return stale(format!("node {node} is not a member of transition {id}"));
            }
            t.reports.insert(node, phase.clone());
            return CommandResponse::Applied;
        }
        if id != self.current_instance || id == 0 {
            return stale(format!(
                "health report for {id} but the current overlay is from transition {}",
                self.current_instance
            ));
        }
        match self.record_mut(id) {
            Some(r) => {
                r.health.insert(node, phase.clone());
                CommandResponse::Applied
            }
            None => stale(format!("transition {id} is no longer in the history")),
        }
    }

    /// Checks that `id` is in flight and that the decision was made in the
    /// term of the entry carrying it.
    fn check_decision(
        &self,
        ctx: &ApplyContext,
        id: TransitionId,
        term: u64,
    ) -> Result<(), CommandResponse> {
        if term != ctx.term {
            return Err(stale(format!(
                "decision made in term {term} but appended in term {}",
                ctx.term
            )));
        }
        match &self.in_flight {
            Some(t) if t.id == id => Ok(()),
            _ => Err(stale(format!("transition {id} is not in flight"))),
        }
    }

    fn commit(
        &mut self,
        rules: Rules,
        ctx: &ApplyContext,
        now: u64,
        id: TransitionId,
        term: u64,
        missing: &[NodeId],
    ) -> CommandResponse {
        if let Err(r) = self.check_decision(ctx, id, term) {
            return r;
        }
        let t = self.in_flight.as_ref().expect("checked above");
        // A member listed missing may have reported `Failed` after the
        // coordinator looked: that report decides (the coordinator aborts).
        if rules == Rules::V2 {
            if let Some((n, reason)) = t.failure() {
                return stale(format!(
                    "node {n} reported Failed for {id} ({reason}): it cannot be committed"
                ));
            }
        }
        if let Some(n) = t
            .members
            .iter()
            .find(|n| !missing.contains(n) && t.reports.get(n) != Some(&Phase::Prepared))
        {
            return stale(format!("node {n} has not reported Prepared for {id}"));
        }
        let t = self.in_flight.take().expect("checked above");
        self.previous_config = Some(std::mem::replace(&mut self.config, t.to_config.clone()));
        self.topology = t.to;
        self.epoch += 1;
        self.current_instance = id;
        self.last_switch_ms = Some(now);
        let epoch = self.epoch;
        if let Some(r) = self.record_mut(id) {
            r.outcome = Outcome::Committed {
                at_ms: now,
                missing: missing.to_vec(),
                epoch,
            };
            r.members = t.members;
            r.reports = t.reports;
        }
        CommandResponse::Applied
    }

    fn abort(
        &mut self,
        ctx: &ApplyContext,
        now: u64,
        id: TransitionId,
        term: u64,
        reason: &str,
    ) -> CommandResponse {
        if let Err(r) = self.check_decision(ctx, id, term) {
            return r;
        }
        let t = self.in_flight.take().expect("checked above");
        if let Some(r) = self.record_mut(id) {
            r.outcome = Outcome::Aborted {
                at_ms: now,
                reason: reason.to_string(),
            };
            r.members = t.members;
            r.reports = t.reports;
        }
        CommandResponse::Applied
    }

    fn set_policy(&mut self, update: &PolicyUpdate) -> CommandResponse {
        if let Err(e) = update.check() {
            return CommandResponse::Rejected(e.into());
        }
        if let Err(e) = update.apply(&mut self.policy) {
            return CommandResponse::Rejected(e.into());
        }
        self.policy_set = true;
        self.prune_history();
        CommandResponse::Applied
    }

    /// Drops the oldest records beyond the retention, never the in-flight
    /// one (it is the newest).
    fn prune_history(&mut self) {
        let keep = self.policy.history_retention as usize;
        if self.history.len() > keep {
            let history = Arc::make_mut(&mut self.history);
            while history.len() > keep {
                history.pop_front();
            }
        }
    }
}
