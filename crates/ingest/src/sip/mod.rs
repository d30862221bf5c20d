//! The SIPREC recording server (RFC 7866) inside `callvault serve`: SIP over UDP, TCP and TLS,
//! dialogs as far as a recorder needs them, and RTP into the live-ingest pipeline
//! ([`crate::live::LiveCalls`]), so a SIPREC call is journalled, assembled, encrypted and
//! audited exactly like a call streamed over HTTPS.
//!
//! Owns: source admission (address and/or TLS client certificate → tenant, 403 + audit
//! otherwise), the per-source rate limit,
//! answering offers, RTP port leases, and the call's media task. Parsing is `callvault-sip`'s;
//! storage is `live`'s. It must not: record a call from an unknown source, keep plaintext
//! anywhere but the media task's buffers, or let a malformed packet take the listener down.

mod dialog;
mod media;
mod policy;
mod ports;
mod ratelimit;
mod retransmit;
mod sources;
mod transport;

pub use media::MediaCounters;

use crate::Ingest;
use std::net::SocketAddr;

/// Where the SIP listeners are bound (ports may have been 0 in the config).
#[derive(Debug, Clone, Default)]
pub struct Listening {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
}

/// Binds the configured listeners and serves them in the background.
pub async fn start(st: Ingest) -> Result<Listening, String> {
    let cfg = st.cfg.sip.clone();
    if !cfg.enabled() {
        return Ok(Listening::default());
    }
    let tls = match cfg.tls {
        Some(_) => {
            let (cert, key) = st.cfg.sip_tls_paths();
            let ca = st
                .cfg
                .sip_client_roots()
                .map_err(|e| e.to_string())?
                .map(sources::ClientCa::new)
                .transpose()?;
            let clients = sources::AnyClientCertificate::new(ca.as_ref());
            let config = crate::tls::sip_server_config(&cert, &key, clients)?;
            Some((config, ca))
        }
        None => None,
    };
    let srs = dialog::Srs::new(st)?;
    transport::start(srs, &cfg, tls).await
}
