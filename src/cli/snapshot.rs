//! `topoctl snapshot save FILE` and `topoctl snapshot show FILE`: backups
//! of the replicated state (`GET /v1/cluster/snapshot`), restored with
//! `topod restore FILE --data-dir DIR`.

use std::io::Write;
use std::path::Path;

use super::args::SnapshotCommand;
use super::{ApiClient, CliError};
use crate::control::store::{Backup, MAX_BACKUP_BYTES};

/// Runs a `snapshot` subcommand.
pub async fn snapshot(
    client: ApiClient,
    cmd: &SnapshotCommand,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match cmd {
        SnapshotCommand::Save { file } => {
            // Room for the header of the answer beyond the backup itself.
            let client = client.with_max_body(MAX_BACKUP_BYTES);
            let answer = client.get_bytes("/v1/cluster/snapshot").await?;
            // Checked before it is written: a file saved is a file that
            // restores.
            let backup = Backup::from_bytes(&answer.value)?;
            write_atomically(file, &answer.value)?;
            describe(&backup, answer.value.len(), Some(file), json, out)
        }
        SnapshotCommand::Show { file } => {
            let bytes = read_file(file)?;
            let backup = Backup::from_bytes(&bytes)?;
            describe(&backup, bytes.len(), None, json, out)
        }
    }
}

/// Reads a backup file, refusing one larger than the limit before reading it.
pub fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    let file_err = |e: std::io::Error| CliError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let len = std::fs::metadata(path).map_err(file_err)?.len();
    if len > MAX_BACKUP_BYTES as u64 {
        return Err(CliError::File {
            path: path.display().to_string(),
            message: format!("{len} bytes: larger than a backup can be ({MAX_BACKUP_BYTES})"),
        });
    }
    std::fs::read(path).map_err(file_err)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames
/// it over `path`: a crash leaves the old file or the new one, never half.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let file_err = |e: std::io::Error| CliError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        // The error that matters is the write's; a leftover is named by it.
        let _cleanup = std::fs::remove_file(&tmp);
    }
    written.map_err(file_err)
}

fn describe(
    backup: &Backup,
    bytes: usize,
    saved_to: Option<&Path>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let last = backup.applied.last_applied;
    let state = &backup.applied.state;
    let view = serde_json::json!({
        "file": saved_to.map(|p| p.display().to_string()),
        "bytes": bytes,
        "cluster_id": backup.cluster_id,
        "served_by": backup.node_id,
        "taken_at_ms": backup.taken_at_ms,
        "index": last.map(|l| l.index),
        "term": last.map(|l| l.leader_id.term),
        "topology": state.topology.as_str(),
        "epoch": state.epoch,
        "history": state.history.len(),
        "members": backup.applied.members(),
    });
    if json {
        writeln!(out, "{view}")?;
    } else {
        if let Some(p) = saved_to {
            writeln!(out, "saved {} ({bytes} bytes)", p.display())?;
        }
        writeln!(
            out,
            "cluster {} at index {} (term {}), served by node {}: topology {}, epoch {}, {} \
             transition(s) in the history, members {:?}",
            backup.cluster_id,
            last.map_or(0, |l| l.index),
            last.map_or(0, |l| l.leader_id.term),
            backup.node_id,
            state.topology.as_str(),
            state.epoch,
            state.history.len(),
            backup.applied.members(),
        )?;
    }
    Ok(())
}
