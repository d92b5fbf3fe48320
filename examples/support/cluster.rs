//! The benchmarks' in-process clusters: `tests/dataplane_common`'s clusters
//! (real TCP data plane on 127.0.0.1, every port 0; HyParView active view 2
//! / passive 4, client_server servers 1–3 with k = 2), with the production
//! transport and executor settings instead of the tests' (no fault filter,
//! default pings, drains and timeouts). An example includes both files:
//!
//! ```ignore
//! #[path = "../tests/dataplane_common/mod.rs"]
//! mod dataplane_common;
//! #[path = "support/cluster.rs"]
//! mod cluster;
//! ```

#![allow(dead_code)] // each bench uses a different part

use anyhow::{bail, Result};
use topod::executor::ExecutorConfig;
use topod::model::Topology;
use topod::transport::TransportConfig;

pub use crate::dataplane_common::{init_tracing, Cluster};

/// Most attempts at one switch (a prepare that fails verification is
/// aborted and tried again).
const ATTEMPTS: usize = 10;

/// Starts `n` nodes; node 1 bootstraps, the others join, 2 and 3 vote.
pub async fn start(n: usize) -> Cluster {
    Cluster::start_with(n, |cfg| {
        cfg.transport = TransportConfig::default();
        cfg.executor = ExecutorConfig::default();
    })
    .await
}

/// Switches `c` to `topology` (unless it is there already) and waits until
/// every node is steady on it.
pub async fn switch(c: &Cluster, topology: Topology) -> Result<()> {
    if c.all_steady_on(topology) {
        return Ok(());
    }
    let mut last = serde_json::Value::Null;
    for _ in 0..ATTEMPTS {
        last = c.switch(&topology.to_string()).await;
        if last["status"] == "committed" {
            c.wait_steady_on(topology).await;
            return Ok(());
        }
    }
    bail!("switch to {topology} not committed in {ATTEMPTS} attempts; last: {last}")
}
