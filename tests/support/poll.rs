//! What every in-process test cluster helper needs: test logging and
//! polling with a deadline (never a fixed sleep). Included by
//! `tests/common` and `tests/dataplane_common` (and through the latter by
//! the benchmarks).

use std::time::Duration;

use tokio::time::Instant;

/// Logs to the test's captured output; `TEST_LOG` overrides `default`.
pub fn init_tracing(default: &str) {
    let filter = std::env::var("TEST_LOG").unwrap_or_else(|_| default.into());
    let _already_set = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after
/// `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
