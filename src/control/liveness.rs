//! When each peer last answered a Raft RPC.
//!
//! openraft 0.9's metrics give each follower's matched log id but not when
//! it last answered, so the Raft network records the time of every
//! successful RPC here. The coordinator uses it to decide which members are
//! live when it commits a transition.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::time::{Duration, Instant};

use crate::model::NodeId;

/// Shared record of the last successful RPC per target.
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    last_ok: Arc<Mutex<BTreeMap<NodeId, Instant>>>,
}

impl Liveness {
    /// Records a successful RPC to `target` now.
    pub fn record_ok(&self, target: NodeId) {
        let mut map = self.last_ok.lock().expect("liveness lock poisoned");
        map.insert(target, Instant::now());
    }

    /// Whether `target` answered within `window`.
    pub fn is_live(&self, target: NodeId, window: Duration) -> bool {
        let map = self.last_ok.lock().expect("liveness lock poisoned");
        map.get(&target).is_some_and(|t| t.elapsed() <= window)
    }

    /// Forgets a removed member.
    pub fn forget(&self, target: NodeId) {
        let mut map = self.last_ok.lock().expect("liveness lock poisoned");
        map.remove(&target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_peer_is_live_within_the_window_only() {
        let l = Liveness::default();
        assert!(!l.is_live(2, Duration::from_secs(1)));
        l.record_ok(2);
        assert!(l.is_live(2, Duration::from_secs(1)));
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(!l.is_live(2, Duration::from_secs(1)));
        l.record_ok(2);
        l.forget(2);
        assert!(!l.is_live(2, Duration::from_secs(1)));
    }
}
