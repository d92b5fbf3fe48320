//! The process's log output: the default filter and whether lines carry
//! ANSI colour. Log files and pipes get plain text; a terminal gets colour
//! unless `NO_COLOR` is set to a non-empty value (<https://no-color.org>).

use std::ffi::OsStr;
use std::io::IsTerminal;

/// The filter used when `RUST_LOG` is not set. openraft logs every failed
/// replication attempt (every heartbeat to a cut-off peer: an ERROR and a
/// WARN from `openraft::replication`, a WARN "update progress error" from
/// its replication handler); the Raft network logs each peer's up/down
/// changes once instead (`control::reachability`).
pub const DEFAULT_FILTER: &str = "info,openraft=warn,openraft::replication=off,\
     openraft::engine::handler::replication_handler=error,sled=warn";

/// Whether to colour log lines: only on a terminal, and not when
/// `NO_COLOR` holds a non-empty value.
pub fn colour(is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber writing to stdout: `RUST_LOG` or
/// [`DEFAULT_FILTER`], colour as [`colour`] decides.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let ansi = colour(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .init();
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None), "a log file or pipe gets plain text");
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(
            colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR does not count (no-color.org)"
        );
        assert!(!colour(false, Some(OsStr::new("1"))));
    }
}
