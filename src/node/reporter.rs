//! Delivers a node's phase reports to the leader: written locally when this
//! node leads, otherwise posted to the leader's API
//! (`POST /v1/transitions/{id}/reports`). Retries while no leader is known,
//! within a bounded number of attempts.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::api::forward::Forwarder;
use crate::api::routes::ReportRequest;
use crate::api::types::PhaseView;
use crate::control::driver::Reporter;
use crate::control::proposer::{Proposer, WriteError};
use crate::control::report_batch::ReportBatcher;
use crate::control::types::Raft;
use crate::model::{CommandResponse, NodeId, Phase, PhaseReport, TransitionId};

/// Attempts before a report is given up (with [`RETRY_DELAY`] between).
pub const MAX_ATTEMPTS: u32 = 100;
/// Pause between attempts.
pub const RETRY_DELAY: Duration = Duration::from_millis(100);

/// The production [`Reporter`].
#[derive(Clone)]
pub struct LeaderReporter {
    pub raft: Raft,
    pub proposer: Arc<Proposer>,
    /// This node's own reports, when it leads, go through its batcher.
    pub reports: ReportBatcher,
    pub forwarder: Forwarder,
    pub timeout: Duration,
}

impl LeaderReporter {
    fn leader_api(&self) -> Option<String> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&id)
            .map(|n| self.forwarder.base_of(n))
    }

    /// One attempt: `Ok(true)` delivered (or refused for good), `Ok(false)`
    /// retry.
    async fn attempt(&self, id: TransitionId, node: NodeId, phase: &Phase) -> Result<bool, String> {
        if self.proposer.is_leader() {
            let report = PhaseReport {
                id,
                node,
                phase: phase.clone(),
            };
            return match self.reports.submit(report).await {
                Ok(CommandResponse::Rejected(r)) => {
                    tracing::info!(id, rejection = %r, "phase report refused");
                    Ok(true)
                }
                Ok(_) => Ok(true),
                Err(WriteError::ForwardToLeader { .. }) | Err(WriteError::Timeout(_)) => Ok(false),
                Err(e) => Err(e.to_string()),
            };
        }
        let Some(addr) = self.leader_api() else {
            return Ok(false);
        };
        let body = ReportRequest {
            node,
            phase: PhaseView::from(phase),
        };
        let path = format!("/v1/transitions/{id}/reports");
        match self
            .forwarder
            .post_json(&addr, &path, &body, self.timeout)
            .await
        {
            Ok((status, _)) if status.is_success() => Ok(true),
            Ok((status, body)) if status.is_client_error() => {
                tracing::info!(id, %status, body = %String::from_utf8_lossy(&body), "phase report refused");
                Ok(true)
            }
            Ok(_) | Err(_) => Ok(false),
        }
    }
}

impl Reporter for LeaderReporter {
    fn report(
        &self,
        id: TransitionId,
        node: NodeId,
        phase: Phase,
    ) -> BoxFuture<'static, Result<(), String>> {
        let this = self.clone();
        Box::pin(async move {
            for _ in 0..MAX_ATTEMPTS {
                if this.attempt(id, node, &phase).await? {
                    return Ok(());
                }
                tokio::time::sleep(RETRY_DELAY).await;
            }
            Err(format!(
                "no leader accepted the report after {MAX_ATTEMPTS} attempts"
            ))
        })
    }
}
