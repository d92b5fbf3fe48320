//! `[executor]`: timings and limits of the overlay executor.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{check_range, ConfigError};

/// Executor settings; plain numbers (ms, counts) so TOML and environment
/// overrides stay simple, with `Duration` accessors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Longest wait for a new overlay to form, ms. 10..=600_000. Default
    /// 5000 (guess: HyParView joins take a few round trips).
    pub form_timeout_ms: u64,
    /// Longest wait for a probe broadcast to be acked by every expected
    /// live member, ms. 10..=600_000. Default 2000 (guess).
    pub verify_timeout_ms: u64,
    /// A measured round trip over an overlay link above this fails the
    /// verification, ms. 1..=600_000. Default 500 (guess: far above a LAN).
    pub rtt_threshold_ms: u64,
    /// How long the old overlay keeps running after a cut-over, ms; longer
    /// than a commit takes to reach every live member. 10..=600_000.
    /// Default 2000 (guess: ten Raft heartbeats at the default 200 ms).
    pub drain_grace_ms: u64,
    /// A new prepare arriving while draining ends the drain early, but not
    /// before this long after the cut-over, ms (so the other nodes have
    /// seen the commit). 0..=`drain_grace_ms`. Default 300 (guess).
    pub drain_min_ms: u64,
    /// Period between probe broadcasts while verifying, ms. 1..=60_000.
    /// Default 200 (guess: a node that had not built the overlay yet gets
    /// the next one).
    pub probe_interval_ms: u64,
    /// On-demand direct links kept open, links. 1..=100_000. Default 64.
    pub direct_links: u64,
    /// Commands (API calls, broadcasts, sends) queued to the executor,
    /// commands. 1..=1_000_000. Default 4096 (guess).
    pub command_queue_len: u64,
    /// Messages a subscriber may fall behind before it is told `Lagged`,
    /// messages. 1..=1_000_000. Default 4096 (guess).
    pub subscriber_queue_len: u64,
    /// Frames of an overlay instance this node does not run yet (it has not
    /// applied the switch yet) kept until it starts, frames. 0..=1_000_000.
    /// Default 4096 (guess).
    pub early_frames: u64,
    /// After a cut-over the new overlay is watched this long: probe rounds
    /// go on, and one that does not reach every live member within
    /// `verify_timeout_ms` fails the verification (the leader then rolls
    /// the switch back), ms. 0..=600_000. Default 250 (guess: about the
    /// drain; longer catches more, but delays `Verified`).
    pub watch_ms: u64,
    /// A steady HyParView or Plumtree overlay is probed this often; a probe
    /// that misses members makes the node join through one of them, which
    /// heals a split graph, ms. 0 (never) or 100..=3_600_000. Default 5000
    /// (guess: a split is healed within seconds, at one broadcast per node
    /// per period).
    pub health_interval_ms: u64,
    /// While this node broadcasts, it tells every live member its latest
    /// broadcast number this often, ms (gap repair). 10..=60_000. Default
    /// 200 (guess: a lost tail is noticed within a few hundred ms).
    pub summary_interval_ms: u64,
    /// A gap in an origin's broadcasts open this long is asked for again,
    /// ms; the overlay's own repair gets its chance first. 10..=60_000.
    /// Default 300 (guess: above Plumtree's graft timeout on a LAN).
    pub repair_delay_ms: u64,
    /// Own broadcasts kept for resending, messages. 1..=10_000_000.
    /// Default 16384.
    pub repair_buffer_messages: u64,
    /// Own broadcasts kept for resending, bytes. 1024..=17_179_869_184.
    /// Default 67108864 (64 MiB).
    pub repair_buffer_bytes: u64,
    /// Nodes that probe an overlay under check (prepare, verify, health),
    /// nodes. 0 (every node: each probe is acked by every member, so a
    /// check costs members² messages) or 1..=100_000: only this many,
    /// chosen per overlay instance by a hash every node computes alike;
    /// the others check formation alone. Default 0 (guess: exact up to
    /// hundreds of nodes; set it at thousands).
    pub probers: u64,
    /// Members told of this node's latest broadcast number per summary
    /// round (gap repair), members. 0 (every live member: a broadcast
    /// costs members × 5 summaries) or 1..=100_000: this many per round,
    /// in turn through the members, plus the current overlay's links.
    /// Default 0 (guess: as `probers`).
    pub summary_peers: u64,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            form_timeout_ms: 5000,
            verify_timeout_ms: 2000,
            rtt_threshold_ms: 500,
            drain_grace_ms: 2000,
            drain_min_ms: 300,
            probe_interval_ms: 200,
            direct_links: 64,
            command_queue_len: 4096,
            subscriber_queue_len: 4096,
            early_frames: 4096,
            watch_ms: 250,
            health_interval_ms: 5000,
            summary_interval_ms: 200,
            repair_delay_ms: 300,
            repair_buffer_messages: 16_384,
            repair_buffer_bytes: 64 << 20,
            probers: 0,
            summary_peers: 0,
        }
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl ExecutorConfig {
    /// Checks every field; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "executor.form_timeout_ms",
            self.form_timeout_ms,
            10,
            600_000,
        )?;
        check_range(
            "executor.verify_timeout_ms",
            self.verify_timeout_ms,
            10,
            600_000,
        )?;
        check_range(
            "executor.rtt_threshold_ms",
            self.rtt_threshold_ms,
            1,
            600_000,
        )?;
        check_range("executor.drain_grace_ms", self.drain_grace_ms, 10, 600_000)?;
        check_range(
            "executor.drain_min_ms",
            self.drain_min_ms,
            0,
            self.drain_grace_ms,
        )?;
        check_range(
            "executor.probe_interval_ms",
            self.probe_interval_ms,
            1,
            60_000,
        )?;
        check_range("executor.direct_links", self.direct_links, 1, 100_000)?;
        check_range(
            "executor.command_queue_len",
            self.command_queue_len,
            1,
            1_000_000,
        )?;
        check_range(
            "executor.subscriber_queue_len",
            self.subscriber_queue_len,
            1,
            1_000_000,
        )?;
        check_range("executor.early_frames", self.early_frames, 0, 1_000_000)?;
        check_range("executor.watch_ms", self.watch_ms, 0, 600_000)?;
        if self.health_interval_ms != 0 {
            check_range(
                "executor.health_interval_ms",
                self.health_interval_ms,
                100,
                3_600_000,
            )?;
        }
        check_range(
            "executor.summary_interval_ms",
            self.summary_interval_ms,
            10,
            60_000,
        )?;
        check_range("executor.repair_delay_ms", self.repair_delay_ms, 10, 60_000)?;
        check_range(
            "executor.repair_buffer_messages",
            self.repair_buffer_messages,
            1,
            10_000_000,
        )?;
        check_range(
            "executor.repair_buffer_bytes",
            self.repair_buffer_bytes,
            1024,
            16 << 30,
        )?;
        check_range("executor.probers", self.probers, 0, 100_000)?;
        check_range("executor.summary_peers", self.summary_peers, 0, 100_000)?;
        Ok(())
    }
    pub fn form_timeout(&self) -> Duration {
        ms(self.form_timeout_ms)
    }
    pub fn verify_timeout(&self) -> Duration {
        ms(self.verify_timeout_ms)
    }
    pub fn rtt_threshold(&self) -> Duration {
        ms(self.rtt_threshold_ms)
    }
    pub fn drain_grace(&self) -> Duration {
        ms(self.drain_grace_ms)
    }
    pub fn drain_min(&self) -> Duration {
        ms(self.drain_min_ms)
    }
    pub fn probe_interval(&self) -> Duration {
        ms(self.probe_interval_ms)
    }
    /// `None`: no periodic health check.
    pub fn health_interval(&self) -> Option<Duration> {
        (self.health_interval_ms > 0).then(|| ms(self.health_interval_ms))
    }
    pub fn watch(&self) -> Duration {
        ms(self.watch_ms)
    }
    pub fn summary_interval(&self) -> Duration {
        ms(self.summary_interval_ms)
    }
    pub fn repair_delay(&self) -> Duration {
        ms(self.repair_delay_ms)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn defaults_are_valid_and_a_bad_key_is_named() {
        let c = super::ExecutorConfig::default();
        c.validate().expect("defaults valid");
        let bad = super::ExecutorConfig {
            drain_min_ms: c.drain_grace_ms + 1,
            ..c
        };
        let e = bad.validate().expect_err("refused");
        assert!(e.to_string().contains("executor.drain_min_ms"), "{e}");
    }
}
