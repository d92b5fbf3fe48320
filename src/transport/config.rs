//! `[transport]`: limits and timings of the peer transport.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{check_range, ConfigError};

/// Transport settings. Every field is a plain number so that TOML and
/// environment overrides stay simple; the accessors return `Duration`s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransportConfig {
    /// Largest frame on the wire (length prefix excluded), bytes.
    /// 1 KiB..=1 GiB. A peer sending more is disconnected; a local payload
    /// that cannot fit is refused with `SendError::TooLarge`. Default
    /// 16 MiB (guess: a snapshot-sized broadcast fits, a bogus length
    /// prefix cannot make us allocate much).
    pub max_frame_bytes: u64,
    /// Frames queued per peer before control frames are dropped and data
    /// frames wait, frames. 1..=1_000_000. Default 1024 (guess: ~1 s of
    /// control traffic at a busy node; deep enough for bursts).
    pub queue_len: u64,
    /// Events queued to the owner before control frames, RTT and
    /// send-failure events are dropped and data frames stop the socket
    /// readers, events. 1..=1_000_000. Default 4096 (guess).
    pub event_queue_len: u64,
    /// Period of the ping on every link, ms. 10..=60_000. Default 1000
    /// (guess: a fresh RTT per second is plenty for the monitor).
    pub ping_interval_ms: u64,
    /// A link with no frame received for this long is closed, ms. Above
    /// `ping_interval_ms`, at most 600_000. Default 5000 (guess: five
    /// missed pings).
    pub ping_timeout_ms: u64,
    /// First reconnect delay of a `connect`ed peer, ms. 1..=60_000.
    /// Default 50 (guess: a restart on loopback is back within tens of ms).
    pub reconnect_min_ms: u64,
    /// Largest reconnect delay, ms; the delay doubles from the minimum up to
    /// this, with jitter (each delay is uniform in [d/2, d]).
    /// `reconnect_min_ms`..=600_000. Default 5000 (guess).
    pub reconnect_max_ms: u64,
    /// Deadline of one dial including the handshake, ms. 10..=60_000.
    /// Default 2000 (guess: far above a LAN handshake).
    pub connect_timeout_ms: u64,
    /// Longest `send` waits for queue space, ms. 1..=600_000. Default 10_000
    /// (guess: longer than a reconnect at full backoff).
    pub send_timeout_ms: u64,
    /// Enables the fault filter (`set_faults`). Off in production; the chaos
    /// tests turn it on. Default false.
    pub chaos: bool,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            max_frame_bytes: 16 << 20,
            queue_len: 1024,
            event_queue_len: 4096,
            ping_interval_ms: 1000,
            ping_timeout_ms: 5000,
            reconnect_min_ms: 50,
            reconnect_max_ms: 5000,
            connect_timeout_ms: 2000,
            send_timeout_ms: 10_000,
            chaos: false,
        }
    }
}

impl TransportConfig {
    /// Checks every field; the error names the first bad key
    /// (`transport.<field>`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "transport.max_frame_bytes",
            self.max_frame_bytes,
            1 << 10,
            1 << 30,
        )?;
        check_range("transport.queue_len", self.queue_len, 1, 1_000_000)?;
        check_range(
            "transport.event_queue_len",
            self.event_queue_len,
            1,
            1_000_000,
        )?;
        check_range(
            "transport.ping_interval_ms",
            self.ping_interval_ms,
            10,
            60_000,
        )?;
        check_range(
            "transport.ping_timeout_ms",
            self.ping_timeout_ms,
            self.ping_interval_ms + 1,
            600_000,
        )?;
        check_range(
            "transport.reconnect_min_ms",
            self.reconnect_min_ms,
            1,
            60_000,
        )?;
        check_range(
            "transport.reconnect_max_ms",
            self.reconnect_max_ms,
            self.reconnect_min_ms,
            600_000,
        )?;
        check_range(
            "transport.connect_timeout_ms",
            self.connect_timeout_ms,
            10,
            60_000,
        )?;
        check_range(
            "transport.send_timeout_ms",
            self.send_timeout_ms,
            1,
            600_000,
        )
    }

    pub(crate) fn max_frame(&self) -> usize {
        usize::try_from(self.max_frame_bytes).unwrap_or(usize::MAX)
    }
    pub(crate) fn queue_len(&self) -> usize {
        usize::try_from(self.queue_len).unwrap_or(usize::MAX)
    }
    pub(crate) fn event_queue_len(&self) -> usize {
        usize::try_from(self.event_queue_len).unwrap_or(usize::MAX)
    }
    pub(crate) fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }
    pub(crate) fn ping_timeout(&self) -> Duration {
        Duration::from_millis(self.ping_timeout_ms)
    }
    pub(crate) fn reconnect_min(&self) -> Duration {
        Duration::from_millis(self.reconnect_min_ms)
    }
    pub(crate) fn reconnect_max(&self) -> Duration {
        Duration::from_millis(self.reconnect_max_ms)
    }
    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub(crate) fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        TransportConfig::default().validate().unwrap();
    }

    #[test]
    fn validate_names_the_key() {
        type Change = fn(&mut TransportConfig);
        let cases: [(Change, &str); 4] = [
            (|c| c.max_frame_bytes = 10, "transport.max_frame_bytes"),
            (|c| c.queue_len = 0, "transport.queue_len"),
            (|c| c.ping_timeout_ms = 500, "transport.ping_timeout_ms"),
            (|c| c.reconnect_max_ms = 1, "transport.reconnect_max_ms"),
        ];
        for (change, key) in cases {
            let mut c = TransportConfig::default();
            change(&mut c);
            assert_eq!(c.validate().unwrap_err().key(), key);
        }
    }
}
