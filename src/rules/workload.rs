//! Workload classification: whether application broadcasts or
//! point-to-point messages dominate the window. The monitor calls
//! [`classify_workload`] with the counts summed over every member's
//! summary; rule `event_driven_workload` reads the pattern.

use crate::model::metrics::Workload;
use crate::model::{Thresholds, WorkloadPattern};

/// Classifies `broadcasts` and `direct` application messages sent in the
/// window:
///
/// - `event_driven` when the broadcast share is at least
///   `event_driven_share`, over at least `min_messages` messages;
/// - `request_response` when the share is at most `1 - event_driven_share`,
///   over at least `min_messages` messages;
/// - `mixed` otherwise, and whenever fewer than `min_messages` were sent.
///
/// `broadcast_share` is 0 when nothing was sent. The comparisons are made
/// on counts (`broadcasts >= share × total`, in f64 on integers below
/// 2^53), so the edge `share == event_driven_share` is exact for shares
/// such as 0.7 of 1000 messages.
pub fn classify_workload(broadcasts: u64, direct: u64, thresholds: &Thresholds) -> Workload {
    let messages = broadcasts.saturating_add(direct);
    let broadcast_share = if messages == 0 {
        0.0
    } else {
        broadcasts as f64 / messages as f64
    };
    let pattern = if messages < thresholds.min_messages.max(1) {
        WorkloadPattern::Mixed
    } else if at_least(broadcasts, messages, thresholds.event_driven_share) {
        WorkloadPattern::EventDriven
    } else if at_least(direct, messages, thresholds.event_driven_share) {
        // share <= 1 - s  ⇔  direct / total >= s
        WorkloadPattern::RequestResponse
    } else {
        WorkloadPattern::Mixed
    };
    Workload {
        pattern,
        broadcast_share,
        messages,
    }
}

/// `part / total >= share`, compared as `part >= share × total` with the
/// product rounded to the nearest count-and-a-bit, so 0.7 × 1000 (which is
/// 700.0000000000001 in f64) still admits 700.
fn at_least(part: u64, total: u64, share: f64) -> bool {
    let needed = share * total as f64;
    // One part in 10^9 of slack absorbs the product's rounding error.
    part as f64 >= needed - needed.abs() * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Thresholds {
        Thresholds::default()
    }

    #[test]
    fn a_share_at_the_threshold_is_event_driven() {
        let w = classify_workload(700, 300, &t());
        assert_eq!(w.pattern, WorkloadPattern::EventDriven);
        assert_eq!(w.messages, 1000);
        assert!((w.broadcast_share - 0.7).abs() < 1e-12);
        assert_eq!(
            classify_workload(699, 301, &t()).pattern,
            WorkloadPattern::Mixed
        );
    }

    #[test]
    fn a_share_at_one_minus_the_threshold_is_request_response() {
        assert_eq!(
            classify_workload(300, 700, &t()).pattern,
            WorkloadPattern::RequestResponse
        );
        assert_eq!(
            classify_workload(301, 699, &t()).pattern,
            WorkloadPattern::Mixed
        );
        assert_eq!(
            classify_workload(0, 100, &t()).pattern,
            WorkloadPattern::RequestResponse
        );
    }

    #[test]
    fn too_few_messages_are_mixed_whatever_the_share() {
        assert_eq!(
            classify_workload(99, 0, &t()).pattern,
            WorkloadPattern::Mixed
        );
        assert_eq!(
            classify_workload(100, 0, &t()).pattern,
            WorkloadPattern::EventDriven
        );
        let none = classify_workload(0, 0, &t());
        assert_eq!(none.pattern, WorkloadPattern::Mixed);
        assert_eq!(none.broadcast_share, 0.0);
    }

    #[test]
    fn the_thresholds_come_from_the_policy() {
        let strict = Thresholds {
            event_driven_share: 0.9,
            min_messages: 10,
            ..Thresholds::default()
        };
        assert_eq!(
            classify_workload(8, 2, &strict).pattern,
            WorkloadPattern::Mixed
        );
        assert_eq!(
            classify_workload(9, 1, &strict).pattern,
            WorkloadPattern::EventDriven
        );
        assert_eq!(
            classify_workload(1, 9, &strict).pattern,
            WorkloadPattern::RequestResponse
        );
    }
}
