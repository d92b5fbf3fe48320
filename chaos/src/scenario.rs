//! A run's parameters: `chaos/scenarios/*.toml`, overridden by the
//! command line. Unknown keys are refused, naming the key.

use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::nemesis::Timing;

/// The workload's rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    /// Concurrent switch clients.
    pub switch_clients: u32,
    /// Pause between one client's switches, ms (uniform in the range).
    pub switch_interval_ms: (u64, u64),
    /// Deadline of a switch request, ms (past it the outcome is unknown).
    pub switch_timeout_ms: u64,
    /// Pause between policy changes, ms (uniform); 0,0 turns them off.
    pub policy_interval_ms: (u64, u64),
    /// Pause between one node's broadcasts, ms.
    pub broadcast_interval_ms: u64,
    /// Broadcasts go on this long after the final heal, ms (gap repair
    /// needs later broadcasts to find gaps).
    pub broadcast_tail_ms: u64,
}

impl Default for Workload {
    fn default() -> Self {
        // Guesses sized for 5 nodes on 2 shared cores.
        Workload {
            switch_clients: 2,
            switch_interval_ms: (500, 2_500),
            switch_timeout_ms: 10_000,
            policy_interval_ms: (5_000, 12_000),
            broadcast_interval_ms: 250,
            broadcast_tail_ms: 5_000,
        }
    }
}

/// The schedule's timing in the file's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingFile {
    pub warmup_ms: u64,
    pub hold_ms: (u64, u64),
    pub quiet_ms: (u64, u64),
}

impl Default for TimingFile {
    fn default() -> Self {
        let t = Timing::default();
        TimingFile {
            warmup_ms: t.warmup_ms,
            hold_ms: t.hold_ms,
            quiet_ms: t.quiet_ms,
        }
    }
}

/// One scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    pub nodes: usize,
    /// Nodes `1..=voters` are the initial voters; the rest join as
    /// learners.
    pub voters: usize,
    pub duration_s: u64,
    pub seed: Option<u64>,
    /// `all`, `none`, or a comma-separated list (see `nemesis::Kind`).
    pub nemesis: String,
    /// How long the cluster may take to converge after the final heal.
    pub converge_timeout_s: u64,
    /// First three bytes of the /24 the harness creates.
    pub subnet: [u8; 3],
    pub timing: TimingFile,
    pub workload: Workload,
    /// Merged over every node's generated config (e.g. `[node.raft]`).
    pub node: toml::Table,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            nodes: 5,
            voters: 5,
            duration_s: 60,
            seed: None,
            nemesis: "all".into(),
            converge_timeout_s: 60,
            subnet: [10, 213, 77],
            timing: TimingFile::default(),
            workload: Workload::default(),
            node: toml::Table::new(),
        }
    }
}

impl Scenario {
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("scenario {}", path.display()))
    }

    pub fn timing(&self) -> Timing {
        Timing {
            warmup_ms: self.timing.warmup_ms,
            hold_ms: self.timing.hold_ms,
            quiet_ms: self.timing.quiet_ms,
        }
    }

    /// Checks the values, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(1..=253).contains(&self.nodes) {
            bail!("nodes = {}: must be 1..=253", self.nodes);
        }
        if self.voters == 0 || self.voters > self.nodes {
            bail!(
                "voters = {}: must be 1..=nodes ({})",
                self.voters,
                self.nodes
            );
        }
        if self.duration_s == 0 {
            bail!("duration_s must be at least 1");
        }
        for (key, (lo, hi)) in [
            ("timing.hold_ms", self.timing.hold_ms),
            ("timing.quiet_ms", self.timing.quiet_ms),
            (
                "workload.switch_interval_ms",
                self.workload.switch_interval_ms,
            ),
            (
                "workload.policy_interval_ms",
                self.workload.policy_interval_ms,
            ),
        ] {
            if lo > hi {
                bail!("{key} = [{lo}, {hi}]: the first must not exceed the second");
            }
        }
        if self.timing.hold_ms.0 == 0 {
            bail!("timing.hold_ms must start at 1 ms or more");
        }
        if self.workload.broadcast_interval_ms == 0 {
            bail!("workload.broadcast_interval_ms must be at least 1");
        }
        if self.subnet[0] == 127 {
            bail!("subnet = {:?}: loopback cannot be bridged", self.subnet);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_scenarios_parse_and_validate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("scenarios dir") {
            let path = entry.expect("entry").path();
            let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            s.validate()
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            let list: Result<crate::nemesis::NemesisList, _> = s.nemesis.parse();
            assert!(list.is_ok(), "{}: {list:?}", path.display());
            n += 1;
        }
        assert!(n >= 2, "smoke and long at least");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = toml::from_str::<Scenario>("nodse = 3").expect_err("unknown key");
        assert!(e.to_string().contains("nodse"), "{e}");
        let s: Scenario = toml::from_str("nodes = 3\nvoters = 4").expect("parses");
        let e = s.validate().expect_err("voters > nodes");
        assert!(e.to_string().contains("voters"), "{e}");
        let s: Scenario = toml::from_str("[timing]\nhold_ms = [9, 3]").expect("parses");
        assert!(s
            .validate()
            .expect_err("range")
            .to_string()
            .contains("timing.hold_ms"));
    }
}
