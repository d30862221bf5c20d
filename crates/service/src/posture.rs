//! A posture finding: one thing that makes this deployment unsafe, with its severity. The
//! checks that find them are the server's (`posture.rs`) and each domain's own (the lifecycle's
//! `posture.rs`); the type is here so that both, and the metrics, speak it.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Self::Info,
        Self::Low,
        Self::Medium,
        Self::High,
        Self::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// One thing wrong, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// Stable identifier, e.g. `master_key_permissions`.
    pub id: &'static str,
    pub severity: Severity,
    pub explanation: String,
    pub fix: String,
}

/// How many findings of each severity, for the metrics.
pub fn counts(findings: &[Finding]) -> [(Severity, usize); 5] {
    Severity::ALL.map(|s| (s, findings.iter().filter(|f| f.severity == s).count()))
}
