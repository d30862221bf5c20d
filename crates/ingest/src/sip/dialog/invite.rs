//! The initial INVITE, in four steps: admit (source, SIPREC extension, recording policy,
//! streams) → allocate (RTP ports) → open (`LiveCalls::open` and the call's media task) →
//! answer (the dialog and its SDP answer). Each step either succeeds or leaves nothing behind
//! that outlives the request: refusals are audited, the port lease goes back when dropped, and
//! nothing after `open` can fail.

use super::body::offer_of;
use super::parties::user_part;
use super::{
    ALLOW, Dialog, Recipient, Reject, Srs, Transport, internal_error, lock, random_tag, reject,
};
use crate::audit_log::Event;
use crate::config::SipSource;
use crate::live::{CallFormat, OpenCall};
use crate::sip::media::{self, CallSpec, Codec16, Control, MediaHandle, StreamSpec};
use crate::sip::policy::{Refusal, admit_siprec_call};
use crate::sip::ports::Lease;
use crate::sip::sources::{NotAdmitted, PeerCertificate};
use callvault_core::{Direction as CallDirection, E164, TenantId};
use callvault_sip::message::Message;
use callvault_sip::metadata::Metadata;
use callvault_sip::sdp::{self, AnswerMedia, Direction, Session, Transport as MediaTransport};
use callvault_sip::srtp;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// What admission settled, for the steps after it.
struct Admitted {
    source: SipSource,
    tenant: TenantId,
    offer: Session,
    metadata: Option<Metadata>,
    streams: Streams,
}

/// The offer's streams we record, in offer order, and which of them are caller and agent.
struct Streams {
    recordable: Vec<usize>,
    caller: usize,
    agent: Option<usize>,
}

/// The RTP ports a call holds: their numbers, for the answer, and the lease that frees them.
struct Allocation {
    ports: Vec<u16>,
    lease: Lease,
}

/// The live call as opened: the recording it feeds and its running media task.
struct Opened {
    recording: Recipient,
    media: MediaHandle,
}

impl Srs {
    /// A new dialog: the answer is sent only once the call is open and recording.
    pub(super) async fn invite(
        &self,
        msg: &Message,
        peer: SocketAddr,
        transport: Transport,
        cert: Option<&PeerCertificate>,
    ) -> Result<Message, Reject> {
        let admitted = self.admit(msg, peer, transport, cert).await?;
        let (sockets, allocation) = self.allocate(&admitted.streams)?;
        let opened = self.open(msg, peer, &admitted, sockets).await?;
        Ok(self
            .answer(msg, peer, transport, admitted, allocation, opened)
            .await)
    }

    /// Admission: the source (a refusal is audited as `siprec.refused`), the SIPREC extension,
    /// the offer, the tenant's recording policy (which audits its own refusals), and the
    /// streams we record under the source's media policy. Takes nothing, so undoes nothing.
    async fn admit(
        &self,
        msg: &Message,
        peer: SocketAddr,
        transport: Transport,
        cert: Option<&PeerCertificate>,
    ) -> Result<Admitted, Reject> {
        let source = match self.source(peer.ip(), cert) {
            Ok(source) => source.clone(),
            Err(NotAdmitted { source, reason }) => {
                let tenant = source.map(|s| s.tenant.clone());
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
        let tenant = source.tenant.clone();
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
        let streams = Streams::of(&offer, source.caller_label.as_deref())?;
        media_policy(&source, transport, &offer, &streams.recordable)?;
        Ok(Admitted {
            source,
            tenant,
            offer,
            metadata,
            streams,
        })
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

    /// One RTP port per recordable stream (503 when the range is exhausted). The sockets go to
    /// the media task; the lease frees the ports when dropped: at once if `open` fails, else
    /// with the dialog.
    fn allocate(&self, streams: &Streams) -> Result<(Vec<UdpSocket>, Allocation), Reject> {
        let Some((sockets, lease)) = self.ports.allocate(streams.recordable.len()) else {
            return Err(reject(503, "Service Unavailable")
                .header("Retry-After", "30")
                .warn("no free RTP ports"));
        };
        let ports: Vec<u16> = sockets
            .iter()
            .filter_map(|s| s.local_addr().ok().map(|a| a.port()))
            .collect();
        Ok((sockets, Allocation { ports, lease }))
    }

    /// Opens the live call (`LiveCalls::open`, audited as `recording.live_open`) before
    /// answering, and starts its media task on the allocated sockets. If opening fails nothing
    /// was opened and the dropped sockets and lease free the ports; once the media task runs,
    /// it ends the call itself (BYE, missing ACK, RTP timeout) and forgets the dialog.
    async fn open(
        &self,
        msg: &Message,
        peer: SocketAddr,
        admitted: &Admitted,
        sockets: Vec<UdpSocket>,
    ) -> Result<Opened, Reject> {
        let Admitted {
            source,
            tenant,
            offer,
            streams,
            ..
        } = admitted;
        let output = streams.output(offer);
        let open = self.open_call(msg, admitted, output).await?;
        let caller = open.caller.clone();
        let (key_id, recipient) = self.st.active_recipient(tenant).await.map_err(|e| {
            internal_error("reading the tenant's recording key", e)
                .warn("the tenant has no recording key")
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
                tenant,
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
        let (peers, channels) = stream_specs(peer, admitted, sockets);
        let spec = CallSpec {
            tenant: tenant.clone(),
            id: call.id,
            peers,
            channels,
            output,
            rtp_timeout: Duration::from_secs(self.st.cfg.sip.rtp_timeout_secs),
            finish_event: actor_event("recording.live_finish"),
        };
        let me = self.me.clone();
        let ended_call = msg.call_id().to_owned();
        let media = media::start(self.st.clone(), self.counters.clone(), spec, move || {
            if let Some(me) = me.upgrade() {
                lock(&me.dialogs).remove(&ended_call);
            }
        });
        let recording = Recipient {
            tenant: tenant.clone(),
            id: call.id,
            key: recipient,
            caller,
        };
        Ok(Opened { recording, media })
    }

    /// What the live call is opened with: the caller and agent the metadata names for the
    /// caller's and agent's streams, the SRC's session id, and the stored format.
    async fn open_call(
        &self,
        msg: &Message,
        admitted: &Admitted,
        output: Codec16,
    ) -> Result<OpenCall, Reject> {
        let Admitted {
            source,
            tenant,
            offer,
            metadata,
            streams,
        } = admitted;
        let label_aor = |i: Option<usize>| -> Option<String> {
            let label = offer.media.get(i?)?.label.as_deref()?;
            metadata.as_ref()?.sender_of_label(label)?.aor.clone()
        };
        let caller_number =
            label_aor(Some(streams.caller)).and_then(|a| E164::parse(user_part(&a)).ok());
        let agent_id = label_aor(streams.agent).map(|a| clip(user_part(&a)));
        let external_call_id = metadata
            .as_ref()
            .and_then(|m| m.sip_session_ids.first().or(m.session_ids.first()).cloned())
            .unwrap_or_else(|| msg.call_id().to_owned());
        let caller_hash = match (&caller_number, &self.st.keys) {
            (Some(c), Some(keys)) => Some(
                keys.caller_key(&self.st.meta, tenant)
                    .await
                    .map_err(|e| internal_error("opening the caller hash key", e))?
                    .hash(c.expose()),
            ),
            _ => None,
        };
        let format = CallFormat::new(output.live_name(), 8000, 2, 200)
            .map_err(|e| internal_error("the live call format", e))?;
        Ok(OpenCall {
            format,
            started_at: crate::clock::unix_now(),
            direction: CallDirection::Inbound,
            caller: caller_number,
            caller_hash,
            agent_id,
            queue: source.queue.clone(),
            external_call_id: Some(clip(&external_call_id)),
        })
    }

    /// The SDP answer and the dialog it opens: streams we do not record are answered with port
    /// 0, those offered inactive start paused; the metadata's further parties are stored (a
    /// failure only loses a search key: the call is recorded regardless); over UDP the 200 is
    /// re-sent until the ACK comes. Nothing here fails: the call is open, and the media task
    /// or the missing ACK ends it.
    async fn answer(
        &self,
        msg: &Message,
        peer: SocketAddr,
        transport: Transport,
        admitted: Admitted,
        allocation: Allocation,
        opened: Opened,
    ) -> Message {
        let Admitted {
            source,
            offer,
            metadata,
            streams,
            ..
        } = admitted;
        let Opened { recording, media } = opened;
        let answer = streams.answer(&offer, allocation.ports);
        for (m, (_, channel)) in offer.media.iter().zip(&answer) {
            if m.direction == Direction::Inactive
                && let Some(c) = *channel
            {
                media.control(Control::Pause(c)).await;
            }
        }
        if let Some(m) = &metadata {
            // The call is recorded whatever happens here; a failure only loses a search key.
            if let Err(r) = self.store_parties(&recording, m).await {
                tracing::error!(call = %recording.id, code = r.code, "storing the parties of a SIPREC call failed");
            }
        }
        let call = recording.id;
        let local_tag = random_tag();
        let session_id = u64::from_be_bytes(rand::random());
        let (acked_tx, acked) = watch::channel(false);
        let dialog = Dialog {
            bye: self.bye_for(msg, &local_tag, transport),
            acked: acked_tx,
            local_tag,
            media,
            answer,
            session_id,
            version: 1,
            metadata,
            recording,
            _lease: allocation.lease,
        };
        let ok = self.ok_with_sdp(msg, &dialog, transport);
        let call_id = msg.call_id().to_owned();
        lock(&self.dialogs).insert(call_id.clone(), dialog);
        if transport == Transport::Udp {
            self.resend_until_acked(call_id, peer, ok.to_bytes(), acked);
        }
        tracing::info!(call = %call, source = %source.name, "SIPREC call recording");
        ok
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
}

impl Streams {
    /// The audio streams with a port and a G.711 codec (488 if none); the caller's is the one
    /// labelled as the source's `caller_label` says, else the first; the agent's the next.
    fn of(offer: &Session, caller_label: Option<&str>) -> Result<Self, Reject> {
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
        let caller = caller_label
            .and_then(|l| {
                recordable
                    .iter()
                    .copied()
                    .find(|&i| offer.media[i].label.as_deref() == Some(l))
            })
            .unwrap_or(recordable[0]);
        let agent = recordable.iter().copied().find(|&i| i != caller);
        Ok(Self {
            recordable,
            caller,
            agent,
        })
    }

    /// Channel of each recordable stream: caller 0, agent 1, any further stream is received
    /// (so the SRC's packets have somewhere to go) but not recorded.
    fn channel_of(&self, i: usize) -> usize {
        if i == self.caller {
            0
        } else if Some(i) == self.agent {
            1
        } else {
            2 + i
        }
    }

    /// The stored format: the streams' own G.711 law when they agree (lossless), else 16-bit PCM.
    fn output(&self, offer: &Session) -> Codec16 {
        let codecs: Vec<_> = self
            .recordable
            .iter()
            .filter_map(|&i| offer.media[i].audio_codec())
            .collect();
        if codecs.windows(2).all(|w| w[0].1 == w[1].1) {
            Codec16::G711(codecs[0].1)
        } else {
            Codec16::Pcm16
        }
    }

    /// The answer's streams in offer order, each with the media task's channel it feeds: a
    /// recorded stream on the next allocated port, any other with port 0.
    fn answer(&self, offer: &Session, ports: Vec<u16>) -> Vec<(AnswerMedia, Option<usize>)> {
        let mut next_port = ports.into_iter();
        let mut order: Vec<usize> = self.recordable.clone();
        order.sort_by_key(|&i| self.channel_of(i));
        offer
            .media
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let recorded = self.recordable.contains(&i);
                let port = if recorded {
                    next_port.next().unwrap_or(0)
                } else {
                    0
                };
                let channel = if recorded {
                    order.iter().position(|&j| j == i)
                } else {
                    None
                };
                (answer_media(m, port), channel)
            })
            .collect()
    }
}

/// The addresses the call's RTP may come from (the SRC and each stream's `c=`), and the media
/// task's channels in channel order, each on its allocated socket.
fn stream_specs(
    peer: SocketAddr,
    admitted: &Admitted,
    sockets: Vec<UdpSocket>,
) -> (Vec<IpAddr>, Vec<StreamSpec>) {
    let Admitted { offer, streams, .. } = admitted;
    let mut peers = vec![peer.ip()];
    peers.extend(
        streams
            .recordable
            .iter()
            .filter_map(|&i| offer.media[i].connection),
    );
    let mut channels: Vec<(usize, StreamSpec)> = streams
        .recordable
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
                streams.channel_of(i),
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
    (peers, channels.into_iter().map(|(_, s)| s).collect())
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

fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(128).collect()
}
