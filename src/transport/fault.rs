//! The fault filter: drops or delays frames to and from chosen peers. Off
//! unless the config enables chaos mode; the chaos tests set its rules
//! through the admin API. Drops use a seeded RNG so a run can be replayed.
//!
//! It applies to every frame after the handshake (pings too, so a full drop
//! looks like a partition to the ping timeout), and a rule dropping every
//! frame in both directions also refuses new links with that peer, so a
//! partition does not flap.

use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::TransportError;
use crate::model::NodeId;

/// Which frames a rule applies to, seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Frames this node sends to the peer.
    Outbound,
    /// Frames this node receives from the peer.
    Inbound,
    Both,
}

/// One rule: frames to/from `peer` are dropped with `drop_probability`,
/// and the others are delayed by `delay` (order is kept: a delayed frame
/// holds back the ones behind it, like a slow link).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub peer: NodeId,
    pub direction: Direction,
    /// 0.0..=1.0.
    pub drop_probability: f64,
    pub delay: Duration,
}

/// The whole rule set; replaces the previous one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultRules {
    pub rules: Vec<FaultRule>,
    /// Seed of the drop decisions.
    pub seed: u64,
}

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Verdict {
    pub drop: bool,
    pub delay: Duration,
}

/// The installed rules; a no-op while empty.
#[derive(Debug)]
pub(crate) struct FaultFilter {
    enabled: bool,
    state: Mutex<Option<(FaultRules, ChaCha8Rng)>>,
}

impl FaultFilter {
    pub fn new(enabled: bool) -> Self {
        FaultFilter {
            enabled,
            state: Mutex::new(None),
        }
    }

    /// Installs `rules`. Refused when chaos mode is off or a rule is invalid;
    /// then nothing changes.
    pub fn set(&self, rules: FaultRules) -> Result<(), TransportError> {
        if !self.enabled {
            return Err(TransportError::ChaosDisabled);
        }
        if let Some(r) = rules
            .rules
            .iter()
            .find(|r| !(0.0..=1.0).contains(&r.drop_probability))
        {
            return Err(TransportError::InvalidFault(format!(
                "drop_probability {} for node {} is outside 0..=1",
                r.drop_probability, r.peer
            )));
        }
        let rng = ChaCha8Rng::seed_from_u64(rules.seed);
        *self.lock() = Some((rules, rng));
        Ok(())
    }

    /// Removes every rule. Refused when chaos mode is off.
    pub fn clear(&self) -> Result<(), TransportError> {
        if !self.enabled {
            return Err(TransportError::ChaosDisabled);
        }
        *self.lock() = None;
        Ok(())
    }

    /// Whether chaos mode is on (rules may be installed).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The installed rules (`None`: none installed, or cleared).
    pub fn rules(&self) -> Option<FaultRules> {
        self.lock().as_ref().map(|(rules, _)| rules.clone())
    }

    /// The verdict for one frame to (`outbound`) or from `peer`.
    pub fn judge(&self, peer: NodeId, outbound: bool) -> Verdict {
        if !self.enabled {
            return Verdict::default();
        }
        let mut guard = self.lock();
        let Some((rules, rng)) = guard.as_mut() else {
            return Verdict::default();
        };
        let mut v = Verdict::default();
        for r in rules.rules.iter().filter(|r| r.peer == peer) {
            let applies = match r.direction {
                Direction::Both => true,
                Direction::Outbound => outbound,
                Direction::Inbound => !outbound,
            };
            if applies {
                v.drop |= r.drop_probability > 0.0 && rng.gen_bool(r.drop_probability);
                v.delay = v.delay.max(r.delay);
            }
        }
        v
    }

    /// True when a rule drops every frame to and from `peer`: new links
    /// with it are refused.
    pub fn partitioned(&self, peer: NodeId) -> bool {
        if !self.enabled {
            return false;
        }
        let guard = self.lock();
        let Some((rules, _)) = guard.as_ref() else {
            return false;
        };
        let full = |dir: Direction| {
            rules.rules.iter().any(|r| {
                r.peer == peer
                    && r.drop_probability >= 1.0
                    && (r.direction == dir || r.direction == Direction::Both)
            })
        };
        full(Direction::Outbound) && full(Direction::Inbound)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(FaultRules, ChaCha8Rng)>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(peer: NodeId, direction: Direction, p: f64, delay_ms: u64) -> FaultRule {
        FaultRule {
            peer,
            direction,
            drop_probability: p,
            delay: Duration::from_millis(delay_ms),
        }
    }

    #[test]
    fn disabled_filter_refuses_rules_and_passes_everything() {
        let f = FaultFilter::new(false);
        let rules = FaultRules {
            rules: vec![rule(2, Direction::Both, 1.0, 0)],
            seed: 1,
        };
        assert!(matches!(f.set(rules), Err(TransportError::ChaosDisabled)));
        assert!(matches!(f.clear(), Err(TransportError::ChaosDisabled)));
        assert_eq!(f.judge(2, true), Verdict::default());
    }

    #[test]
    fn rules_apply_to_their_peer_and_direction_only() {
        let f = FaultFilter::new(true);
        f.set(FaultRules {
            rules: vec![
                rule(2, Direction::Outbound, 1.0, 0),
                rule(3, Direction::Inbound, 0.0, 40),
            ],
            seed: 1,
        })
        .unwrap();
        assert!(f.judge(2, true).drop);
        assert!(!f.judge(2, false).drop);
        assert_eq!(f.judge(3, false).delay, Duration::from_millis(40));
        assert_eq!(f.judge(3, true), Verdict::default());
        assert_eq!(f.judge(4, true), Verdict::default());
        assert!(!f.partitioned(2));
        assert_eq!(f.rules().map(|r| r.rules.len()), Some(2));
        f.clear().unwrap();
        assert_eq!(f.rules(), None);
        assert!(!f.judge(2, true).drop);
    }

    #[test]
    fn drops_replay_from_the_seed() {
        let run = || {
            let f = FaultFilter::new(true);
            f.set(FaultRules {
                rules: vec![rule(2, Direction::Both, 0.5, 0)],
                seed: 42,
            })
            .unwrap();
            (0..64).map(|_| f.judge(2, true).drop).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().any(|d| *d) && a.iter().any(|d| !*d));
    }

    #[test]
    fn full_drop_both_ways_is_a_partition_and_bad_probability_is_refused() {
        let f = FaultFilter::new(true);
        f.set(FaultRules {
            rules: vec![rule(5, Direction::Both, 1.0, 0)],
            seed: 0,
        })
        .unwrap();
        assert!(f.partitioned(5));
        let bad = FaultRules {
            rules: vec![rule(5, Direction::Both, 1.5, 0)],
            seed: 0,
        };
        assert!(matches!(f.set(bad), Err(TransportError::InvalidFault(_))));
        assert!(f.partitioned(5), "a refused rule set leaves the old one");
    }
}
