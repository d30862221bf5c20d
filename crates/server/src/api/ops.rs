//! Operational endpoints: health (no data), metrics (authenticated), the OpenAPI document.

use crate::error::ApiResult;
use crate::principal::Monitor;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers; reveals nothing else.
    pub status: &'static str,
}

pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

pub async fn metrics(
    State(st): State<AppState>,
    m: Result<Monitor, crate::error::ApiError>,
) -> ApiResult<impl IntoResponse> {
    if !st.cfg.server.metrics_public() {
        m?;
    }
    let recordings = st.meta.count_recordings().await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(
            recordings,
            &st.posture.lock().map(|p| p.clone()).unwrap_or_default(),
        ),
    ))
}

/// Current posture findings, computed now (admins only: they say where the deployment is weak).
pub async fn posture(
    State(st): State<AppState>,
    crate::principal::Admin(_): crate::principal::Admin,
) -> ApiResult<axum::Json<Vec<crate::posture::Finding>>> {
    Ok(axum::Json(crate::posture::all(&st).await?))
}

pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::routes::openapi_json(),
    )
}
