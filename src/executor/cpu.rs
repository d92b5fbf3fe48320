//! The process's CPU time (user + system, every thread), for the node
//! summary's `cpu_share`. Read with `getrusage(RUSAGE_SELF)`, which every
//! Unix has (µs resolution; no `/proc` needed). Several nodes in one
//! process (the tests) share the figure.

use std::time::Duration;

/// CPU time the process has used since it started; zero if the call
/// fails (it cannot for `RUSAGE_SELF`; logged), so `cpu_share` reads 0.
pub fn process_cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => timeval(u.user_time()) + timeval(u.system_time()),
        Err(e) => {
            tracing::warn!(error = %e, "getrusage failed: cpu_share reads 0");
            Duration::ZERO
        }
    }
}

fn timeval(t: nix::sys::time::TimeVal) -> Duration {
    let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
    let micros = u32::try_from(t.tv_usec()).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_while_the_process_computes() {
        let before = process_cpu_time();
        // Compute until 10 ms of CPU time show (a loaded machine may take
        // longer in wall time; the deadline only stops a broken reading).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut x = 1u64;
        while process_cpu_time() < before + Duration::from_millis(10) {
            assert!(std::time::Instant::now() < deadline, "CPU time never grew");
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        assert!(process_cpu_time() >= before + Duration::from_millis(10));
    }
}
