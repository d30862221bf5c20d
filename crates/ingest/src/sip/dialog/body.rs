//! What a request's body offers: the SDP offer and the recording metadata, each read from a
//! plain body or a `multipart/mixed` one; a body with neither is refused with 415.

use super::{Reject, reject};
use callvault_sip::message::Message;
use callvault_sip::metadata::Metadata;
use callvault_sip::multipart;
use callvault_sip::sdp::Session;

/// The SDP offer and, when present, the recording metadata of an INVITE body.
pub(super) fn offer_of(msg: &Message) -> Result<(Session, Option<Metadata>), Reject> {
    let (offer, metadata) = body_of(msg)?;
    let offer = offer.ok_or(
        reject(415, "Unsupported Media Type").header("Accept", "application/sdp, multipart/mixed"),
    )?;
    Ok((offer, metadata))
}

/// The SDP offer and the recording metadata of a body, each if present; at least one must be
/// (a re-INVITE or UPDATE may carry metadata alone, RFC 7866 §6.1.1).
pub(super) fn body_of(msg: &Message) -> Result<(Option<Session>, Option<Metadata>), Reject> {
    let bad = |e: callvault_sip::ParseError| reject(400, "Bad Request").warn(e.to_string());
    let content_type = msg.header("Content-Type").unwrap_or("application/sdp");
    let parts = multipart::parts(content_type, &msg.body).map_err(bad)?;
    let offer = parts
        .iter()
        .find(|p| p.content_type == "application/sdp")
        .map(|p| Session::parse(p.body))
        .transpose()
        .map_err(bad)?;
    let metadata = parts
        .iter()
        .find(|p| {
            p.content_type == "application/rs-metadata+xml"
                || p.content_type == "application/rs-metadata"
        })
        .map(|p| Metadata::parse(p.body))
        .transpose()
        .map_err(bad)?;
    if let Some(m) = &metadata {
        tracing::debug!(dialect = ?m.dialect, "recording metadata");
    }
    if offer.is_none() && metadata.is_none() {
        return Err(reject(415, "Unsupported Media Type").header(
            "Accept",
            "application/sdp, application/rs-metadata+xml, application/rs-metadata, multipart/mixed",
        ));
    }
    Ok((offer, metadata))
}
