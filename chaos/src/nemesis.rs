//! The nemeses (Jepsen's shapes) and their seeded schedule, as pure
//! functions: the same seed, node count, duration and list give the same
//! schedule, so `--reproduce SEED` replays a failing run's faults.
//!
//! A schedule is a sequence of steps, each a fault held for a while and
//! then healed, with quiet gaps between them; the last fault is healed at
//! the end of the run, so the convergence measured then is measured after
//! a heal. A step may be `after_switch`: the nemesis first asks for a
//! switch and injects the fault as soon as it is accepted (between
//! Preparing and Commit). Targets named `leader` are resolved when the
//! step runs, from the status samples. Faults are honest: nothing tells a
//! node one is coming.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::NodeId;

/// The nemesis kinds `--nemesis` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Cut one node off from every other.
    Isolate,
    /// Cut the current leader off.
    IsolateLeader,
    /// A minority (⌊(n−1)/2⌋ nodes) from the majority.
    Split,
    /// Two halves that only one node (the bridge) sees both of.
    Bridge,
    /// Each node sees a majority, no two the same one.
    Ring,
    /// SIGKILL a node, restart it on the same data dir at the heal.
    Kill,
    /// SIGSTOP a node, SIGCONT at the heal.
    Pause,
    /// Overlay-only delay on a node's data-plane links (fault filter).
    Delay,
    /// Overlay-only loss on a node's data-plane links (fault filter).
    Loss,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Isolate,
        Kind::IsolateLeader,
        Kind::Split,
        Kind::Bridge,
        Kind::Ring,
        Kind::Kill,
        Kind::Pause,
        Kind::Delay,
        Kind::Loss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Isolate => "isolate",
            Kind::IsolateLeader => "isolate-leader",
            Kind::Split => "split",
            Kind::Bridge => "bridge",
            Kind::Ring => "ring",
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Delay => "delay",
            Kind::Loss => "loss",
        }
    }
}

/// What `--nemesis` lists: kinds, and whether some faults come right
/// after an accepted switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NemesisList {
    pub kinds: Vec<Kind>,
    pub after_switch: bool,
}

impl FromStr for NemesisList {
    type Err = String;

    /// `all`, or a comma-separated list of kind names, plus
    /// `after-switch` (also implied by `all`).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut kinds = BTreeSet::new();
        let mut after_switch = false;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => {
                    kinds.extend(Kind::ALL);
                    after_switch = true;
                }
                "none" => {}
                "after-switch" => after_switch = true,
                name => {
                    let k = Kind::ALL.iter().find(|k| k.name() == name).ok_or_else(|| {
                        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                        format!(
                            "unknown nemesis `{name}` (known: all, none, after-switch, {})",
                            known.join(", ")
                        )
                    })?;
                    kinds.insert(*k);
                }
            }
        }
        Ok(NemesisList {
            kinds: kinds.into_iter().collect(),
            after_switch,
        })
    }
}

/// A node chosen at scheduling time, or the leader when the step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Node(NodeId),
    Leader,
}

/// One fault with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    Isolate(Target),
    Split {
        minority: Vec<NodeId>,
    },
    Bridge {
        bridge: NodeId,
        a: Vec<NodeId>,
        b: Vec<NodeId>,
    },
    Ring {
        order: Vec<NodeId>,
    },
    Kill(Target),
    Pause(Target),
    Delay {
        node: NodeId,
        ms: u64,
    },
    /// Loss in per mille (integers keep the schedule exact).
    Loss {
        node: NodeId,
        permille: u32,
    },
}

impl Fault {
    pub fn kind(&self) -> Kind {
        match self {
            Fault::Isolate(Target::Leader) => Kind::IsolateLeader,
            Fault::Isolate(_) => Kind::Isolate,
            Fault::Split { .. } => Kind::Split,
            Fault::Bridge { .. } => Kind::Bridge,
            Fault::Ring { .. } => Kind::Ring,
            Fault::Kill(_) => Kind::Kill,
            Fault::Pause(_) => Kind::Pause,
            Fault::Delay { .. } => Kind::Delay,
            Fault::Loss { .. } => Kind::Loss,
        }
    }
}

/// One step of the schedule: at `at_ms` from the start, hold `fault` for
/// `hold_ms`, then heal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub at_ms: u64,
    pub hold_ms: u64,
    pub fault: Fault,
    pub after_switch: bool,
}

/// Timing of a schedule, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timing {
    /// No fault before this (the cluster forms, the workload starts).
    pub warmup_ms: u64,
    /// How long a fault is held: uniform in this range.
    pub hold_ms: (u64, u64),
    /// Quiet gap between faults: uniform in this range.
    pub quiet_ms: (u64, u64),
}

impl Default for Timing {
    fn default() -> Self {
        // Guesses: holds longer than a few election timeouts, quiet gaps
        // long enough for a re-election and a switch to finish.
        Timing {
            warmup_ms: 5_000,
            hold_ms: (3_000, 8_000),
            quiet_ms: (2_000, 5_000),
        }
    }
}

fn pick_target(rng: &mut ChaCha8Rng, nodes: &[NodeId]) -> Target {
    // A third of the crashes and pauses hit the leader: the interesting
    // case, which random choice would hit 1 in n.
    if rng.gen_ratio(1, 3) {
        Target::Leader
    } else {
        Target::Node(nodes[rng.gen_range(0..nodes.len())])
    }
}

fn shuffled(rng: &mut ChaCha8Rng, nodes: &[NodeId]) -> Vec<NodeId> {
    let mut v = nodes.to_vec();
    v.shuffle(rng);
    v
}

fn make_fault(rng: &mut ChaCha8Rng, kind: Kind, nodes: &[NodeId]) -> Fault {
    let any = |rng: &mut ChaCha8Rng| nodes[rng.gen_range(0..nodes.len())];
    match kind {
        Kind::Isolate => Fault::Isolate(Target::Node(any(rng))),
        Kind::IsolateLeader => Fault::Isolate(Target::Leader),
        Kind::Split => {
            let mut minority = shuffled(rng, nodes);
            minority.truncate((nodes.len() - 1) / 2);
            minority.sort_unstable();
            Fault::Split { minority }
        }
        Kind::Bridge => {
            let order = shuffled(rng, nodes);
            let rest = &order[1..];
            let (a, b) = rest.split_at(rest.len() / 2);
            let (mut a, mut b) = (a.to_vec(), b.to_vec());
            a.sort_unstable();
            b.sort_unstable();
            Fault::Bridge {
                bridge: order[0],
                a,
                b,
            }
        }
        Kind::Ring => Fault::Ring {
            order: shuffled(rng, nodes),
        },
        Kind::Kill => Fault::Kill(pick_target(rng, nodes)),
        Kind::Pause => Fault::Pause(pick_target(rng, nodes)),
        Kind::Delay => Fault::Delay {
            node: any(rng),
            ms: rng.gen_range(50..=400),
        },
        Kind::Loss => Fault::Loss {
            node: any(rng),
            permille: rng.gen_range(50..=300),
        },
    }
}

/// The seeded schedule of a run of `duration_ms` over `nodes`.
pub fn schedule(
    seed: u64,
    list: &NemesisList,
    nodes: &[NodeId],
    duration_ms: u64,
    timing: Timing,
) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut steps = Vec::new();
    if list.kinds.is_empty() || nodes.len() < 2 {
        return steps;
    }
    let mut at = timing.warmup_ms;
    while at + timing.hold_ms.0 <= duration_ms {
        let kind = list.kinds[rng.gen_range(0..list.kinds.len())];
        let fault = make_fault(&mut rng, kind, nodes);
        let hold = rng.gen_range(timing.hold_ms.0..=timing.hold_ms.1);
        let quiet = rng.gen_range(timing.quiet_ms.0..=timing.quiet_ms.1);
        let after_switch = list.after_switch && rng.gen_bool(0.5);
        steps.push(Step {
            at_ms: at,
            hold_ms: hold.min(duration_ms - at),
            fault,
            after_switch,
        });
        at += hold + quiet;
    }
    // The last fault is healed at the end of the run.
    if let Some(last) = steps.last_mut() {
        last.hold_ms = duration_ms - last.at_ms;
    }
    steps
}

/// The nodes a partition leaves without a majority of the voters
/// (`1..=voters`) in sight, themselves included: they can neither lead
/// nor follow a leader that commits, so none of them may say it is ready.
pub fn cut_off(
    blocked: &BTreeMap<NodeId, BTreeSet<NodeId>>,
    nodes: &[NodeId],
    voters: usize,
) -> BTreeSet<NodeId> {
    let is_voter = |n: &NodeId| (*n as usize) <= voters && *n >= 1;
    nodes
        .iter()
        .copied()
        .filter(|x| {
            let none = BTreeSet::new();
            let cut = blocked.get(x).unwrap_or(&none);
            let seen = nodes
                .iter()
                .filter(|y| is_voter(y) && !cut.contains(y))
                .count();
            seen * 2 <= voters
        })
        .collect()
}

/// Who drops whom under a partition fault (both directions listed), or
/// `None` for a fault that is not a partition. `leader` resolves
/// [`Target::Leader`].
pub fn blocked(
    fault: &Fault,
    nodes: &[NodeId],
    leader: NodeId,
) -> Option<BTreeMap<NodeId, BTreeSet<NodeId>>> {
    let mut map: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
    let mut cut = |x: NodeId, y: NodeId| {
        if x != y {
            map.entry(x).or_default().insert(y);
            map.entry(y).or_default().insert(x);
        }
    };
    match fault {
        Fault::Isolate(t) => {
            let x = match t {
                Target::Node(n) => *n,
                Target::Leader => leader,
            };
            for &y in nodes {
                cut(x, y);
            }
        }
        Fault::Split { minority } => {
            for &x in minority {
                for &y in nodes.iter().filter(|y| !minority.contains(y)) {
                    cut(x, y);
                }
            }
        }
        Fault::Bridge { a, b, .. } => {
            for &x in a {
                for &y in b {
                    cut(x, y);
                }
            }
        }
        Fault::Ring { order } => {
            let n = order.len();
            // Each node sees itself and `r` neighbours on either side: a
            // majority (⌊n/2⌋ + 1 nodes).
            let r = (n / 2).div_ceil(2);
            for i in 0..n {
                for j in (i + 1)..n {
                    let d = (j - i).min(n - (j - i));
                    if d > r {
                        cut(order[i], order[j]);
                    }
                }
            }
        }
        _ => return None,
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: [NodeId; 5] = [1, 2, 3, 4, 5];

    fn all() -> NemesisList {
        "all".parse().expect("list")
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let a = schedule(7, &all(), &NODES, 60_000, Timing::default());
        let b = schedule(7, &all(), &NODES, 60_000, Timing::default());
        let c = schedule(8, &all(), &NODES, 60_000, Timing::default());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.len() >= 4, "{a:?}");
    }

    #[test]
    fn steps_stay_inside_the_run_and_the_last_heals_at_its_end() {
        let t = Timing::default();
        for seed in 0..50 {
            let s = schedule(seed, &all(), &NODES, 60_000, t);
            assert!(s[0].at_ms >= t.warmup_ms);
            for w in s.windows(2) {
                assert!(
                    w[0].at_ms + w[0].hold_ms + t.quiet_ms.0 <= w[1].at_ms,
                    "{w:?}"
                );
            }
            let last = s.last().expect("steps");
            assert_eq!(last.at_ms + last.hold_ms, 60_000);
        }
    }

    #[test]
    fn only_listed_kinds_are_scheduled() {
        let list: NemesisList = "kill,split".parse().expect("list");
        assert!(!list.after_switch);
        for seed in 0..20 {
            for s in schedule(seed, &list, &NODES, 60_000, Timing::default()) {
                assert!(matches!(s.fault.kind(), Kind::Kill | Kind::Split), "{s:?}");
                assert!(!s.after_switch);
            }
        }
        let err = "kill,flood".parse::<NemesisList>().expect_err("unknown");
        assert!(err.contains("flood"), "{err}");
        assert!(schedule(
            1,
            &"none".parse().expect("list"),
            &NODES,
            60_000,
            Timing::default()
        )
        .is_empty());
    }

    fn sees(map: &BTreeMap<NodeId, BTreeSet<NodeId>>, x: NodeId) -> BTreeSet<NodeId> {
        let none = BTreeSet::new();
        let cut = map.get(&x).unwrap_or(&none);
        NODES.iter().copied().filter(|y| !cut.contains(y)).collect()
    }

    #[test]
    fn isolating_the_leader_cuts_it_from_everyone() {
        let m = blocked(&Fault::Isolate(Target::Leader), &NODES, 3).expect("partition");
        assert_eq!(sees(&m, 3), BTreeSet::from([3]));
        assert_eq!(sees(&m, 1), BTreeSet::from([1, 2, 4, 5]));
    }

    #[test]
    fn a_split_leaves_a_majority_and_a_minority() {
        let m = blocked(
            &Fault::Split {
                minority: vec![2, 5],
            },
            &NODES,
            1,
        )
        .expect("partition");
        assert_eq!(sees(&m, 2), BTreeSet::from([2, 5]));
        assert_eq!(sees(&m, 4), BTreeSet::from([1, 3, 4]));
    }

    #[test]
    fn a_bridge_node_sees_both_halves_which_do_not_see_each_other() {
        let f = Fault::Bridge {
            bridge: 3,
            a: vec![1, 2],
            b: vec![4, 5],
        };
        let m = blocked(&f, &NODES, 1).expect("partition");
        assert_eq!(sees(&m, 3), BTreeSet::from(NODES));
        assert_eq!(sees(&m, 1), BTreeSet::from([1, 2, 3]));
        assert_eq!(sees(&m, 5), BTreeSet::from([3, 4, 5]));
    }

    #[test]
    fn in_a_majorities_ring_each_node_sees_a_different_majority() {
        let f = Fault::Ring {
            order: vec![3, 1, 4, 5, 2],
        };
        let m = blocked(&f, &NODES, 1).expect("partition");
        let views: BTreeSet<BTreeSet<NodeId>> = NODES.iter().map(|&x| sees(&m, x)).collect();
        assert_eq!(views.len(), 5, "{views:?}");
        for v in &views {
            assert_eq!(v.len(), 3, "{v:?}");
        }
        assert_eq!(sees(&m, 4), BTreeSet::from([1, 4, 5]));
        assert!(blocked(&Fault::Kill(Target::Leader), &NODES, 1).is_none());
    }

    #[test]
    fn cut_off_are_the_nodes_without_a_majority_of_voters_in_sight() {
        let nodes = [1, 2, 3, 4, 5];
        let split = Fault::Split {
            minority: vec![4, 5],
        };
        let map = blocked(&split, &nodes, 1).unwrap();
        assert_eq!(cut_off(&map, &nodes, 5), BTreeSet::from([4, 5]));
        // With 3 voters and 2 learners, the learners 4 and 5 alone see no
        // voter; 1, 2 and 3 see all three.
        assert_eq!(cut_off(&map, &nodes, 3), BTreeSet::from([4, 5]));
        let iso = Fault::Isolate(Target::Node(2));
        let map = blocked(&iso, &nodes, 1).unwrap();
        assert_eq!(cut_off(&map, &nodes, 5), BTreeSet::from([2]));
        let ring = Fault::Ring {
            order: vec![1, 2, 3, 4, 5],
        };
        let map = blocked(&ring, &nodes, 1).unwrap();
        assert!(
            cut_off(&map, &nodes, 5).is_empty(),
            "a ring leaves each a majority"
        );
    }
}
