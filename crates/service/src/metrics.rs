//! A handful of Prometheus counters and one histogram, rendered in the text exposition format.
//! Labels never carry tenant names, numbers or ids.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in seconds, of the [`Histogram`] buckets (a last one, `+Inf`, is implied).
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// A Prometheus histogram of durations over [`BUCKETS`].
#[derive(Default)]
pub struct Histogram {
    /// Observations per bucket, not cumulative; the last is above every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, s: &mut String, name: &str, help: &str) {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut total = 0;
        let bounds = BUCKETS.iter().map(|b| b.to_string()).chain(["+Inf".into()]);
        for (bound, c) in bounds.zip(&self.counts) {
            total += c.load(Ordering::Relaxed);
            let _ = writeln!(s, "{name}_bucket{{le=\"{bound}\"}} {total}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(s, "{name}_sum {sum}\n{name}_count {total}");
    }
}

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
    /// Attempts by this node to store a live call that failed (the call stays in the journal).
    pub live_assembly_failures: AtomicU64,
    /// How long each live group commit took to become durable: with the disk's flush, the
    /// floor of every chunk's acknowledgement.
    pub live_group_commit: Histogram,
    /// RTP counters of the SIPREC recorder, shared with its media tasks.
    pub sip_media: std::sync::Arc<MediaCounters>,
}

/// RTP counters of the SIPREC recorder, shared by every call.
#[derive(Default)]
pub struct MediaCounters {
    pub packets: AtomicU64,
    pub srtp_auth_failures: AtomicU64,
    pub foreign_packets: AtomicU64,
    pub late_packets: AtomicU64,
    pub lost_packets: AtomicU64,
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

    /// Every plain counter: its name, its help text, its value.
    fn counters(&self) -> [(&'static str, &'static str, &AtomicU64); 16] {
        [
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
            (
                "callvault_live_assembly_failures_total",
                "attempts to store a live call as a recording that failed (it stays in the journal and is retried)",
                &self.live_assembly_failures,
            ),
            (
                "callvault_sip_rtp_packets_total",
                "RTP packets accepted by the SIPREC recorder",
                &self.sip_media.packets,
            ),
            (
                "callvault_sip_srtp_auth_failures_total",
                "SRTP packets dropped because their authentication tag was wrong",
                &self.sip_media.srtp_auth_failures,
            ),
            (
                "callvault_sip_rtp_foreign_packets_total",
                "RTP packets dropped because they came from an address outside the call",
                &self.sip_media.foreign_packets,
            ),
            (
                "callvault_sip_rtp_late_packets_total",
                "RTP packets that arrived after their frame was stored",
                &self.sip_media.late_packets,
            ),
            (
                "callvault_sip_rtp_lost_packets_total",
                "RTP packets never received (by sequence number), stored as silence",
                &self.sip_media.lost_packets,
            ),
        ]
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
        for (name, help, c) in self.counters() {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                g(c)
            );
        }
        self.live_group_commit.render(
            &mut s,
            "callvault_live_group_commit_seconds",
            "time for a group commit of live chunks to become durable (write and fdatasync, or commit)",
        );
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
