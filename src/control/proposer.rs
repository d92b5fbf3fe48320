//! Writes commands to the Raft log on the leader.
//!
//! The proposer stamps each entry with the leader's wall clock, never
//! going backwards (the max of the clock, its own last stamp and the last
//! applied stamp, which covers a new leader whose clock is behind), wraps it
//! in an `Envelope`, and waits until the entry is committed and applied.
//! It never forwards: a follower gets [`WriteError::ForwardToLeader`] and the
//! API layer forwards the request.
//!
//! **Group commit.** openraft 0.9 appends every `client_write` as its own
//! log append inside RaftCore and waits for that append's flush before it
//! takes the next one (`RaftCore::append_to_log`), so N concurrent writes
//! cost N flushes one after the other and the leader's throughput stops at
//! one write per flush. With [`Proposer::with_batching`] the proposer
//! gathers instead: at most [`IN_FLIGHT`] entries are being written at
//! once, and the commands that arrive meanwhile go together in the next
//! one, a [`Command::Batch`] (envelope `V6`, written only when every member
//! reads it, [`LogVersions`]). A lone writer waits for nothing: its command
//! is written at once, alone, as before. Durability does not change: a
//! batch is one entry, and each of its writers is answered only after that
//! entry is flushed on a quorum (sled's flush is `sync_file_range`, see
//! `control::store`) and applied. Only [`Command::batchable`] commands are
//! gathered; a proposal goes alone (its transition id is its index).

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::oneshot;

use super::applied::AppliedRx;
use super::log_versions::LogVersions;
use super::types::{LogPayload, NodeAddr, Raft};
use crate::model::{Command, CommandResponse, Envelope, NodeId};

/// Most commands in one batch entry. Bounds the entry (a policy update is
/// well under 1 KiB, so < 256 KiB, far below the Raft body limit) and the
/// apply batch. Guess: above the 64 concurrent writers of the benchmark.
pub const MAX_BATCH: usize = 256;

/// Entries the proposer has in Raft at once. One would leave the leader's
/// log idle while an entry is replicated; two let the next batch's append
/// and flush overlap the previous one's round to the followers, and more
/// only make the batches smaller (openraft appends one after the other
/// anyway). Reasoned, not compared with other values; the figures it gave
/// are in BENCHMARKS.md, "Durable writes versus etcd (issue 15)".
pub const IN_FLIGHT: usize = 2;

/// Metric: commands per entry written through the batching path.
pub const METRIC_BATCH_COMMANDS: &str = "topod_write_batch_commands";

/// Why a write did not reach the state machine. No state changed in any
/// case, except `Timeout`, where the entry may still commit later.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// This node is not the leader; the leader, if known.
    #[error("this node is not the leader (leader: {leader:?})")]
    ForwardToLeader {
        leader: Option<NodeId>,
        leader_addr: Option<NodeAddr>,
    },
    /// Raft stopped (storage error or shutdown).
    #[error("raft has stopped: {0}")]
    Fatal(String),
    /// The write did not finish in time; it may still commit.
    #[error("write not applied within {0:?}; it may still commit")]
    Timeout(Duration),
    /// Any other refusal by Raft.
    #[error("raft refused the write: {0}")]
    Refused(String),
}

/// What to write for the commands gathered while earlier entries were
/// being written: one batch when there are several and every member reads
/// batches, else each alone.
pub fn plan(commands: Vec<Command>, members_read_batches: bool) -> Vec<Command> {
    if members_read_batches && commands.len() > 1 {
        return vec![Command::Batch { commands }];
    }
    commands
}

/// One answer per command from the answer to a batch of `n`.
pub fn split(answer: CommandResponse, n: usize) -> Vec<CommandResponse> {
    match answer {
        CommandResponse::Batch(answers) if answers.len() == n => answers,
        // Not the answer to a batch of n: every command gets it.
        other => vec![other; n],
    }
}

type Answer = oneshot::Sender<Result<CommandResponse, WriteError>>;

struct Pending {
    command: Command,
    answer: Answer,
}

/// The commands waiting for an entry and how many entries are being
/// written (at most [`IN_FLIGHT`]).
#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    writers: usize,
}

struct Batching {
    me: NodeId,
    versions: LogVersions,
}

struct Shared {
    raft: Raft,
    applied: AppliedRx,
    last_stamp: Mutex<u64>,
    timeout: Duration,
    batching: Option<Batching>,
    queue: Mutex<Queue>,
}

/// Stamps and writes commands on the leader. Cheap to share: the batch
/// writers hold the same state.
pub struct Proposer {
    shared: Arc<Shared>,
}

impl Proposer {
    /// A proposer writing through `raft`, every command in an entry of its
    /// own; writes give up after `timeout`.
    pub fn new(raft: Raft, applied: AppliedRx, timeout: Duration) -> Self {
        Proposer {
            shared: Arc::new(Shared {
                raft,
                applied,
                last_stamp: Mutex::new(0),
                timeout,
                batching: None,
                queue: Mutex::default(),
            }),
        }
    }

    /// The same, gathering concurrent [`Command::batchable`] writes into
    /// one entry (see the module docs) once every member but `me` has
    /// announced in `versions` that it reads batches.
    pub fn with_batching(
        raft: Raft,
        applied: AppliedRx,
        timeout: Duration,
        me: NodeId,
        versions: LogVersions,
    ) -> Self {
        let mut p = Proposer::new(raft, applied, timeout);
        if let Some(shared) = Arc::get_mut(&mut p.shared) {
            shared.batching = Some(Batching { me, versions });
        }
        p
    }

    /// Writes `command` and returns the state machine's answer.
    pub async fn write(&self, command: Command) -> Result<CommandResponse, WriteError> {
        if self.shared.batching.is_some() && command.batchable() {
            return self.write_gathered(command).await;
        }
        self.shared.write_entry(command, 1).await
    }

    /// Queues `command` for the next entry, starting a writer if fewer
    /// than [`IN_FLIGHT`] are busy, and waits for its own answer.
    async fn write_gathered(&self, command: Command) -> Result<CommandResponse, WriteError> {
        let (answer, rx) = oneshot::channel();
        let start_writer = {
            let mut q = self.shared.queue();
            q.pending.push_back(Pending { command, answer });
            let start = q.writers < IN_FLIGHT;
            if start {
                q.writers += 1;
            }
            start
        };
        if start_writer {
            // A task of its own, so that a writer that gives up waiting
            // (an HTTP client gone) does not cancel the others' entry.
            tokio::spawn(Writer::new(self.shared.clone()).run());
        }
        // The queue wait counts against the same timeout as the write.
        let timeout = self.shared.timeout;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(WriteError::Timeout(timeout)),
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(WriteError::Fatal("the batch writer stopped".into())),
        }
    }

    /// How long a write may take before it is given up.
    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }

    /// Whether this node currently believes it is the leader.
    pub fn is_leader(&self) -> bool {
        let m = self.shared.raft.metrics();
        let m = m.borrow();
        m.current_leader == Some(m.id)
    }
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stamp(&self) -> u64 {
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let applied = self.applied.borrow().state.last_stamp_ms;
        let mut last = self.last_stamp.lock().unwrap_or_else(|e| e.into_inner());
        *last = clock.max(*last).max(applied);
        *last
    }

    fn members_read_batches(&self, b: &Batching) -> bool {
        let members: BTreeSet<NodeId> = {
            let m = self.raft.metrics();
            let m = m.borrow();
            m.membership_config.nodes().map(|(id, _)| *id).collect()
        };
        let version = Command::Batch { commands: vec![] }.log_version();
        b.versions.all_read(&members, b.me, version)
    }

    /// Writes one entry holding `commands` commands (a batch's count, for
    /// the metrics) and returns the state machine's answer.
    async fn write_entry(
        &self,
        command: Command,
        commands: u64,
    ) -> Result<CommandResponse, WriteError> {
        let started = std::time::Instant::now();
        let payload = LogPayload::new(&Envelope::new(self.stamp(), command));
        let result = tokio::time::timeout(self.timeout, self.raft.client_write(payload)).await;
        let outcome = match result {
            Err(_) => Err(WriteError::Timeout(self.timeout)),
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(WriteError::ForwardToLeader {
                    leader: f.leader_id,
                    leader_addr: f.leader_node,
                })
            }
            Ok(Err(RaftError::APIError(e))) => Err(WriteError::Refused(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(WriteError::Fatal(e.to_string())),
        };
        match &outcome {
            Ok(_) => {
                metrics::counter!("topod_proposals_committed_total").increment(commands);
                metrics::histogram!("topod_commit_seconds").record(started.elapsed().as_secs_f64());
            }
            Err(WriteError::ForwardToLeader { .. }) => {}
            Err(_) => metrics::counter!("topod_proposals_failed_total").increment(commands),
        }
        outcome
    }

    /// Writes `batch` (as one entry when it can) and answers each writer.
    async fn write_batch(&self, batch: Vec<Pending>) {
        let n = batch.len();
        let readable = match &self.batching {
            Some(b) => n > 1 && self.members_read_batches(b),
            None => false,
        };
        let (commands, answers): (Vec<Command>, Vec<Answer>) =
            batch.into_iter().map(|p| (p.command, p.answer)).unzip();
        let entries = plan(commands, readable);
        let results: Vec<Result<CommandResponse, WriteError>> = if readable {
            metrics::histogram!(METRIC_BATCH_COMMANDS).record(n as f64);
            let mut entries = entries;
            match self.write_entry(entries.remove(0), n as u64).await {
                Ok(a) => split(a, n).into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e); n],
            }
        } else {
            for _ in 0..n {
                metrics::histogram!(METRIC_BATCH_COMMANDS).record(1.0);
            }
            join_all(entries.into_iter().map(|c| self.write_entry(c, 1))).await
        };
        for (answer, result) in answers.into_iter().zip(results) {
            // The writer may have given up waiting.
            let _gone = answer.send(result);
        }
    }
}

/// One of the [`IN_FLIGHT`] batch writers: writes what is queued, entry
/// after entry, until the queue is empty. Its slot is given back when it
/// stops, panics included, so that the next write starts a writer again.
struct Writer {
    shared: Arc<Shared>,
    released: bool,
}

impl Writer {
    fn new(shared: Arc<Shared>) -> Self {
        Writer {
            shared,
            released: false,
        }
    }

    async fn run(mut self) {
        loop {
            let batch: Vec<Pending> = {
                let mut q = self.shared.queue();
                if q.pending.is_empty() {
                    // Given back with the lock held: a write queued after
                    // this sees the free slot and starts a writer.
                    q.writers -= 1;
                    self.released = true;
                    return;
                }
                let n = q.pending.len().min(MAX_BATCH);
                q.pending.drain(..n).collect()
            };
            self.shared.write_batch(batch).await;
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Only on an unwind or a dropped task (runtime shut down): `run`
        // gives its slot back itself otherwise.
        if !self.released {
            self.shared.queue().writers -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PolicyUpdate, Rejection};

    fn policy(ms: u64) -> Command {
        Command::SetPolicy(PolicyUpdate {
            cooldown_ms: Some(ms),
            ..PolicyUpdate::default()
        })
    }

    #[test]
    fn several_commands_are_one_entry_only_when_every_member_reads_batches() {
        let cmds = vec![policy(1), policy(2), policy(3)];
        assert_eq!(
            plan(cmds.clone(), true),
            vec![Command::Batch {
                commands: cmds.clone()
            }]
        );
        assert_eq!(plan(cmds.clone(), false), cmds);
        // A lone command stays as it is, readable by every build.
        assert_eq!(plan(vec![policy(1)], true), vec![policy(1)]);
    }

    #[test]
    fn each_writer_gets_its_own_answer() {
        let bad = CommandResponse::Rejected(Rejection::InvalidPolicy { detail: "x".into() });
        assert_eq!(
            split(
                CommandResponse::Batch(vec![CommandResponse::Applied, bad.clone()]),
                2
            ),
            vec![CommandResponse::Applied, bad.clone()]
        );
        assert_eq!(split(bad.clone(), 2), vec![bad.clone(), bad]);
    }
}
