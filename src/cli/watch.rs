//! `switch --wait`: polls a transition until it is decided and shows the
//! phases as they happen.

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::{Instant, MissedTickBehavior};

use super::render::{outcome_text, phase_text, reason_text};
use super::{ApiClient, CliError};
use crate::api::types::TransitionView;
use crate::model::TransitionId;

/// Time between polls of `GET /v1/transitions/{id}`.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Where progress goes.
pub trait ProgressSink {
    /// A phase change, one line.
    fn event(&mut self, line: &str) -> std::io::Result<()>;
    /// The latest view (for a live status line).
    fn update(&mut self, _view: &TransitionView) {}
    /// Polling ended.
    fn finish(&mut self) {}
}

/// Plain lines to a writer (not a terminal, or tests).
pub struct Lines<W: Write>(pub W);

impl<W: Write> ProgressSink for Lines<W> {
    fn event(&mut self, line: &str) -> std::io::Result<()> {
        writeln!(self.0, "{line}")
    }
}

/// Prints nothing (`--json`).
pub struct Silent;

impl ProgressSink for Silent {
    fn event(&mut self, _line: &str) -> std::io::Result<()> {
        Ok(())
    }
}

/// A spinner on stderr with the members still awaited; phase changes are
/// printed above it.
pub struct Spinner(ProgressBar);

impl Spinner {
    /// A spinner drawing on stderr.
    pub fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .expect("static template is valid"),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Spinner(bar)
    }
}

impl Default for Spinner {
    fn default() -> Self {
        Spinner::new()
    }
}

impl ProgressSink for Spinner {
    fn event(&mut self, line: &str) -> std::io::Result<()> {
        self.0.println(line);
        Ok(())
    }

    fn update(&mut self, view: &TransitionView) {
        let waiting = view.waiting_for();
        let msg = if waiting.is_empty() {
            outcome_text(view)
        } else {
            let ids: Vec<String> = waiting.iter().map(u64::to_string).collect();
            format!("{}, waiting for {}", outcome_text(view), ids.join(","))
        };
        self.0.set_message(msg);
    }

    fn finish(&mut self) {
        self.0.finish_and_clear();
    }
}

/// What changed from `prev` to `cur`, as lines for the operator.
pub fn progress_lines(prev: Option<&TransitionView>, cur: &TransitionView) -> Vec<String> {
    let mut lines = Vec::new();
    if prev.is_none() {
        let mut line = format!(
            "transition {}: {} -> {} ({})",
            cur.id,
            cur.from,
            cur.to,
            reason_text(&cur.reason)
        );
        if !cur.members.is_empty() {
            let ids: Vec<String> = cur.members.iter().map(u64::to_string).collect();
            line.push_str(&format!(", members to prepare: {}", ids.join(",")));
        }
        lines.push(line);
    }
    for (node, phase) in &cur.reports {
        if prev.and_then(|p| p.reports.get(node)) != Some(phase) {
            lines.push(format!("  node {node}: {}", phase_text(phase)));
        }
    }
    for (node, phase) in &cur.health {
        if prev.and_then(|p| p.health.get(node)) != Some(phase) {
            lines.push(format!(
                "  node {node} after cut-over: {}",
                phase_text(phase)
            ));
        }
    }
    let status_changed = prev.is_none_or(|p| p.status != cur.status);
    if status_changed && cur.status.is_final() {
        lines.push(format!("transition {}: {}", cur.id, outcome_text(cur)));
    }
    lines
}

/// Polls transition `id` every `interval` until it is committed or aborted
/// or `timeout` passes. Connection problems while polling (a leader
/// change, a node restart) are retried until the deadline; an API error
/// ends the wait. Returns the final view, committed or aborted.
pub async fn wait_for_decision(
    client: &ApiClient,
    id: TransitionId,
    timeout: Duration,
    interval: Duration,
    sink: &mut dyn ProgressSink,
) -> Result<TransitionView, CliError> {
    let deadline = Instant::now() + timeout;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last: Option<TransitionView> = None;
    let path = format!("/v1/transitions/{id}");
    let result = loop {
        if Instant::now() >= deadline {
            break Err(CliError::WaitTimeout {
                id,
                after_ms: timeout.as_millis() as u64,
            });
        }
        ticker.tick().await;
        let view = match client.get::<TransitionView>(&path).await {
            Ok(answer) => answer.value,
            Err(
                CliError::Unreachable { .. } | CliError::Timeout { .. } | CliError::Network { .. },
            ) => continue,
            Err(e) => break Err(e),
        };
        for line in progress_lines(last.as_ref(), &view) {
            sink.event(&line)?;
        }
        sink.update(&view);
        if view.status.is_final() {
            break Ok(view);
        }
        last = Some(view);
    };
    sink.finish();
    result
}
