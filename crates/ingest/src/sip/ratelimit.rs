//! Per-source token bucket for SIP requests: a flood from one address is dropped before it is
//! parsed, so it costs neither parsing nor audit entries. Bounded: past 10 000 tracked sources
//! the table is cleared (a spray of spoofed addresses then gets one burst each, no more).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

const MAX_SOURCES: usize = 10_000;

pub struct RateLimit {
    per_sec: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimit {
    pub fn new(per_sec: u32) -> Self {
        Self {
            per_sec: f64::from(per_sec),
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for `ip`; `false` means drop the request.
    pub fn allow(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut b = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if b.len() >= MAX_SOURCES && !b.contains_key(&ip) {
            b.clear();
        }
        let (tokens, last) = b.entry(ip).or_insert((self.per_sec, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_sec).min(self.per_sec);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_beyond_the_rate_is_refused_and_others_are_not() {
        let rl = RateLimit::new(5);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let allowed = (0..20).filter(|_| rl.allow(a)).count();
        assert!(allowed <= 6, "{allowed}");
        assert!(rl.allow("192.0.2.2".parse().unwrap()));
    }
}
