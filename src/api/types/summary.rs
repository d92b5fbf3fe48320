//! `GET /v1/node/summary?window_ms=N`: this node's summary of itself over
//! a sliding window ([`crate::model::NodeSummary`], the figures the
//! leader's monitor gathers). The query is parsed here: `window_ms` is
//! 1..=[`MAX_SUMMARY_WINDOW_MS`], default [`DEFAULT_SUMMARY_WINDOW_MS`];
//! anything else is a 400 naming the key.

use std::time::Duration;

use super::BadRequest;

/// Default window: one minute (the monitor's usual look-back).
pub const DEFAULT_SUMMARY_WINDOW_MS: u64 = 60_000;
/// Longest window: the ten minutes the executor keeps.
pub const MAX_SUMMARY_WINDOW_MS: u64 = 600_000;

/// The window asked for by the query string (`None`: no query).
pub fn summary_window(query: Option<&str>) -> Result<Duration, BadRequest> {
    let mut window = DEFAULT_SUMMARY_WINDOW_MS;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "window_ms" {
            return Err(BadRequest::new(format!(
                "unknown query parameter `{key}` (expected `window_ms`)"
            )));
        }
        window = value
            .parse::<u64>()
            .ok()
            .filter(|w| (1..=MAX_SUMMARY_WINDOW_MS).contains(w))
            .ok_or_else(|| {
                BadRequest::new(format!(
                    "`window_ms` must be a whole number of ms in 1..={MAX_SUMMARY_WINDOW_MS}, got `{value}`"
                ))
            })?;
    }
    Ok(Duration::from_millis(window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_defaults_parses_and_refuses_by_name() {
        let ms = Duration::from_millis;
        assert_eq!(summary_window(None).unwrap(), ms(60_000));
        assert_eq!(summary_window(Some("")).unwrap(), ms(60_000));
        assert_eq!(summary_window(Some("window_ms=1")).unwrap(), ms(1));
        assert_eq!(
            summary_window(Some("window_ms=600000")).unwrap(),
            ms(600_000)
        );
        for bad in [
            "window_ms=0",
            "window_ms=600001",
            "window_ms=-5",
            "window_ms=1.5",
            "window_ms=",
            "window_ms",
        ] {
            let e = summary_window(Some(bad)).unwrap_err();
            assert!(e.message.contains("`window_ms`"), "{bad}: {}", e.message);
        }
        let e = summary_window(Some("window=5")).unwrap_err();
        assert!(e.message.contains("`window`"), "{}", e.message);
    }
}
