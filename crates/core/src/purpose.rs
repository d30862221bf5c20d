//! The purpose a listener states before hearing a call (T5). Stored verbatim in the audit record.

use crate::ParseError;
use serde::{Deserialize, Serialize};

/// Why someone listens. A closed list so that reports can count accesses by reason; the free
/// text says the specifics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurposeCode {
    /// Follow-up of the caller's care (e.g. a nurse re-checks advice given).
    ClinicalFollowup,
    /// Quality assurance of the advice given.
    QualityReview,
    /// A complaint or incident report about the call.
    Complaint,
    /// A request from the caller (subject access).
    SubjectAccess,
    /// Police, court or regulator request.
    LegalRequest,
}

impl PurposeCode {
    pub const ALL: [PurposeCode; 5] = [
        Self::ClinicalFollowup,
        Self::QualityReview,
        Self::Complaint,
        Self::SubjectAccess,
        Self::LegalRequest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClinicalFollowup => "clinical_followup",
            Self::QualityReview => "quality_review",
            Self::Complaint => "complaint",
            Self::SubjectAccess => "subject_access",
            Self::LegalRequest => "legal_request",
        }
    }
}

/// A purpose code plus a free-text reason of 10 to 500 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    code: PurposeCode,
    text: String,
}

impl Purpose {
    pub fn new(code: PurposeCode, text: &str) -> Result<Self, ParseError> {
        let text = text.trim();
        let n = text.chars().count();
        if !(10..=500).contains(&n) {
            return Err(ParseError::new(
                "purpose",
                "the reason must be 10 to 500 characters saying why you need to hear this call",
            ));
        }
        if text.chars().any(|c| c.is_control()) {
            return Err(ParseError::new(
                "purpose",
                "the reason may not contain control characters",
            ));
        }
        Ok(Self {
            code,
            text: text.to_owned(),
        })
    }

    pub fn code(&self) -> PurposeCode {
        self.code
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The form kept in the audit record: `code: text`.
    pub fn audit_form(&self) -> String {
        format!("{}: {}", self.code.as_str(), self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purpose_needs_a_real_reason() {
        assert!(Purpose::new(PurposeCode::Complaint, "short").is_err());
        assert!(Purpose::new(PurposeCode::Complaint, "bad\u{7}control chars here").is_err());
        let p = Purpose::new(
            PurposeCode::Complaint,
            "  complaint ticket 4711 about advice  ",
        )
        .unwrap();
        assert_eq!(
            p.audit_form(),
            "complaint: complaint ticket 4711 about advice"
        );
    }
}
