//! Percentiles by sorting (nearest-rank), and unit helpers.

use std::time::Duration;

pub const MIB: f64 = 1024.0 * 1024.0;

/// Summary of a set of latencies, in microseconds.
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `p` of the
/// samples at or below it.
fn rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

pub fn summarize(samples: &[Duration]) -> Summary {
    let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    us.sort_by(f64::total_cmp);
    Summary {
        n: us.len(),
        p50: rank(&us, 0.50),
        p99: rank(&us, 0.99),
        max: us.last().copied().unwrap_or(f64::NAN),
    }
}

pub fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB / d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(rank(&v, 0.5), 50.0);
        assert_eq!(rank(&v, 0.99), 99.0);
        assert_eq!(rank(&v, 1.0), 100.0);
        assert_eq!(rank(&[7.0], 0.99), 7.0);
    }
}
