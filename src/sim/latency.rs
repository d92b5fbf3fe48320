//! Per-link latency models.
//!
//! A link's latency is a pure function of (seed, the two endpoints): the
//! simulator keeps no N×N matrix, and a link keeps the same latency for the
//! whole run in both directions, as a real path would.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::overlay::PeerId;

/// How long a message takes on the link between two nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LatencyModel {
    /// Every link has the same latency.
    Fixed {
        /// Milliseconds, 0..=60_000.
        ms: u64,
    },
    /// Each link's latency is drawn once, uniformly in `min_ms..=max_ms`.
    Uniform {
        /// Milliseconds, 0..=60_000.
        min_ms: u64,
        /// Milliseconds, `min_ms`..=60_000.
        max_ms: u64,
    },
    /// Each node is placed in a region (uniformly, from the seed); a link's
    /// latency is `matrix[a][b]` plus a per-link jitter in `0..=jitter_ms`.
    Regions {
        /// Square matrix of milliseconds; row `i` is region `i`.
        matrix: Vec<Vec<u64>>,
        /// Extra per-link milliseconds, 0..=60_000.
        #[serde(default)]
        jitter_ms: u64,
    },
}

impl Default for LatencyModel {
    /// The benchmark scenario: uniform 10–50 ms.
    fn default() -> Self {
        LatencyModel::Uniform {
            min_ms: 10,
            max_ms: 50,
        }
    }
}

/// splitmix64: a fast, well-mixed hash of a 64-bit value.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn link_hash(seed: u64, a: PeerId, b: PeerId) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    mix64(mix64(seed ^ lo).wrapping_add(hi))
}

impl LatencyModel {
    /// Checks the ranges; the error is `(key, reason)` under `latency.`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, r: String| Err((format!("latency.{k}"), r));
        const MAX: u64 = 60_000;
        match self {
            LatencyModel::Fixed { ms } if *ms > MAX => bad("ms", format!("{ms} > {MAX}")),
            LatencyModel::Uniform { min_ms, max_ms } if *max_ms > MAX || min_ms > max_ms => bad(
                "max_ms",
                format!("need min_ms <= max_ms <= {MAX}, got {min_ms}..={max_ms}"),
            ),
            LatencyModel::Regions { matrix, jitter_ms } => {
                let n = matrix.len();
                if n == 0 || matrix.iter().any(|row| row.len() != n) {
                    return bad("matrix", "must be a non-empty square matrix".into());
                }
                if matrix.iter().flatten().any(|v| *v > MAX) || *jitter_ms > MAX {
                    return bad("matrix", format!("values must be <= {MAX} ms"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The region of `node` (0 unless the model has regions).
    pub fn region(&self, seed: u64, node: PeerId) -> usize {
        match self {
            LatencyModel::Regions { matrix, .. } => {
                (mix64(seed.rotate_left(17) ^ node) % matrix.len() as u64) as usize
            }
            _ => 0,
        }
    }

    /// Latency of the link between `a` and `b` (symmetric).
    pub fn latency(&self, seed: u64, a: PeerId, b: PeerId) -> Duration {
        let ms = match self {
            LatencyModel::Fixed { ms } => *ms,
            LatencyModel::Uniform { min_ms, max_ms } => {
                min_ms + link_hash(seed, a, b) % (max_ms - min_ms + 1)
            }
            LatencyModel::Regions { matrix, jitter_ms } => {
                let (ra, rb) = (self.region(seed, a), self.region(seed, b));
                matrix[ra][rb] + link_hash(seed, a, b) % (jitter_ms + 1)
            }
        };
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_latency_is_symmetric_stable_and_in_range() {
        let m = LatencyModel::default();
        let mut seen = std::collections::BTreeSet::new();
        for a in 1..50u64 {
            for b in 1..50u64 {
                let l = m.latency(7, a, b);
                assert_eq!(l, m.latency(7, b, a));
                assert!((10..=50).contains(&(l.as_millis() as u64)));
                seen.insert(l);
            }
        }
        assert!(seen.len() > 30, "latencies should spread over the range");
    }

    #[test]
    fn regions_use_the_matrix() {
        let m = LatencyModel::Regions {
            matrix: vec![vec![5, 100], vec![100, 5]],
            jitter_ms: 0,
        };
        let (a, b) = (1..100u64)
            .flat_map(|a| (1..100u64).map(move |b| (a, b)))
            .find(|(a, b)| m.region(3, *a) != m.region(3, *b))
            .unwrap();
        assert_eq!(m.latency(3, a, b), Duration::from_millis(100));
        assert!(m.validate().is_ok());
        let bad = LatencyModel::Regions {
            matrix: vec![vec![1, 2]],
            jitter_ms: 0,
        };
        assert_eq!(bad.validate().unwrap_err().0, "latency.matrix");
    }
}
