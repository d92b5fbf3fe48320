//! Drives this node's [`Executor`] from the applied state.
//!
//! One task per node follows the latest applied state (a node that catches
//! up skips intermediate states): it builds the committed overlay at
//! start-up, prepares the target of a transition in flight once the
//! applied state has reached the committed index (never one a later entry
//! already decided), and reports
//! `Prepared` or `Failed`, cuts over on commit and reports `Verified` or
//! `Unhealthy`, and tears the shadow down on abort. Reports go through a
//! [`Reporter`], which writes them on the leader (forwarding if needed).

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;

use super::applied::{Applied, AppliedRx};
use super::executor::Executor;
use crate::model::{NodeId, Phase, TransitionId};

/// Sends a node's phase report to the leader. Retries are the reporter's
/// business; an error here means the report was given up.
pub trait Reporter: Send + Sync + 'static {
    fn report(
        &self,
        id: TransitionId,
        node: NodeId,
        phase: Phase,
    ) -> BoxFuture<'static, Result<(), String>>;
}

/// How far the log is committed, as this node's Raft knows it. The driver
/// prepares a transition only once the applied state has reached it: a
/// node that replays its log (after a restart or while it catches up)
/// must not prepare a transition that a later entry already decided.
pub trait CommitIndex: Send + Sync + 'static {
    /// The index of the last committed entry known here (`None`: not
    /// known, e.g. Raft stopped).
    fn committed(&self) -> BoxFuture<'static, Option<u64>>;
}

impl CommitIndex for super::types::Raft {
    fn committed(&self) -> BoxFuture<'static, Option<u64>> {
        let raft = self.clone();
        Box::pin(async move {
            match raft.with_raft_state(|s| s.committed.map(|l| l.index)).await {
                Ok(index) => Some(index.unwrap_or(0)),
                Err(e) => {
                    tracing::debug!(error = %e, "committed index unknown: raft stopped");
                    None
                }
            }
        })
    }
}

/// The executor's state machine as the contract names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorState {
    /// Nothing built yet.
    Starting,
    Steady {
        current: TransitionId,
    },
    Preparing {
        current: TransitionId,
        shadow: TransitionId,
    },
    /// This node reported `Failed` for transition `id` and tore its shadow
    /// down; it waits for the leader's abort without preparing `id` again
    /// (its applied state may not show its own report yet).
    Failed {
        current: TransitionId,
        id: TransitionId,
    },
}

impl ExecutorState {
    /// Value of the `topod_transition_phase` gauge: 0 steady, 1 preparing.
    fn gauge(&self) -> f64 {
        match self {
            ExecutorState::Starting
            | ExecutorState::Steady { .. }
            | ExecutorState::Failed { .. } => 0.0,
            ExecutorState::Preparing { .. } => 1.0,
        }
    }
}

/// The per-node driver task.
pub struct Driver {
    pub me: NodeId,
    pub applied: AppliedRx,
    pub executor: Arc<dyn Executor>,
    pub reporter: Arc<dyn Reporter>,
    /// Where the committed index comes from (the node's Raft).
    pub commit_index: Arc<dyn CommitIndex>,
    /// Upper bound for one executor step.
    pub step_timeout: Duration,
}

impl Driver {
    /// Runs until `cancel` fires.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut st = ExecutorState::Starting;
        loop {
            let applied = self.applied.borrow_and_update().clone();
            // An executor step may hang (a prepare that never forms) and a
            // report may retry for a while: neither may hold up shutdown.
            st = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                st = self.step(st, &applied) => st,
            };
            metrics::gauge!("topod_transition_phase").set(st.gauge());
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                changed = self.applied.changed() => if changed.is_err() { return },
            }
        }
    }

    async fn run_step<F>(&self, what: &str, fut: F) -> Result<(), String>
    where
        F: std::future::Future<Output = Result<(), super::executor::ExecError>>,
    {
        match tokio::time::timeout(self.step_timeout, fut).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "{what} did not finish within {:?}",
                self.step_timeout
            )),
        }
    }

    async fn report(&self, id: TransitionId, phase: Phase) {
        if let Err(e) = self.reporter.report(id, self.me, phase.clone()).await {
            tracing::warn!(id, ?phase, error = %e, "phase report given up");
        }
    }

    async fn step(&self, st: ExecutorState, applied: &Applied) -> ExecutorState {
        let s = &applied.state;
        // Start-up and catch-up: build the committed overlay directly.
        let current = match st {
            ExecutorState::Starting => {
                let fut =
                    self.executor
                        .build_current(s.current_instance, s.topology, s.config.clone());
                if let Err(e) = self.run_step("build", fut).await {
                    tracing::error!(error = %e, "building the committed overlay failed");
                }
                return self
                    .follow(
                        ExecutorState::Steady {
                            current: s.current_instance,
                        },
                        applied,
                    )
                    .await;
            }
            ExecutorState::Steady { current } => current,
            ExecutorState::Failed { current, id } => {
                if s.in_flight.as_ref().is_some_and(|t| t.id == id) {
                    return st;
                }
                current
            }
            ExecutorState::Preparing { current, shadow } => {
                if s.current_instance == shadow {
                    return self.cut_over(shadow).await;
                }
                if s.in_flight.as_ref().is_some_and(|t| t.id == shadow) {
                    return st;
                }
                // Aborted (or superseded while we were away).
                if let Err(e) = self.run_step("abort", self.executor.abort(shadow)).await {
                    tracing::warn!(shadow, error = %e, "tearing down the shadow overlay failed");
                }
                current
            }
        };
        self.follow(ExecutorState::Steady { current }, applied)
            .await
    }

    /// From a steady state, catch up with what the log decided.
    async fn follow(&self, st: ExecutorState, applied: &Applied) -> ExecutorState {
        let s = &applied.state;
        let ExecutorState::Steady { current } = st else {
            return st;
        };
        if s.current_instance != current {
            let fut = self
                .executor
                .build_current(s.current_instance, s.topology, s.config.clone());
            if let Err(e) = self.run_step("build", fut).await {
                tracing::error!(error = %e, "building the committed overlay failed");
            }
            return ExecutorState::Steady {
                current: s.current_instance,
            };
        }
        let Some(t) = &s.in_flight else {
            return st;
        };
        if !t.members.contains(&self.me) || t.reports.contains_key(&self.me) {
            return st;
        }
        // Still replaying: a later entry may already have decided `t`. The
        // next applied state is looked at again.
        let committed = self.commit_index.committed().await;
        if committed.is_none_or(|c| applied.applied_index() < c) {
            tracing::debug!(
                id = t.id,
                applied = applied.applied_index(),
                ?committed,
                "not preparing while catching up"
            );
            return st;
        }
        let fut = self.executor.prepare(t.id, t.to, t.to_config.clone());
        let phase = match self.run_step("prepare", fut).await {
            Ok(()) => Phase::Prepared,
            Err(reason) => Phase::Failed { reason },
        };
        let failed = phase != Phase::Prepared;
        self.report(t.id, phase).await;
        if failed {
            if let Err(e) = self.run_step("abort", self.executor.abort(t.id)).await {
                tracing::warn!(id = t.id, error = %e, "tearing down the failed shadow failed");
            }
            return ExecutorState::Failed { current, id: t.id };
        }
        ExecutorState::Preparing {
            current,
            shadow: t.id,
        }
    }

    async fn cut_over(&self, id: TransitionId) -> ExecutorState {
        let phase = match self.run_step("cut-over", self.executor.cut_over(id)).await {
            Err(reason) => Phase::Unhealthy { reason },
            Ok(()) => match self.verify_unless_superseded(id).await {
                Some(Ok(())) => Phase::Verified,
                Some(Err(reason)) => Phase::Unhealthy { reason },
                None => {
                    tracing::info!(
                        id,
                        "verification abandoned: a newer transition is under way"
                    );
                    return ExecutorState::Steady { current: id };
                }
            },
        };
        self.report(id, phase).await;
        ExecutorState::Steady { current: id }
    }

    /// Verifies instance `id` after its cut-over; `None` if the log moved
    /// on meanwhile (a newer transition — a rollback proposed on another
    /// node's report, say — is in flight or committed): its prepare must
    /// not wait for this node's watch to end.
    async fn verify_unless_superseded(&self, id: TransitionId) -> Option<Result<(), String>> {
        let mut applied = self.applied.clone();
        let verify = self.run_step("verify", self.executor.verify());
        tokio::pin!(verify);
        loop {
            tokio::select! {
                r = &mut verify => return Some(r),
                changed = applied.changed() => {
                    if changed.is_err() {
                        return Some(verify.await);
                    }
                    let a = applied.borrow_and_update().clone();
                    let newer = a.state.in_flight.as_ref().is_some_and(|t| t.id > id)
                        || a.state.current_instance != id;
                    if newer {
                        return None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    use tokio::sync::watch;

    use super::*;
    use crate::control::executor::ScriptedExecutor;
    use crate::model::{
        ApplyContext, Command, CommandResponse, OverlayConfig, ProposeSwitch, SwitchReason,
        Topology, TopologyState,
    };

    struct Committed(AtomicU64);
    impl CommitIndex for Committed {
        fn committed(&self) -> BoxFuture<'static, Option<u64>> {
            let c = self.0.load(Ordering::SeqCst);
            Box::pin(async move { Some(c) })
        }
    }

    #[derive(Default)]
    struct Reports(Mutex<Vec<(TransitionId, Phase)>>);
    impl Reporter for Reports {
        fn report(
            &self,
            id: TransitionId,
            _: NodeId,
            phase: Phase,
        ) -> BoxFuture<'static, Result<(), String>> {
            self.0.lock().unwrap().push((id, phase));
            Box::pin(async { Ok(()) })
        }
    }

    fn applied_at(state: &TopologyState, index: u64) -> Arc<Applied> {
        Arc::new(Applied {
            state: state.clone(),
            last_applied: Some(openraft::LogId::new(
                openraft::CommittedLeaderId::new(1, 1),
                index,
            )),
            membership: Default::default(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_replaying_node_does_not_prepare_a_transition_decided_later() {
        let ctx = |index| ApplyContext {
            index,
            term: 1,
            members: vec![1, 2],
        };
        let mut state = TopologyState::default();
        let proposal = ProposeSwitch::new(
            Topology::HyParView,
            OverlayConfig::default_for(Topology::HyParView),
            SwitchReason::Manual,
            None,
            "t",
        );
        let answer = state.apply(&ctx(5), 1, &Command::ProposeSwitch(proposal));
        assert_eq!(answer, CommandResponse::Accepted { id: 5 });
        let in_flight = state.clone();
        state.apply(
            &ctx(6),
            2,
            &Command::AbortSwitch {
                id: 5,
                term: 1,
                reason: "x".into(),
            },
        );

        let (tx, rx) = watch::channel(applied_at(&TopologyState::default(), 0));
        let executor = Arc::new(ScriptedExecutor::default());
        let reports = Arc::new(Reports::default());
        let committed = Arc::new(Committed(AtomicU64::new(6)));
        let driver = Driver {
            me: 2,
            applied: rx,
            executor: executor.clone(),
            reporter: reports.clone(),
            commit_index: committed.clone(),
            step_timeout: Duration::from_secs(1),
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(driver.run(cancel.clone()));
        let settle = || tokio::time::sleep(Duration::from_millis(50));
        settle().await;
        // Replaying: index 5 (transition 5 in flight) is applied, 6 (its
        // abort) is committed but not applied yet.
        tx.send_replace(applied_at(&in_flight, 5));
        settle().await;
        tx.send_replace(applied_at(&state, 6));
        settle().await;
        assert!(
            executor.calls().iter().all(|c| !c.starts_with("prepare")),
            "{:?}",
            executor.calls()
        );
        assert!(reports.0.lock().unwrap().is_empty());

        // Caught up with the transition still in flight: prepared.
        committed.0.store(5, Ordering::SeqCst);
        tx.send_replace(applied_at(&in_flight, 5));
        settle().await;
        assert!(executor.calls().iter().any(|c| c == "prepare 5 hyparview"));
        assert_eq!(
            reports.0.lock().unwrap().as_slice(),
            &[(5, Phase::Prepared)]
        );
        cancel.cancel();
        task.await.unwrap();
    }
}
