//! Keys, value encoding and the mapping of sled and postcard failures to
//! openraft's storage errors.

use std::fmt::Display;
use std::time::Instant;

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::control::types::StorageError;
use crate::model::NodeId;

/// Tree of log entries, keyed by big-endian index so iteration is in index
/// order.
pub(crate) const LOG_TREE: &str = "log";
/// Tree of Raft metadata (vote, committed, last purged) and the identity.
pub(crate) const META_TREE: &str = "meta";
/// Tree of the applied state: state, last applied log id, membership.
pub(crate) const SM_TREE: &str = "sm";
/// Tree of the last snapshot: its metadata and its bytes.
pub(crate) const SNAPSHOT_TREE: &str = "snapshot";

pub(crate) const KEY_VOTE: &[u8] = b"vote";
pub(crate) const KEY_COMMITTED: &[u8] = b"committed";
pub(crate) const KEY_LAST_PURGED: &[u8] = b"last_purged";
pub(crate) const KEY_CLUSTER_ID: &[u8] = b"cluster_id";
pub(crate) const KEY_NODE_UUID: &[u8] = b"node_uuid";
pub(crate) const KEY_FORMAT: &[u8] = b"format";
/// Storage format of this build. Bumped (with a migration) whenever a
/// stored type changes its encoding: the state, the log entries, snapshots.
/// Format 2: the policy, transitions and history records of envelope `V2`.
/// Format 3: the policy's custom and disabled rules (envelope `V3`).
/// Format 4: the admin API's tokens in the state (envelope `V5`).
/// Formats 1 to 3 are migrated at open (`migrate.rs`).
pub const STORAGE_FORMAT: u32 = 4;
pub(crate) const KEY_STATE: &[u8] = b"state";
/// The history, kept apart from the rest of the state so that an apply
/// that does not change it (most do not) does not rewrite it.
pub(crate) const KEY_HISTORY: &[u8] = b"history";
pub(crate) const KEY_LAST_APPLIED: &[u8] = b"last_applied";
pub(crate) const KEY_MEMBERSHIP: &[u8] = b"membership";
pub(crate) const KEY_SNAPSHOT_META: &[u8] = b"meta";
pub(crate) const KEY_SNAPSHOT_DATA: &[u8] = b"data";

/// Metric: seconds per sled flush.
pub(crate) const METRIC_FLUSH_SECONDS: &str = "topod_storage_flush_seconds";
/// Metric: seconds per applied batch.
pub(crate) const METRIC_APPLY_SECONDS: &str = "topod_apply_seconds";
/// Metric: application entries applied.
pub(crate) const METRIC_PROPOSALS_APPLIED: &str = "topod_proposals_applied_total";

/// Registers the storage metrics' descriptions and units with the
/// installed recorder (call once after installing it).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_histogram!(
        METRIC_FLUSH_SECONDS,
        Unit::Seconds,
        "Duration of one sled flush (log append, vote, apply batch, snapshot)"
    );
    describe_histogram!(
        METRIC_APPLY_SECONDS,
        Unit::Seconds,
        "Duration of one apply batch, including its flush"
    );
    describe_counter!(
        METRIC_PROPOSALS_APPLIED,
        "Application entries applied by the state machine"
    );
}

/// The key of the log entry at `index`.
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// postcard bytes of a value.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(value)
}

/// Decodes postcard bytes, refusing trailing bytes.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)?;
    if !rest.is_empty() {
        return Err(postcard::Error::DeserializeBadEncoding);
    }
    Ok(value)
}

/// Flushes the database and records the time it took.
///
/// sled's flush uses `sync_file_range` on Linux: a process crash loses
/// nothing that was flushed, a power loss may (it does not flush the
/// device cache).
///
/// It runs `Db::flush` on a tokio blocking thread, not `flush_async`:
/// `flush_async` occupies one of sled's 7 IO pool threads while it waits
/// for the log write it needs, and sled 0.34.7's pool does not grow past
/// them (its waiting-thread count underflows), so 7 concurrent flushes —
/// several databases in one process, as in the tests, or a busy node —
/// wait forever for writes queued behind them (seen as a hang; the
/// threads' stacks all sat in `make_stable`).
pub(crate) async fn flush(db: &sled::Db) -> sled::Result<()> {
    let start = Instant::now();
    let db = db.clone();
    let result = match tokio::task::spawn_blocking(move || db.flush()).await {
        Ok(r) => r,
        Err(e) => Err(sled::Error::ReportableBug(format!(
            "the flush task failed: {e}"
        ))),
    };
    metrics::histogram!(METRIC_FLUSH_SECONDS).record(start.elapsed().as_secs_f64());
    result.map(|_bytes| ())
}

/// Builds an openraft storage error from any displayable cause.
pub(crate) fn io_err(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    context: impl Display,
    cause: impl Display,
) -> StorageError {
    StorageIOError::new(
        subject,
        verb,
        AnyError::error(format!("{context}: {cause}")),
    )
    .into()
}
