//! The leader's batching of phase and health reports (issue 15): the
//! reports that reach the leader within a short window — forwarded by the
//! members (`POST /v1/transitions/{id}/reports`) or its own — are written
//! as one [`Command::ReportPhases`] entry instead of one entry each, so a
//! switch on N members writes a handful of entries instead of 2N. Each is
//! applied exactly as a report of its own (the coordinator's rules do not
//! change) and each submitter gets its own answer.
//!
//! A batch goes in envelope `V4`, which older builds cannot read: the
//! batcher writes one only when every member has announced that it reads
//! it ([`LogVersions`]); otherwise, and for a lone report, it writes
//! [`Command::ReportPhase`] entries as before.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::log_versions::LogVersions;
use super::proposer::{Proposer, WriteError};
use super::types::Raft;
use crate::model::{Command, CommandResponse, NodeId, PhaseReport};

/// Reports waiting for the batcher, beyond which submitters wait.
pub const QUEUE: usize = 4_096;
/// Most reports in one entry (bounds the entry's size).
pub const MAX_BATCH: usize = 512;

/// Settings of the batcher.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// How long after the first report of a batch the batch is written;
    /// zero writes every report alone.
    pub window: Duration,
}

/// What to write for the reports gathered in one window.
pub fn plan(reports: &[PhaseReport], members_read_batches: bool) -> Vec<Command> {
    if members_read_batches && reports.len() > 1 {
        return vec![Command::ReportPhases {
            reports: reports.to_vec(),
        }];
    }
    reports
        .iter()
        .map(|r| Command::ReportPhase {
            id: r.id,
            node: r.node,
            phase: r.phase.clone(),
        })
        .collect()
}

/// One answer per report from the answer to a batch entry.
pub fn split(answer: CommandResponse, n: usize) -> Vec<CommandResponse> {
    match answer {
        CommandResponse::Batch(answers) if answers.len() == n => answers,
        // Not the answer to a batch of n (a rejection of the whole entry):
        // every report gets it.
        other => vec![other; n],
    }
}

struct Pending {
    report: PhaseReport,
    answer: oneshot::Sender<Result<CommandResponse, WriteError>>,
}

/// Handle to submit reports; cheap to clone.
#[derive(Clone)]
pub struct ReportBatcher {
    tx: mpsc::Sender<Pending>,
}

impl ReportBatcher {
    /// The handle and the batching task of this node, to be spawned; it
    /// runs until `cancel`. It writes only while this node leads:
    /// elsewhere every write answers `ForwardToLeader`.
    pub fn new(
        proposer: Arc<Proposer>,
        raft: Raft,
        me: NodeId,
        versions: LogVersions,
        settings: BatchSettings,
        cancel: CancellationToken,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = Task {
            proposer,
            raft,
            me,
            versions,
            settings,
        };
        (ReportBatcher { tx }, task.run(rx, cancel))
    }

    /// Writes `report` (with the others of its window) and returns its own
    /// answer.
    pub async fn submit(&self, report: PhaseReport) -> Result<CommandResponse, WriteError> {
        let (answer, rx) = oneshot::channel();
        let stopped = || WriteError::Fatal("the report batcher has stopped".into());
        self.tx
            .send(Pending { report, answer })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

struct Task {
    proposer: Arc<Proposer>,
    raft: Raft,
    me: NodeId,
    versions: LogVersions,
    settings: BatchSettings,
}

impl Task {
    async fn run(self, mut rx: mpsc::Receiver<Pending>, cancel: CancellationToken) {
        loop {
            let first = tokio::select! {
                _ = cancel.cancelled() => return,
                p = rx.recv() => match p { Some(p) => p, None => return },
            };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + self.settings.window;
            while batch.len() < MAX_BATCH && !self.settings.window.is_zero() {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep_until(deadline) => break,
                    p = rx.recv() => match p { Some(p) => batch.push(p), None => break },
                }
            }
            // While this batch is written, the next one gathers in the
            // queue (group commit).
            self.write(batch).await;
        }
    }

    fn members(&self) -> BTreeSet<NodeId> {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.membership_config.nodes().map(|(id, _)| *id).collect()
    }

    async fn write(&self, batch: Vec<Pending>) {
        let reports: Vec<PhaseReport> = batch.iter().map(|p| p.report.clone()).collect();
        // The envelope a batch is written in (`V4`), not this build's
        // newest: members on the build before the tokens (`V4`) read it.
        let batch_version = Command::ReportPhases { reports: vec![] }.log_version();
        let batched = self
            .versions
            .all_read(&self.members(), self.me, batch_version);
        let commands = plan(&reports, batched);
        let answers: Vec<Result<CommandResponse, WriteError>> = if commands.len() == 1 {
            let kind = if reports.len() > 1 { "batch" } else { "single" };
            metrics::counter!("topod_report_entries_total", "kind" => kind).increment(1);
            let answer = self.proposer.write(commands[0].clone()).await;
            match answer {
                Ok(a) => split(a, reports.len()).into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e); reports.len()],
            }
        } else {
            metrics::counter!("topod_report_entries_total", "kind" => "single")
                .increment(commands.len() as u64);
            join_all(commands.into_iter().map(|c| self.proposer.write(c))).await
        };
        for (p, a) in batch.into_iter().zip(answers) {
            // The submitter may have given up waiting.
            let _gone = p.answer.send(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Phase, Rejection};

    fn r(id: u64, node: NodeId) -> PhaseReport {
        PhaseReport {
            id,
            node,
            phase: Phase::Prepared,
        }
    }

    #[test]
    fn a_window_of_reports_is_one_entry_only_when_every_member_reads_it() {
        let reports = [r(3, 1), r(3, 2), r(3, 3)];
        assert_eq!(
            plan(&reports, true),
            vec![Command::ReportPhases {
                reports: reports.to_vec()
            }]
        );
        let singles = plan(&reports, false);
        assert_eq!(singles.len(), 3);
        assert_eq!(
            singles[1],
            Command::ReportPhase {
                id: 3,
                node: 2,
                phase: Phase::Prepared
            }
        );
        // A lone report stays a ReportPhase, readable by every build.
        assert!(matches!(
            plan(&reports[..1], true)[..],
            [Command::ReportPhase { node: 1, .. }]
        ));
    }

    #[test]
    fn each_report_gets_its_own_answer() {
        let stale = CommandResponse::Rejected(Rejection::StaleTransition { detail: "x".into() });
        let answers = split(
            CommandResponse::Batch(vec![CommandResponse::Applied, stale.clone()]),
            2,
        );
        assert_eq!(answers, vec![CommandResponse::Applied, stale.clone()]);
        assert_eq!(split(stale.clone(), 2), vec![stale.clone(), stale]);
    }
}
