//! A handful of Prometheus counters, rendered in the text exposition format. Labels never carry
//! tenant names, numbers or ids.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub http_2xx: AtomicU64,
    pub http_4xx: AtomicU64,
    pub http_5xx: AtomicU64,
    pub uploads: AtomicU64,
    pub playbacks: AtomicU64,
    pub integrity_failures: AtomicU64,
    pub login_failures: AtomicU64,
    pub ingest_refused: AtomicU64,
    pub retention_runs: AtomicU64,
    pub recordings_erased: AtomicU64,
    pub blobs_deleted: AtomicU64,
    /// Live chunks acknowledged (stored durably, duplicates included).
    pub live_chunks: AtomicU64,
    /// Live calls assembled into recordings by this node.
    pub live_stored: AtomicU64,
}

/// Shared with `LiveCalls`, which counts for every protocol that uses it.
pub type SharedMetrics = std::sync::Arc<Metrics>;

impl Metrics {
    pub fn count_status(&self, status: u16) {
        let c = match status {
            200..=399 => &self.http_2xx,
            400..=499 => &self.http_4xx,
            _ => &self.http_5xx,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, recordings: u64, posture: &[crate::posture::Finding]) -> String {
        let mut s = String::new();
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(s, "# TYPE callvault_http_responses_total counter");
        for (class, c) in [
            ("2xx", &self.http_2xx),
            ("4xx", &self.http_4xx),
            ("5xx", &self.http_5xx),
        ] {
            let _ = writeln!(
                s,
                "callvault_http_responses_total{{class=\"{class}\"}} {}",
                g(c)
            );
        }
        for (name, help, c) in [
            (
                "callvault_uploads_total",
                "recordings stored",
                &self.uploads,
            ),
            (
                "callvault_playbacks_total",
                "playback requests served",
                &self.playbacks,
            ),
            (
                "callvault_integrity_failures_total",
                "recordings that failed authentication on read",
                &self.integrity_failures,
            ),
            (
                "callvault_login_failures_total",
                "failed sign-in attempts",
                &self.login_failures,
            ),
            (
                "callvault_ingest_refused_total",
                "calls refused because no recording policy covers them",
                &self.ingest_refused,
            ),
            (
                "callvault_retention_runs_total",
                "retention runs completed by this process",
                &self.retention_runs,
            ),
            (
                "callvault_recordings_erased_total",
                "recordings crypto-shredded (retention and erasure requests)",
                &self.recordings_erased,
            ),
            (
                "callvault_erased_blobs_deleted_total",
                "payload blobs of erased recordings deleted",
                &self.blobs_deleted,
            ),
            (
                "callvault_live_chunks_acked_total",
                "live chunks acknowledged durable",
                &self.live_chunks,
            ),
            (
                "callvault_live_calls_stored_total",
                "live calls assembled into recordings",
                &self.live_stored,
            ),
        ] {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                g(c)
            );
        }
        let _ = writeln!(
            s,
            "# TYPE callvault_recordings gauge\ncallvault_recordings {recordings}"
        );
        let _ = writeln!(
            s,
            "# HELP callvault_posture_findings open posture findings by severity\n# TYPE callvault_posture_findings gauge"
        );
        for (sev, n) in crate::posture::counts(posture) {
            let _ = writeln!(
                s,
                "callvault_posture_findings{{severity=\"{}\"}} {n}",
                sev.as_str()
            );
        }
        s
    }
}
