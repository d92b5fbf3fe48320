//! Drives this node's [`Executor`] from the applied state.
//!
//! One task per node follows the latest applied state (a node that catches
//! up skips intermediate states): it builds the committed overlay at
//! start-up, prepares the target of an in-flight transition and reports
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
