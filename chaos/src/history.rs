//! The run's history: every operation's invoke and completion (ok, fail,
//! or unknown when the answer never came), status samples, nemesis and
//! process events, with milliseconds since the run started. Written as
//! JSON lines to `history.jsonl` as it happens and kept in memory (bounded)
//! for the checker.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::NodeId;

/// Most records kept in memory (a 10-minute run of 5 nodes samples
/// status 15,000 times; room for long runs).
pub const MAX_RECORDS: usize = 2_000_000;

/// The kinds of operation the workload and the nemesis invoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Switch,
    Policy,
    Broadcast,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Acknowledged.
    Ok,
    /// Refused: it certainly did not happen.
    Fail,
    /// No answer (timeout, broken connection, an answer that does not
    /// say): it may or may not have happened.
    Unknown,
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Invoke {
        op: u64,
        at_ms: u64,
        kind: OpKind,
        /// The node the request was sent to.
        node: NodeId,
        value: Value,
    },
    Complete {
        op: u64,
        at_ms: u64,
        outcome: Outcome,
        /// HTTP status, when an answer came.
        status: Option<u16>,
        value: Value,
    },
    Status {
        at_ms: u64,
        node: NodeId,
        term: u64,
        role: String,
        leader: Option<NodeId>,
        applied: Option<u64>,
    },
    /// A `/readyz` sample: whether it answered 200.
    Ready {
        at_ms: u64,
        node: NodeId,
        ready: bool,
    },
    Nemesis {
        at_ms: u64,
        /// `start` or `stop`.
        phase: String,
        fault: String,
        detail: Value,
    },
    Process {
        at_ms: u64,
        node: NodeId,
        /// `started`, `ready`, `killed`, `paused`, `resumed`, `stopped`,
        /// `exited`.
        event: String,
        /// Whether the harness caused it (an `exited` nobody asked for is a
        /// crash).
        expected: bool,
        detail: String,
    },
}

struct Inner {
    file: BufWriter<File>,
    records: Vec<Record>,
    next_op: u64,
    write_error: Option<String>,
}

/// The shared history of a run.
#[derive(Clone)]
pub struct History {
    start: Instant,
    inner: Arc<Mutex<Inner>>,
}

impl History {
    /// A history written to `path`.
    pub fn create(path: &Path) -> std::io::Result<History> {
        let file = BufWriter::new(File::create(path)?);
        Ok(History {
            start: Instant::now(),
            inner: Arc::new(Mutex::new(Inner {
                file,
                records: Vec::new(),
                next_op: 0,
                write_error: None,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn push(&self, r: Record) {
        let mut inner = self.lock();
        let line =
            serde_json::to_string(&r).unwrap_or_else(|e| format!("{{\"encode_error\":\"{e}\"}}"));
        if let Err(e) = writeln!(inner.file, "{line}") {
            inner.write_error.get_or_insert(e.to_string());
        }
        if inner.records.len() < MAX_RECORDS {
            inner.records.push(r);
        } else {
            inner
                .write_error
                .get_or_insert(format!("more than {MAX_RECORDS} records"));
        }
    }

    /// Records an invoke; returns the operation's number.
    pub fn invoke(&self, kind: OpKind, node: NodeId, value: Value) -> u64 {
        let op = {
            let mut inner = self.lock();
            inner.next_op += 1;
            inner.next_op
        };
        let at_ms = self.now_ms();
        self.push(Record::Invoke {
            op,
            at_ms,
            kind,
            node,
            value,
        });
        op
    }

    pub fn complete(&self, op: u64, outcome: Outcome, status: Option<u16>, value: Value) {
        let at_ms = self.now_ms();
        self.push(Record::Complete {
            op,
            at_ms,
            outcome,
            status,
            value,
        });
    }

    pub fn status(
        &self,
        node: NodeId,
        term: u64,
        role: String,
        leader: Option<NodeId>,
        applied: Option<u64>,
    ) {
        let at_ms = self.now_ms();
        self.push(Record::Status {
            at_ms,
            node,
            term,
            role,
            leader,
            applied,
        });
    }

    pub fn ready(&self, node: NodeId, ready: bool) {
        let at_ms = self.now_ms();
        self.push(Record::Ready { at_ms, node, ready });
    }

    pub fn nemesis(&self, phase: &str, fault: &str, detail: Value) {
        let at_ms = self.now_ms();
        self.push(Record::Nemesis {
            at_ms,
            phase: phase.to_string(),
            fault: fault.to_string(),
            detail,
        });
    }

    pub fn process(&self, node: NodeId, event: &str, expected: bool, detail: String) {
        let at_ms = self.now_ms();
        self.push(Record::Process {
            at_ms,
            node,
            event: event.to_string(),
            expected,
            detail,
        });
    }

    /// A copy of every record so far.
    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    /// Flushes the file; the first write error, if any.
    pub fn flush(&self) -> Result<(), String> {
        let mut inner = self.lock();
        if let Err(e) = inner.file.flush() {
            inner.write_error.get_or_insert(e.to_string());
        }
        match &inner.write_error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}
