//! The edge: every failure becomes an HTTP status, a stable machine code and a message for the
//! user. The logged detail is a separate field and never reaches the client.

use crate::keys::KeyError;
use crate::lifecycle::LifecycleError;
use crate::lifecycle::policy::AdmissionError;
use crate::provisioning::ProvisioningError;
use crate::storing::StoringError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use callvault_store::StoreError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For the log only.
    pub detail: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `unauthenticated`.
    pub error: &'static str,
    /// What was wrong and what to do.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first: send a session cookie or an `Authorization: Bearer` token",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such resource, or not visible to you",
        )
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete the request; the operator can find details in the log",
        );
        e.detail = Some(detail.into());
        e
    }
    /// The audit record could not be written, so the action was not performed (fail closed).
    pub fn audit_unavailable(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            "the audit record could not be written, so nothing was done; try again later",
        );
        e.detail = Some(detail.into());
        e
    }
    pub fn integrity() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "integrity_error",
            "the stored recording failed its integrity check and was not served; the failure was recorded",
        )
    }
    /// The same answer with the cause for the log.
    fn with_detail(mut self, detail: impl ToString) -> Self {
        self.detail = Some(detail.to_string());
        self
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            // An ingest node answers as if a decrypting route did not exist.
            KeyError::IngestNode => ApiError::not_found(),
            KeyError::Store(e) => e.into(),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Invalid(m) => ApiError::bad_request(m),
            LifecycleError::AuditUnavailable(d) => ApiError::audit_unavailable(d),
            LifecycleError::Store(e) => e.into(),
            LifecycleError::Keys(e) => e.into(),
            e @ LifecycleError::Integrity(_) => ApiError::integrity().with_detail(e),
            LifecycleError::Internal(d) => ApiError::internal(d),
        }
    }
}

impl From<AdmissionError> for ApiError {
    fn from(e: AdmissionError) -> Self {
        match e {
            AdmissionError::NotRecorded { ref tenant, .. } => {
                let message = format!(
                    "{e}. The tenant's privacy officer sets policies with POST /api/v1/tenants/{tenant}/recording-policies"
                );
                ApiError::new(StatusCode::FORBIDDEN, "not_recorded", message)
            }
            AdmissionError::AuditUnavailable(d) => ApiError::audit_unavailable(d),
            AdmissionError::Store(e) => e.into(),
        }
    }
}

impl From<StoringError> for ApiError {
    fn from(e: StoringError) -> Self {
        match e {
            StoringError::AuditUnavailable(d) => ApiError::audit_unavailable(d),
            StoringError::Store(e) => e.into(),
        }
    }
}

impl From<ProvisioningError> for ApiError {
    fn from(e: ProvisioningError) -> Self {
        match e {
            ProvisioningError::Invalid(m) => ApiError::bad_request(m),
            ProvisioningError::UsernameTaken => ApiError::conflict(e.to_string()),
            ProvisioningError::Store(e) => e.into(),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Conflict(_) => ApiError::conflict("that already exists"),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<callvault_core::ParseError> for ApiError {
    fn from(e: callvault_core::ParseError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(
                code = self.code,
                detail = self.detail.as_deref().unwrap_or(""),
                "request failed"
            );
        }
        (
            self.status,
            Json(ErrorBody {
                error: self.code,
                message: self.message,
            }),
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
