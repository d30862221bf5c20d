//! Requests to answers: admission of sources, INVITE → live call + RTP ports + SDP answer,
//! re-INVITE/UPDATE (pause, resume, metadata), BYE, CANCEL, OPTIONS, and 4xx for the rest.
//! Server transactions are kept only as far as UDP needs them: a retransmitted request gets
//! the answer already sent (or `100 Trying` while the first copy is still being handled).
//!
//! This module owns the dispatch, the dialogs and the UDP answer cache. `invite` opens a
//! dialog, `reinvite` changes one, `bye` confirms and ends one, `parties` stores the further
//! parties that metadata names, `body` reads a request's SDP offer and metadata.

mod body;
mod bye;
mod invite;
mod parties;
mod reinvite;

use super::media::{MediaCounters, MediaHandle};
use super::ports::{Lease, Ports};
use super::ratelimit::RateLimit;
use super::sources::{self, NotAdmitted, PeerCertificate};
use crate::Ingest;
use crate::config::SipSource;
use callvault_core::{E164, RecordingId, TenantId};
use callvault_crypto::TenantRecipient;
use callvault_sip::message::{Message, Method};
use callvault_sip::metadata::Metadata;
use callvault_sip::sdp::AnswerMedia;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// How long a final answer is kept for retransmissions (RFC 3261 Timer J: 64·T1).
const ANSWER_TTL: Duration = Duration::from_secs(32);
const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE";

/// A server transaction: top Via branch and method (RFC 3261 §17.2.3).
type TransactionKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }
}

struct Dialog {
    local_tag: String,
    media: MediaHandle,
    /// The answer's streams in offer order, with the output channel each feeds.
    answer: Vec<(AnswerMedia, Option<usize>)>,
    session_id: u64,
    version: u64,
    metadata: Option<Metadata>,
    /// Whose call it is, for storing the parties that metadata updates name.
    recording: Recipient,
    /// Turns true when the SRC's ACK arrives (RFC 3261 §13.3.1.4; UDP resends the 200 until).
    acked: watch::Sender<bool>,
    /// The BYE that ends the dialog from our side (sent only if the ACK never comes).
    bye: Vec<u8>,
    _lease: Lease,
}

/// The recording a dialog feeds and what its parties are stored with.
#[derive(Clone)]
struct Recipient {
    tenant: TenantId,
    id: RecordingId,
    /// The tenant key the call is encrypted to.
    key: TenantRecipient,
    /// Stored as the recording's caller; not repeated as a further party.
    caller: Option<E164>,
}

/// The session recording server (SRS, RFC 7866's name for the SIPREC recorder): every
/// transport hands it the requests it reads and sends back what it answers.
pub struct Srs {
    st: Ingest,
    advertise: IpAddr,
    ports: Ports,
    rate: RateLimit,
    counters: Arc<MediaCounters>,
    dialogs: Mutex<HashMap<String, Dialog>>,
    answered: Mutex<HashMap<TransactionKey, (Instant, Vec<u8>)>>,
    in_progress: Mutex<HashSet<String>>,
    /// The UDP listener's socket, for what we send unasked: 200 retransmissions and BYE.
    udp: OnceLock<Arc<UdpSocket>>,
    me: Weak<Srs>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A failure answered with a status, a reason phrase, and extra headers.
struct Reject {
    code: u16,
    reason: &'static str,
    headers: Vec<(&'static str, String)>,
    warning: Option<String>,
}

fn reject(code: u16, reason: &'static str) -> Reject {
    Reject {
        code,
        reason,
        headers: Vec::new(),
        warning: None,
    }
}

impl Reject {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn warn(mut self, text: impl Into<String>) -> Self {
        self.warning = Some(text.into().replace(['"', '\\'], "'"));
        self
    }
}

/// A 500 for this server's own trouble: the cause goes to the log, never on the wire.
fn internal_error(what: &'static str, cause: impl std::fmt::Display) -> Reject {
    tracing::error!(error = %cause, "SIPREC: {what} failed");
    reject(500, "Server Internal Error")
}

impl Srs {
    pub fn new(st: Ingest) -> Result<Arc<Self>, String> {
        let cfg = &st.cfg.sip;
        let advertise = cfg
            .advertise
            .or(cfg.udp.or(cfg.tcp).map(|a| a.ip()))
            .ok_or("no SIP listener configured")?;
        let ports = Ports::new(advertise, cfg.rtp_port_min, cfg.rtp_port_max);
        let rate = RateLimit::new(cfg.max_requests_per_sec);
        let counters = st.metrics.sip_media.clone();
        Ok(Arc::new_cyclic(|me| Self {
            st,
            advertise,
            ports,
            rate,
            counters,
            dialogs: Mutex::default(),
            answered: Mutex::default(),
            in_progress: Mutex::default(),
            udp: OnceLock::new(),
            me: me.clone(),
        }))
    }

    /// Lets the SRS send on the UDP listener's socket (200 retransmissions, BYE).
    pub fn attach_udp(&self, socket: Arc<UdpSocket>) {
        let _ = self.udp.set(socket);
    }

    /// The answers to one received message (usually one; none for ACK, responses and drops).
    pub async fn handle(
        &self,
        raw: &[u8],
        peer: SocketAddr,
        transport: Transport,
        cert: Option<&PeerCertificate>,
    ) -> Vec<Vec<u8>> {
        if !self.rate.allow(peer.ip()) {
            return Vec::new();
        }
        let msg = match Message::parse(raw) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, %peer, "malformed SIP message");
                return Message::bad_request(raw, &e).into_iter().collect();
            }
        };
        let Some(method) = msg.method().cloned() else {
            // A response: only to a BYE we sent, which needs nothing more.
            return Vec::new();
        };
        if method == Method::Ack {
            self.ack(&msg);
            return Vec::new();
        }
        let key = (
            msg.top_via_branch().unwrap_or_default().to_owned(),
            method.as_str().to_owned(),
        );
        if let Some((_, answer)) = lock(&self.answered).get(&key) {
            return vec![answer.clone()];
        }
        if !lock(&self.in_progress).insert(key.0.clone()) {
            return vec![msg.response(100, "Trying", None).to_bytes()];
        }
        let answer = self.respond(&msg, &method, peer, transport, cert).await;
        lock(&self.in_progress).remove(&key.0);
        if transport == Transport::Udp {
            let mut answered = lock(&self.answered);
            answered.retain(|_, (t, _)| t.elapsed() < ANSWER_TTL);
            answered.insert(key, (Instant::now(), answer.clone()));
        }
        vec![answer]
    }

    async fn respond(
        &self,
        msg: &Message,
        method: &Method,
        peer: SocketAddr,
        transport: Transport,
        cert: Option<&PeerCertificate>,
    ) -> Vec<u8> {
        let result = match method {
            Method::Options => self.options(msg, peer, cert),
            Method::Invite if msg.to_tag().is_none() => {
                self.invite(msg, peer, transport, cert).await
            }
            Method::Invite | Method::Update => self.reoffer(msg).await,
            Method::Bye => self.bye(msg).await,
            Method::Cancel => self.cancel(msg),
            Method::Ack | Method::Other(_) => {
                Err(reject(405, "Method Not Allowed").header("Allow", ALLOW))
            }
        };
        match result {
            Ok(answer) => answer.to_bytes(),
            Err(r) => {
                let mut m = msg.response(r.code, r.reason, Some(&random_tag()));
                for (name, value) in r.headers {
                    m.push_header(name, value);
                }
                if let Some(w) = r.warning {
                    m.push_header("Warning", format!("399 callvault \"{w}\""));
                }
                m.to_bytes()
            }
        }
    }

    fn source(
        &self,
        ip: IpAddr,
        cert: Option<&PeerCertificate>,
    ) -> Result<&SipSource, NotAdmitted<'_>> {
        sources::admit(&self.st.cfg.sip.sources, ip, cert)
    }

    fn options(
        &self,
        msg: &Message,
        peer: SocketAddr,
        cert: Option<&PeerCertificate>,
    ) -> Result<Message, Reject> {
        if self.source(peer.ip(), cert).is_err() {
            return Err(reject(403, "Forbidden"));
        }
        let mut ok = msg.response(200, "OK", Some(&random_tag()));
        ok.push_header("Allow", ALLOW);
        ok.push_header("Supported", "siprec");
        ok.push_header("Accept", "application/sdp, application/rs-metadata+xml, application/rs-metadata, multipart/mixed");
        Ok(ok)
    }

    /// `host:port` of our listener on `transport`, as SRCs reach it.
    fn hostport(&self, transport: Transport) -> String {
        let port = match transport {
            Transport::Udp => self.st.cfg.sip.udp.map(|a| a.port()),
            Transport::Tcp => self.st.cfg.sip.tcp.map(|a| a.port()),
            Transport::Tls => self.st.cfg.sip.tls.map(|a| a.port()),
        };
        let host = match self.advertise {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        format!("{host}:{}", port.unwrap_or(5060))
    }
}

fn random_tag() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}
