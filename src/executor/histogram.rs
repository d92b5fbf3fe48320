//! [`LogHistogram`]: a fixed-size, log-scale histogram of integer values
//! (RTTs in µs, broadcast hop counts), the building block of the node
//! summary's sliding window (`super::summary`).
//!
//! Buckets follow the HDR scheme with 8 sub-buckets per power of two:
//! values 0..8 have a bucket each (exact); above, each octave
//! `[2^e, 2^(e+1))` is cut into 8 equal buckets, so a bucket is at most
//! 1/8 of its lower bound wide (≤ 12.5 % relative error). Values past the
//! last bucket count in the last one; the exact maximum is kept beside the
//! counts, so `max` is never rounded. `N` buckets cover values up to
//! `2^((N - 8) / 8 + 3)`: 48 buckets reach 255 (hop counts), 200 buckets
//! reach 2^27 µs ≈ 134 s (RTTs).

/// Sub-buckets per octave, as a power of two.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;

/// A histogram of `N` log-scale buckets; `N` must be at least 8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHistogram<const N: usize> {
    counts: [u32; N],
    total: u64,
    max: u64,
}

impl<const N: usize> Default for LogHistogram<N> {
    fn default() -> Self {
        LogHistogram {
            counts: [0; N],
            total: 0,
            max: 0,
        }
    }
}

/// The bucket of `v` (unbounded).
fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // floor(log2 v) >= SUB_BITS
    let sub = ((v >> (e - SUB_BITS)) as usize) & (SUB - 1);
    SUB + (e - SUB_BITS) as usize * SUB + sub
}

/// The smallest value of bucket `i`.
fn lower(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let e = (i - SUB) / SUB + SUB_BITS as usize;
    let sub = ((i - SUB) % SUB) as u64;
    (1u64 << e) + (sub << (e - SUB_BITS as usize))
}

impl<const N: usize> LogHistogram<N> {
    /// Counts one value.
    pub fn record(&mut self, v: u64) {
        let i = index(v).min(N - 1);
        self.counts[i] = self.counts[i].saturating_add(1);
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value counted (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The `q`-quantile (0.0..=1.0) by nearest rank, as the midpoint of
    /// its bucket, capped at the maximum; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return Some(self.midpoint(i));
            }
        }
        // Saturated counts can fall short of `total`: the top is the max.
        Some(self.max as f64)
    }

    fn midpoint(&self, i: usize) -> f64 {
        let lo = lower(i);
        let hi = if i + 1 < N {
            lower(i + 1) - 1
        } else {
            self.max
        };
        let hi = hi.min(self.max).max(lo);
        (lo + hi) as f64 / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact_and_buckets_tile_the_range() {
        for v in 0..8 {
            assert_eq!(index(v), v as usize);
            assert_eq!(lower(v as usize), v);
        }
        // Every bucket's lower bound maps back to it; consecutive buckets
        // leave no gap.
        for i in 0..200 {
            assert_eq!(index(lower(i)), i, "bucket {i}");
            assert_eq!(index(lower(i + 1) - 1), i, "top of bucket {i}");
        }
        assert_eq!(index(255), 47, "48 buckets hold hop counts to 255");
        assert!(index(1 << 27) >= 200, "200 buckets reach 2^27 µs");
        assert!(index((1 << 27) - 1) < 200);
    }

    #[test]
    fn quantiles_fall_within_one_bucket_of_the_truth() {
        let mut h = LogHistogram::<200>::default();
        for v in 1..=1000u64 {
            h.record(v * 100); // 100 µs .. 100 ms
        }
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((p50 - 50_000.0).abs() <= 50_000.0 / 8.0, "p50 {p50}");
        assert!((p99 - 99_000.0).abs() <= 99_000.0 / 8.0, "p99 {p99}");
        assert_eq!(h.max(), 100_000);
        assert_eq!(h.count(), 1000);
        assert!(h.quantile(1.0).unwrap() <= 100_000.0, "capped at the max");
    }

    #[test]
    fn exact_for_small_integers_and_empty_is_none() {
        let mut h = LogHistogram::<48>::default();
        assert_eq!(h.quantile(0.5), None);
        for v in [1, 1, 1, 2, 2] {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), Some(1.0));
        assert_eq!(h.quantile(0.99), Some(2.0));
        assert_eq!(h.max(), 2);
    }

    #[test]
    fn values_past_the_range_count_in_the_last_bucket_with_their_exact_max() {
        let mut h = LogHistogram::<48>::default();
        h.record(10_000);
        assert_eq!(h.max(), 10_000);
        assert_eq!(h.quantile(0.5), Some((lower(47) + 10_000) as f64 / 2.0));
    }

    #[test]
    fn merge_adds_counts_and_keeps_the_max() {
        let mut a = LogHistogram::<48>::default();
        let mut b = LogHistogram::<48>::default();
        a.record(1);
        b.record(3);
        b.record(3);
        a.merge(&b);
        assert_eq!((a.count(), a.max()), (3, 3));
        assert_eq!(a.quantile(0.5), Some(3.0));
        assert_eq!(a.quantile(0.3), Some(1.0));
    }
}
