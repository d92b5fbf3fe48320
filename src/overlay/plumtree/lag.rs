//! How long to wait for an announced payload before grafting.
//!
//! The paper's missing-message timer is a constant. Over a tree shaped for
//! one sender, a broadcast from another sender can travel a long eager path
//! while a lazy neighbour announces it early; a constant timeout then
//! grafts, the eager copy arrives anyway, and every such race costs a
//! duplicate payload (measured: mean RMR 0.54 with random senders at
//! 2,000 nodes and an 80 ms timeout, 0.10 at 300 ms). So the wait adapts:
//! the node measures, for announced messages, how long after the first
//! IHAVE the eager copy really arrived, and waits for the largest recent
//! lag plus a margin, never less than `ihave_timeout` and never more than
//! [`MAX_FACTOR`] times it. Only eager copies that do arrive are measured,
//! so lost links (no copy ever comes) do not lengthen the wait.

use std::collections::VecDeque;
use std::time::Duration;

/// Recent lags remembered. Guess.
const SAMPLES: usize = 16;
/// Upper bound of the wait, in multiples of `ihave_timeout`. Guess: keeps
/// repair after a failure within a second at the default 80 ms.
pub(super) const MAX_FACTOR: u32 = 8;
/// Added to the largest lag seen (one more hop of jitter). Guess.
const MARGIN: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub(super) struct GraftDelay {
    base: Duration,
    samples: VecDeque<Duration>,
}

impl GraftDelay {
    pub(super) fn new(base: Duration) -> Self {
        GraftDelay {
            base,
            samples: VecDeque::new(),
        }
    }

    /// An eager copy arrived `lag` after the first announcement.
    pub(super) fn observe(&mut self, lag: Duration) {
        if self.samples.len() >= SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(lag);
    }

    /// The wait before the first GRAFT.
    pub(super) fn timeout(&self) -> Duration {
        let learned = self
            .samples
            .iter()
            .max()
            .map_or(Duration::ZERO, |&m| m + MARGIN);
        learned.clamp(self.base, self.base * MAX_FACTOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_the_largest_recent_lag_within_bounds() {
        let ms = Duration::from_millis;
        let mut d = GraftDelay::new(ms(80));
        assert_eq!(d.timeout(), ms(80));
        d.observe(ms(10));
        assert_eq!(d.timeout(), ms(80));
        d.observe(ms(200));
        assert_eq!(d.timeout(), ms(220));
        d.observe(ms(5000));
        assert_eq!(d.timeout(), ms(640));
        for _ in 0..SAMPLES {
            d.observe(ms(100));
        }
        assert_eq!(d.timeout(), ms(120));
    }
}
