//! How long an account stays locked after repeated failed logins.
//!
//! Only the schedule lives here; the server counts consecutive failures, resets the count on
//! success, and records when the lock started. Doubling per extra failure slows an online
//! guesser to a crawl while a user who mistyped a few times waits seconds, not hours; the cap
//! stops an attacker from locking a colleague out indefinitely.

/// The lockout schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Consecutive failures that trigger the first lock. 0 behaves like 1.
    pub threshold: u32,
    /// Length of the first lock, in seconds.
    pub base_secs: u64,
    /// No lock is longer than this, in seconds.
    pub max_secs: u64,
}

impl Default for Policy {
    /// Five tries, then 30 s, doubling up to an hour.
    fn default() -> Self {
        Self {
            threshold: 5,
            base_secs: 30,
            max_secs: 3600,
        }
    }
}

impl Policy {
    /// Seconds to lock after `consecutive_failures`, or `None` while below the threshold.
    ///
    /// At the threshold the lock is `base_secs`, and each further failure doubles it up to
    /// `max_secs`. Saturating arithmetic: no input overflows or panics.
    pub fn lock_secs(&self, consecutive_failures: u32) -> Option<u64> {
        let threshold = self.threshold.max(1);
        let extra = consecutive_failures.checked_sub(threshold)?;
        let secs = 2u64
            .checked_pow(extra)
            .and_then(|factor| self.base_secs.checked_mul(factor))
            .unwrap_or(u64::MAX);
        Some(secs.min(self.max_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule() {
        let p = Policy::default();
        assert_eq!((p.threshold, p.base_secs, p.max_secs), (5, 30, 3600));
        let got: Vec<Option<u64>> = (0..=13).map(|n| p.lock_secs(n)).collect();
        assert_eq!(
            got,
            [
                None,
                None,
                None,
                None,
                None,
                Some(30),
                Some(60),
                Some(120),
                Some(240),
                Some(480),
                Some(960),
                Some(1920),
                Some(3600),
                Some(3600),
            ]
        );
    }

    #[test]
    fn no_overflow_or_panic_at_extremes() {
        let p = Policy::default();
        for n in [63, 64, 65, 1000, u32::MAX - 1, u32::MAX] {
            assert_eq!(p.lock_secs(n), Some(3600), "{n}");
        }
        let huge = Policy {
            threshold: 1,
            base_secs: u64::MAX,
            max_secs: u64::MAX,
        };
        assert_eq!(huge.lock_secs(1), Some(u64::MAX));
        assert_eq!(huge.lock_secs(u32::MAX), Some(u64::MAX));
        let zero = Policy {
            threshold: 0,
            base_secs: 0,
            max_secs: 0,
        };
        assert_eq!(zero.lock_secs(0), None);
        assert_eq!(zero.lock_secs(u32::MAX), Some(0));
        let never_locks = Policy {
            threshold: u32::MAX,
            ..Policy::default()
        };
        assert_eq!(never_locks.lock_secs(u32::MAX - 1), None);
        assert_eq!(never_locks.lock_secs(u32::MAX), Some(30));
    }

    #[test]
    fn base_above_cap_is_capped() {
        let p = Policy {
            threshold: 3,
            base_secs: 100,
            max_secs: 50,
        };
        assert_eq!(p.lock_secs(2), None);
        assert_eq!(p.lock_secs(3), Some(50));
    }
}
