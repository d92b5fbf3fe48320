//! The node's incarnation: a counter kept in a small file of the data dir
//! and bumped (written and synced) at every start, so that message ids of
//! a restarted node never collide with its earlier ones.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The file name inside the data dir.
pub const FILE: &str = "incarnation";

/// The incarnation file could not be read or written; nothing was started.
#[derive(Debug, thiserror::Error)]
pub enum IncarnationError {
    #[error("cannot {what} the incarnation file {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the incarnation file {} holds `{found}`, not a number", path.display())]
    Corrupt { path: PathBuf, found: String },
}

/// Reads the last incarnation (0 if none), stores the next one durably and
/// returns it.
pub fn bump(data_dir: &Path) -> Result<u32, IncarnationError> {
    let path = data_dir.join(FILE);
    let io = |what, source| IncarnationError::Io {
        what,
        path: path.clone(),
        source,
    };
    let last = match std::fs::read_to_string(&path) {
        Ok(s) => s
            .trim()
            .parse::<u32>()
            .map_err(|_| IncarnationError::Corrupt {
                path: path.clone(),
                found: s.trim().to_string(),
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io("read", e)),
    };
    let next = last.wrapping_add(1).max(1);
    let tmp = data_dir.join(format!("{FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
    f.write_all(next.to_string().as_bytes())
        .map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("sync", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io("rename", e))?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_start_gets_a_higher_incarnation() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(super::bump(dir.path()).expect("bump"), 1);
        assert_eq!(super::bump(dir.path()).expect("bump"), 2);
        std::fs::write(dir.path().join(super::FILE), "x").expect("write");
        assert!(super::bump(dir.path()).is_err());
    }
}
