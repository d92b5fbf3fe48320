//! Rotating certificates without a restart: the node reloads its
//! certificate files on SIGHUP, and by itself when one of them changes
//! (checked every [`POLL`]). A reload that fails (a half-written file, a
//! key that does not match) keeps the material in use and is logged; the
//! next change or SIGHUP tries again. The same task publishes the node
//! certificate's remaining validity (`topod_tls_certificate_expiry_seconds`)
//! and warns, at most once an hour, when it is within the warning window.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::TlsContext;

/// How often the files' modification times are compared.
pub const POLL: Duration = Duration::from_secs(2);
/// Least time between two expiry warnings.
const WARN_EVERY: Duration = Duration::from_secs(3600);

fn stamps(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

/// Whether the node certificate is within `warn_before` of expiring at
/// `now`, and how long it has left.
pub fn expiring(not_after: SystemTime, now: SystemTime, warn_before: Duration) -> (bool, Duration) {
    let left = not_after.duration_since(now).unwrap_or_default();
    (left <= warn_before, left)
}

/// Runs until `cancel`.
pub async fn run(ctx: Arc<TlsContext>, warn_before: Duration, cancel: CancellationToken) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler: certificates reload on file change only");
            None
        }
    };
    let files = ctx.files();
    let mut seen = stamps(&files);
    let mut last_warning: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let hangup = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        let why = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = hangup => Some("SIGHUP"),
            _ = tick.tick() => {
                let now = stamps(&files);
                (now != seen).then(|| {
                    seen = now;
                    "a certificate file changed"
                })
            }
        };
        if let Some(why) = why {
            match ctx.reload() {
                Ok(()) => {
                    metrics::counter!("topod_tls_reloads_total", "result" => "ok").increment(1);
                    tracing::info!(
                        why,
                        expires_unix = super::identity::unix_secs(ctx.identity().not_after),
                        "certificates reloaded"
                    );
                }
                Err(e) => {
                    metrics::counter!("topod_tls_reloads_total", "result" => "failed").increment(1);
                    tracing::warn!(why, error = %e, "certificate reload failed: the previous ones stay in use");
                }
            }
        }
        let (soon, left) = expiring(ctx.identity().not_after, SystemTime::now(), warn_before);
        metrics::gauge!("topod_tls_certificate_expiry_seconds").set(left.as_secs_f64());
        if soon && last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            last_warning = Some(tokio::time::Instant::now());
            tracing::warn!(
                days_left = left.as_secs() / 86_400,
                "the node certificate expires soon: issue a new one (`topod certs issue --node N \
                 --replace`); the node reloads it by itself"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_window_is_measured_from_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let day = Duration::from_secs(86_400);
        assert_eq!(expiring(now + 40 * day, now, 30 * day), (false, 40 * day));
        assert_eq!(expiring(now + 10 * day, now, 30 * day), (true, 10 * day));
        assert_eq!(expiring(now - day, now, 30 * day), (true, Duration::ZERO));
    }
}
