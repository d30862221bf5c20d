//! Requests to answers: admission of sources, INVITE → live call + RTP ports + SDP answer,
//! re-INVITE/UPDATE (pause, resume, metadata), BYE, CANCEL, OPTIONS, and 4xx for the rest.
//! Server transactions are kept only as far as UDP needs them: a retransmitted request gets
//! the answer already sent (or `100 Trying` while the first copy is still being handled).

use super::media::{self, CallSpec, Codec16, Control, MediaCounters, MediaHandle, StreamSpec};
use super::policy::{Refusal, admit_siprec_call};
use super::ports::{Lease, Ports};
use super::ratelimit::RateLimit;
use super::retransmit;
use super::sources::{self, NotAdmitted, PeerCertificate};
use crate::audit_log::Event;
use crate::config::SipSource;
use crate::live::{CallFormat, OpenCall};
use crate::state::AppState;
use callvault_core::{Direction as CallDirection, E164, RecordingId, TenantId};
use callvault_crypto::TenantRecipient;
use callvault_sip::message::{Message, Method};
use callvault_sip::metadata::Metadata;
use callvault_sip::sdp::{self, AnswerMedia, Direction, Session, Transport as MediaTransport};
use callvault_sip::{multipart, srtp};
use callvault_store::Party;
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

pub struct Recorder {
    st: AppState,
    advertise: IpAddr,
    ports: Ports,
    rate: RateLimit,
    counters: Arc<MediaCounters>,
    dialogs: Mutex<HashMap<String, Dialog>>,
    answered: Mutex<HashMap<TransactionKey, (Instant, Vec<u8>)>>,
    in_progress: Mutex<HashSet<String>>,
    /// The UDP listener's socket, for what we send unasked: 200 retransmissions and BYE.
    udp: OnceLock<Arc<UdpSocket>>,
    me: Weak<Recorder>,
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

impl Recorder {
    pub fn new(st: AppState) -> Result<Arc<Self>, String> {
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

    /// Lets the recorder send on the UDP listener's socket (200 retransmissions, BYE).
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
        let answer = self.answer(&msg, &method, peer, transport, cert).await;
        lock(&self.in_progress).remove(&key.0);
        if transport == Transport::Udp {
            let mut answered = lock(&self.answered);
            answered.retain(|_, (t, _)| t.elapsed() < ANSWER_TTL);
            answered.insert(key, (Instant::now(), answer.clone()));
        }
        vec![answer]
    }

    async fn answer(
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

    async fn refuse_and_audit(
        &self,
        peer: SocketAddr,
        transport: Transport,
        tenant: Option<&TenantId>,
        why: &str,
    ) -> Reject {
        let ev = Event {
            actor: format!("sip:{}", peer.ip()),
            tenant: tenant.map(ToString::to_string),
            action: "siprec.refused",
            result: "denied",
            client: Some(peer.ip().to_string()),
            details: Some(serde_json::json!({ "reason": why, "transport": transport.as_str() })),
            ..Event::default()
        };
        if let Err(e) = self.st.audit.record(ev).await {
            tracing::error!(error = %e, "audit unavailable while refusing a SIPREC call");
            return reject(500, "Server Internal Error");
        }
        reject(403, "Forbidden").warn(why)
    }

    async fn invite(
        &self,
        msg: &Message,
        peer: SocketAddr,
        transport: Transport,
        cert: Option<&PeerCertificate>,
    ) -> Result<Message, Reject> {
        let source = match self.source(peer.ip(), cert) {
            Ok(source) => source.clone(),
            Err(NotAdmitted { source, reason }) => {
                let tenant = source.and_then(|s| TenantId::parse(&s.tenant).ok());
                return Err(self
                    .refuse_and_audit(peer, transport, tenant.as_ref(), &reason)
                    .await);
            }
        };
        let unsupported: Vec<&str> = msg
            .option_tags("Require")
            .filter(|t| !t.eq_ignore_ascii_case("siprec"))
            .collect();
        if !unsupported.is_empty() {
            return Err(reject(420, "Bad Extension").header("Unsupported", unsupported.join(", ")));
        }
        let is_siprec = msg.has_option_tag("Require", "siprec")
            || msg
                .header("Contact")
                .is_some_and(|c| c.contains("+sip.src"));
        if !is_siprec {
            return Err(reject(421, "Extension Required")
                .header("Require", "siprec")
                .warn("this is a SIPREC recorder: send Require: siprec and +sip.src in Contact"));
        }
        let tenant =
            TenantId::parse(&source.tenant).map_err(|_| reject(500, "Server Internal Error"))?;
        let (offer, metadata) = offer_of(msg)?;
        // Recording policy: refused calls are audited by the policy decision itself.
        if let Err(Refusal(why)) = admit_siprec_call(
            &self.st,
            &tenant,
            source.queue.as_deref(),
            &source.name,
            peer,
        )
        .await
        {
            return Err(reject(403, "Forbidden").warn(&why));
        }

        // The streams we record, in offer order.
        let recordable: Vec<usize> = offer
            .media
            .iter()
            .enumerate()
            .filter(|(_, m)| m.kind == "audio" && m.port != 0 && m.audio_codec().is_some())
            .map(|(i, _)| i)
            .collect();
        if recordable.is_empty() {
            return Err(reject(488, "Not Acceptable Here")
                .warn("no audio stream in PCMU or PCMA over RTP/AVP"));
        }
        media_policy(&source, transport, &offer, &recordable)?;
        let caller = source
            .caller_label
            .as_ref()
            .and_then(|l| {
                recordable
                    .iter()
                    .copied()
                    .find(|&i| offer.media[i].label.as_ref() == Some(l))
            })
            .unwrap_or(recordable[0]);
        let agent = recordable.iter().copied().find(|&i| i != caller);
        // Channel of each recordable stream: caller 0, agent 1, any further stream is received
        // (so the SRC's packets have somewhere to go) but not recorded.
        let channel_of = |i: usize| {
            if i == caller {
                0
            } else if Some(i) == agent {
                1
            } else {
                2 + i
            }
        };
        let Some((sockets, lease)) = self.ports.allocate(recordable.len()) else {
            return Err(reject(503, "Service Unavailable")
                .header("Retry-After", "30")
                .warn("no free RTP ports"));
        };
        let mut ports: Vec<u16> = sockets
            .iter()
            .filter_map(|s| s.local_addr().ok().map(|a| a.port()))
            .collect();
        let codecs: Vec<_> = recordable
            .iter()
            .filter_map(|&i| offer.media[i].audio_codec())
            .collect();
        let output = if codecs.windows(2).all(|w| w[0].1 == w[1].1) {
            Codec16::G711(codecs[0].1)
        } else {
            Codec16::Pcm16
        };

        // Open the live call (audited) before answering.
        let label_aor = |i: Option<usize>| -> Option<String> {
            let label = offer.media.get(i?)?.label.as_deref()?;
            metadata.as_ref()?.sender_of_label(label)?.aor.clone()
        };
        let caller_number = label_aor(Some(caller)).and_then(|a| E164::parse(user_part(&a)).ok());
        let agent_id = label_aor(agent).map(|a| clip(user_part(&a)));
        let external_call_id = metadata
            .as_ref()
            .and_then(|m| m.sip_session_ids.first().or(m.session_ids.first()).cloned())
            .unwrap_or_else(|| msg.call_id().to_owned());
        let caller_hash = match (&caller_number, &self.st.keys) {
            (Some(c), Some(keys)) => Some(
                keys.caller_key(&self.st.meta, &tenant)
                    .await
                    .map_err(|_| reject(500, "Server Internal Error"))?
                    .hash(c.expose()),
            ),
            _ => None,
        };
        let format = CallFormat::new(output.live_name(), 8000, 2, 200)
            .map_err(|_| reject(500, "Server Internal Error"))?;
        let open = OpenCall {
            format,
            started_at: crate::clock::unix_now(),
            direction: CallDirection::Inbound,
            caller: caller_number.clone(),
            caller_hash,
            agent_id,
            queue: source.queue.clone(),
            external_call_id: Some(clip(&external_call_id)),
        };
        let (key_id, recipient) = self.st.active_recipient(&tenant).await.map_err(|_| {
            reject(500, "Server Internal Error").warn("the tenant has no recording key")
        })?;
        let actor_event = |action: &'static str| Event {
            actor: format!("sip:{}", source.name),
            tenant: Some(tenant.to_string()),
            action,
            result: "ok",
            client: Some(peer.ip().to_string()),
            ..Event::default()
        };
        let call = self
            .st
            .live
            .open(
                &tenant,
                key_id,
                recipient.clone(),
                open,
                actor_event("recording.live_open"),
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "opening a SIPREC call failed");
                reject(500, "Server Internal Error")
            })?;

        let mut peers = vec![peer.ip()];
        peers.extend(recordable.iter().filter_map(|&i| offer.media[i].connection));
        let mut channels: Vec<(usize, StreamSpec)> = recordable
            .iter()
            .zip(sockets)
            .filter_map(|(&i, socket)| {
                let m = &offer.media[i];
                let (payload_type, codec) = m.audio_codec()?;
                // media_policy made sure an RTP/SAVP stream has a usable key.
                let srtp = match m.transport {
                    Some(MediaTransport::RtpSavp) => {
                        Some(srtp::Context::from_key_salt(&m.crypto.first()?.key_salt)?)
                    }
                    _ => None,
                };
                Some((
                    channel_of(i),
                    StreamSpec {
                        socket,
                        payload_type,
                        codec,
                        srtp,
                    },
                ))
            })
            .collect();
        channels.sort_by_key(|(c, _)| *c);
        let spec = CallSpec {
            tenant: tenant.clone(),
            id: call.id,
            peers,
            channels: channels.into_iter().map(|(_, s)| s).collect(),
            output,
            rtp_timeout: Duration::from_secs(self.st.cfg.sip.rtp_timeout_secs),
            finish_event: actor_event("recording.live_finish"),
        };
        let call_id = msg.call_id().to_owned();
        let me = self.me.clone();
        let ended_call = call_id.clone();
        let handle = media::start(self.st.clone(), self.counters.clone(), spec, move || {
            if let Some(me) = me.upgrade() {
                lock(&me.dialogs).remove(&ended_call);
            }
        });

        let mut answer = Vec::new();
        let mut next_port = ports.drain(..);
        let mut order: Vec<usize> = recordable.clone();
        order.sort_by_key(|&i| channel_of(i));
        let channel_index = |i: usize| order.iter().position(|&j| j == i);
        for (i, m) in offer.media.iter().enumerate() {
            let recorded = recordable.contains(&i);
            let port = if recorded {
                next_port.next().unwrap_or(0)
            } else {
                0
            };
            let channel = if recorded { channel_index(i) } else { None };
            if recorded
                && m.direction == Direction::Inactive
                && let Some(c) = channel
            {
                handle.control(Control::Pause(c)).await;
            }
            answer.push((answer_media(m, port), channel));
        }
        let recording = Recipient {
            tenant: tenant.clone(),
            id: call.id,
            key: recipient,
            caller: caller_number,
        };
        if let Some(m) = &metadata {
            // The call is recorded whatever happens here; a failure only loses a search key.
            if let Err(r) = self.store_parties(&recording, m).await {
                tracing::error!(call = %call.id, code = r.code, "storing the parties of a SIPREC call failed");
            }
        }
        let local_tag = random_tag();
        let session_id = u64::from_be_bytes(rand::random());
        let mut dialog = Dialog {
            bye: self.bye_for(msg, &local_tag, transport),
            acked: watch::channel(false).0,
            local_tag: local_tag.clone(),
            media: handle,
            answer,
            session_id,
            version: 1,
            metadata,
            recording,
            _lease: lease,
        };
        let (acked_tx, acked) = watch::channel(false);
        dialog.acked = acked_tx;
        let ok = self.ok_with_sdp(msg, &dialog, transport);
        lock(&self.dialogs).insert(call_id.clone(), dialog);
        if transport == Transport::Udp {
            self.resend_until_acked(call_id, peer, ok.to_bytes(), acked);
        }
        tracing::info!(call = %call.id, source = %source.name, "SIPREC call recording");
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

    fn ok_with_sdp(&self, msg: &Message, dialog: &Dialog, transport: Transport) -> Message {
        let mut ok = msg.response(200, "OK", Some(&dialog.local_tag));
        ok.push_header(
            "Contact",
            format!(
                "<sip:callvault@{};transport={}>",
                self.hostport(transport),
                transport.as_str()
            ),
        );
        ok.push_header("Allow", ALLOW);
        ok.push_header("Supported", "siprec");
        let media: Vec<AnswerMedia> = dialog.answer.iter().map(|(m, _)| m.clone()).collect();
        let sdp = sdp::answer(self.advertise, dialog.session_id, dialog.version, &media);
        ok.set_body("application/sdp", sdp.into_bytes());
        ok
    }

    /// re-INVITE or UPDATE inside a dialog: new directions pause or resume streams, new
    /// metadata (RFC 7866 §6.1.1: a participant joined, a transfer) is merged and its parties
    /// are stored with the recording before the answer. Streams cannot be added mid-call
    /// (answered with port 0). The body may be an SDP offer, metadata, or both.
    async fn reoffer(&self, msg: &Message) -> Result<Message, Reject> {
        let (offer, metadata) = if msg.body.is_empty() {
            (None, None)
        } else {
            body_of(msg)?
        };
        let recorded = {
            let mut dialogs = lock(&self.dialogs);
            let dialog = dialogs
                .get_mut(msg.call_id())
                .filter(|d| msg.to_tag() == Some(d.local_tag.as_str()))
                .ok_or(reject(481, "Call/Transaction Does Not Exist"))?;
            metadata.map(|update| {
                let merged = match dialog.metadata.as_mut() {
                    Some(m) => {
                        m.merge(update);
                        m
                    }
                    None => dialog.metadata.insert(update),
                };
                (dialog.recording.clone(), merged.clone())
            })
        };
        if let Some((recording, merged)) = recorded {
            self.store_parties(&recording, &merged).await?;
        }
        let mut dialogs = lock(&self.dialogs);
        let dialog = dialogs
            .get_mut(msg.call_id())
            .filter(|d| msg.to_tag() == Some(d.local_tag.as_str()))
            .ok_or(reject(481, "Call/Transaction Does Not Exist"))?;
        let Some(offer) = offer else {
            return Ok(msg.response(200, "OK", None));
        };
        let mut controls = Vec::new();
        for (i, m) in offer.media.iter().enumerate() {
            let Some((answer, channel)) = dialog.answer.get_mut(i) else {
                break;
            };
            if answer.port == 0 {
                continue;
            }
            answer.direction = if m.direction.client_sends() {
                Direction::RecvOnly
            } else {
                Direction::Inactive
            };
            if let Some(c) = *channel {
                controls.push(if m.direction.client_sends() {
                    Control::Resume(c)
                } else {
                    Control::Pause(c)
                });
            }
        }
        dialog.version += 1;
        let media = dialog.media.clone();
        let mut ok = msg.response(200, "OK", None);
        let answer: Vec<AnswerMedia> = dialog.answer.iter().map(|(m, _)| m.clone()).collect();
        let sdp = sdp::answer(self.advertise, dialog.session_id, dialog.version, &answer);
        ok.set_body("application/sdp", sdp.into_bytes());
        drop(dialogs);
        tokio::spawn(async move {
            for c in controls {
                media.control(c).await;
            }
        });
        Ok(ok)
    }

    /// Stores the metadata's participants other than the caller as parties of the recording:
    /// keyed hash to search by, number encrypted to the tenant (as the caller is). A node
    /// without the tenant's hash key (ingest-only) cannot make the hash and stores none.
    async fn store_parties(&self, rec: &Recipient, metadata: &Metadata) -> Result<(), Reject> {
        let numbers = other_parties(metadata, rec.caller.as_ref());
        let Some(keys) = &self.st.keys else {
            if !numbers.is_empty() {
                tracing::debug!(call = %rec.id, "no hash key on this node: further parties not stored");
            }
            return Ok(());
        };
        if numbers.is_empty() {
            return Ok(());
        }
        let internal = |_| reject(500, "Server Internal Error");
        let hasher = keys
            .caller_key(&self.st.meta, &rec.tenant)
            .await
            .map_err(internal)?;
        let recipients = [rec.key.clone()];
        let parties = numbers
            .iter()
            .map(|n| {
                Ok(Party {
                    number_hash: hasher.hash(n.expose()),
                    number_enc: callvault_crypto::encrypt_small(&recipients, n.expose().as_bytes())
                        .map_err(|_| reject(500, "Server Internal Error"))?,
                })
            })
            .collect::<Result<Vec<_>, Reject>>()?;
        self.st
            .meta
            .add_parties(&rec.tenant, &rec.id, &parties)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, call = %rec.id, "storing SIPREC parties failed");
                reject(500, "Server Internal Error")
            })
    }

    /// The BYE ending the dialog `invite` opened, from our side (RFC 3261 §15.1.1, §12.2.1.1):
    /// to the SRC's Contact, its From as our To and its To (with our tag) as our From.
    fn bye_for(&self, invite: &Message, local_tag: &str, transport: Transport) -> Vec<u8> {
        let contact = invite.header("Contact").unwrap_or_default();
        let target = match contact.split_once('<') {
            Some((_, rest)) => rest.split('>').next().unwrap_or(rest),
            None => contact.split(';').next().unwrap_or(contact),
        };
        let headers = [
            (
                "Via",
                format!(
                    "SIP/2.0/{} {};branch=z9hG4bK{}",
                    transport.as_str().to_ascii_uppercase(),
                    self.hostport(transport),
                    random_tag()
                ),
            ),
            ("Max-Forwards", "70".to_owned()),
            (
                "From",
                format!(
                    "{};tag={local_tag}",
                    invite.header("To").unwrap_or_default()
                ),
            ),
            ("To", invite.header("From").unwrap_or_default().to_owned()),
            ("Call-ID", invite.call_id().to_owned()),
            ("CSeq", "1 BYE".to_owned()),
        ];
        Message::request(
            Method::Bye,
            target.trim(),
            headers.map(|(n, v)| (n.to_owned(), v)).to_vec(),
            Vec::new(),
        )
        .to_bytes()
    }

    /// An ACK confirms the dialog it names: the 200 is no longer re-sent.
    fn ack(&self, msg: &Message) {
        if let Some(d) = lock(&self.dialogs)
            .get(msg.call_id())
            .filter(|d| msg.to_tag() == Some(d.local_tag.as_str()))
        {
            d.acked.send_replace(true);
        }
    }

    /// Over UDP, re-sends the INVITE's 200 to `peer` until the ACK comes (`retransmit`); if it
    /// never does, ends the call (`ended_by: no_ack`) and sends our BYE.
    fn resend_until_acked(
        &self,
        call_id: String,
        peer: SocketAddr,
        ok: Vec<u8>,
        acked: watch::Receiver<bool>,
    ) {
        let Some(socket) = self.udp.get().cloned() else {
            return;
        };
        let me = self.me.clone();
        let t1 = self.st.cfg.sip.t1();
        tokio::spawn(async move {
            let mut acked = acked;
            for step in retransmit::schedule(t1, retransmit::T2) {
                match retransmit::wait(step, &mut acked).await {
                    retransmit::Next::Acked => return,
                    retransmit::Next::Resend => {
                        let _ = socket.send_to(&ok, peer).await;
                    }
                    retransmit::Next::GiveUp => break,
                }
            }
            let Some(me) = me.upgrade() else { return };
            let dialog = lock(&me.dialogs).remove(&call_id);
            if let Some(d) = dialog {
                tracing::info!(%peer, "no ACK for the 200 within 64*T1: ending the SIPREC call");
                let (tx, _rx) = tokio::sync::oneshot::channel();
                d.media.control(Control::Finish(tx, "no_ack")).await;
                let _ = socket.send_to(&d.bye, peer).await;
            }
        });
    }

    async fn bye(&self, msg: &Message) -> Result<Message, Reject> {
        let dialog = {
            let mut dialogs = lock(&self.dialogs);
            let ours = dialogs.get(msg.call_id()).is_some_and(|d| {
                msg.to_tag() == Some(d.local_tag.as_str())
                    || msg.from_tag() == Some(d.local_tag.as_str())
            });
            if !ours {
                return Err(reject(481, "Call/Transaction Does Not Exist"));
            }
            dialogs.remove(msg.call_id())
        };
        if let Some(d) = dialog {
            // Finalisation (last frames, journal, assembly) continues after the answer; the
            // port lease is returned when the media task ends.
            let (tx, _rx) = tokio::sync::oneshot::channel();
            d.media.control(Control::Finish(tx, "bye")).await;
        }
        Ok(msg.response(200, "OK", None))
    }

    /// We answer INVITEs at once, so a CANCEL always finds the INVITE completed (RFC 3261
    /// §9.2: 200 to the CANCEL, no effect on the call; the SRC sends BYE).
    fn cancel(&self, msg: &Message) -> Result<Message, Reject> {
        if lock(&self.dialogs).contains_key(msg.call_id()) {
            Ok(msg.response(200, "OK", None))
        } else {
            Err(reject(481, "Call/Transaction Does Not Exist"))
        }
    }
}

/// Plain RTP only from sources allowed it; SRTP keys only over SIP/TLS (SDES keys travel in
/// the SDP, so over UDP or TCP anyone on the path could read them).
fn media_policy(
    source: &SipSource,
    transport: Transport,
    offer: &Session,
    recordable: &[usize],
) -> Result<(), Reject> {
    let refuse = |why: &str| Err(reject(488, "Not Acceptable Here").warn(why));
    for &i in recordable {
        let m = &offer.media[i];
        match m.transport {
            Some(MediaTransport::RtpSavp) if transport != Transport::Tls => {
                return refuse("SRTP keys (a=crypto) are accepted only over SIP/TLS");
            }
            Some(MediaTransport::RtpSavp) if m.crypto.is_empty() => {
                return refuse("no usable a=crypto: offer AES_CM_128_HMAC_SHA1_80 without MKI");
            }
            Some(MediaTransport::RtpSavp) => {}
            _ if !source.insecure_plain_rtp => {
                return refuse("this source must send SRTP (RTP/SAVP) over SIP/TLS");
            }
            _ => {}
        }
    }
    Ok(())
}

/// The SDP offer and, when present, the recording metadata of an INVITE body.
fn offer_of(msg: &Message) -> Result<(Session, Option<Metadata>), Reject> {
    let (offer, metadata) = body_of(msg)?;
    let offer = offer.ok_or(
        reject(415, "Unsupported Media Type").header("Accept", "application/sdp, multipart/mixed"),
    )?;
    Ok((offer, metadata))
}

/// The SDP offer and the recording metadata of a body, each if present; at least one must be
/// (a re-INVITE or UPDATE may carry metadata alone, RFC 7866 §6.1.1).
fn body_of(msg: &Message) -> Result<(Option<Session>, Option<Metadata>), Reject> {
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

/// The E.164 numbers of the metadata's participants, once each, without the caller's.
fn other_parties(metadata: &Metadata, caller: Option<&E164>) -> Vec<E164> {
    let mut out: Vec<E164> = Vec::new();
    for p in &metadata.participants {
        let Some(number) = p
            .aor
            .as_deref()
            .and_then(|a| E164::parse(user_part(a)).ok())
        else {
            continue;
        };
        if Some(&number) != caller && !out.contains(&number) {
            out.push(number);
        }
    }
    out
}

fn answer_media(m: &sdp::Media, port: u16) -> AnswerMedia {
    let codec = m.audio_codec();
    AnswerMedia {
        port,
        kind: m.kind.clone(),
        transport: m.transport.unwrap_or(MediaTransport::RtpAvp),
        payload_type: codec.map_or_else(|| m.formats.first().copied().unwrap_or(0), |(pt, _)| pt),
        codec: codec.map(|(_, c)| c),
        label: m.label.clone(),
        direction: if port != 0 && m.direction.client_sends() {
            Direction::RecvOnly
        } else {
            Direction::Inactive
        },
        // We send no media, but SDES needs a key in the answer (RFC 4568 §5.1.2): a fresh
        // random one, never used.
        crypto: match (m.transport, m.crypto.first()) {
            (Some(MediaTransport::RtpSavp), Some(offered)) if port != 0 => {
                use base64::Engine as _;
                let key: [u8; srtp::MASTER_LEN] = std::array::from_fn(|_| rand::random());
                Some((
                    offered.tag,
                    base64::engine::general_purpose::STANDARD.encode(key),
                ))
            }
            _ => None,
        },
    }
}

/// `sip:+4670…@host;user=phone` → `+4670…`; `tel:+4670…` stays whole for `E164::parse`.
fn user_part(aor: &str) -> &str {
    let aor = aor.trim().trim_start_matches('<').trim_end_matches('>');
    match aor.split_once(':') {
        Some(("sip" | "sips", rest)) => rest.split(['@', ';']).next().unwrap_or(rest),
        _ => aor,
    }
}

fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(128).collect()
}

fn random_tag() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_parts_of_addresses_of_record() {
        assert_eq!(user_part("sip:+46701234567@10.0.0.10"), "+46701234567");
        assert_eq!(
            user_part("<sips:agent.4711@cc.example;user=phone>"),
            "agent.4711"
        );
        assert_eq!(user_part("tel:+46771177177"), "tel:+46771177177");
    }
}
