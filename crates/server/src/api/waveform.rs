//! A call's waveform as SVG, for the console's player. It is drawn from the peaks stored
//! (encrypted) at ingest and is served only under a valid playback grant, so it comes after a
//! stated purpose like the audio itself, and is recorded like it.

use crate::api::Path;
use crate::api::playback::valid_grant;
use crate::error::{ApiError, ApiResult};
use crate::principal::Listener;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use callvault_crypto::{ExposeSecret, decrypt_small};
use callvault_media::peaks::Peaks;

pub async fn waveform(
    State(st): State<AppState>,
    Listener(p, tenant, user): Listener,
    Path(grant): Path<String>,
) -> ApiResult<Response> {
    let keys = st.keys()?;
    let g = valid_grant(&st, &tenant, &user, &grant).await?;
    let rec = st.meta.get_recording(&tenant, &g.recording).await?;
    // Compressed formats have no peaks: 404, and the console shows the player alone.
    let sealed = st.meta.get_peaks(&tenant, &rec.id).await?;
    let mut ev = p.event("recording.waveform", "ok");
    ev.target = Some(rec.id.to_string());
    ev.purpose = Some(g.purpose);
    st.audit
        .record(ev)
        .await
        .map_err(ApiError::audit_unavailable)?;
    let identity = keys.identity(&st.meta, &tenant, rec.key_id).await?;
    let plain = decrypt_small(&identity, &sealed).map_err(|_| ApiError::integrity())?;
    let peaks = Peaks::decode(plain.expose_secret()).ok_or_else(ApiError::integrity)?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml")],
        crate::svg::waveform(&peaks.channels),
    )
        .into_response())
}
