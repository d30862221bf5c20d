//! How a dialog is confirmed and how it ends: the SRC's ACK (over UDP the 200 is re-sent until
//! it comes, and the call ends with our own BYE if it never does), the SRC's BYE, and CANCEL.

use super::super::media::Control;
use super::super::retransmit;
use super::{Reject, Srs, Transport, lock, random_tag, reject};
use callvault_sip::message::{Message, Method};
use std::net::SocketAddr;
use tokio::sync::watch;

impl Srs {
    /// The BYE ending the dialog `invite` opened, from our side (RFC 3261 §15.1.1, §12.2.1.1):
    /// to the SRC's Contact, its From as our To and its To (with our tag) as our From.
    pub(super) fn bye_for(
        &self,
        invite: &Message,
        local_tag: &str,
        transport: Transport,
    ) -> Vec<u8> {
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
    pub(super) fn ack(&self, msg: &Message) {
        if let Some(d) = lock(&self.dialogs)
            .get(msg.call_id())
            .filter(|d| msg.to_tag() == Some(d.local_tag.as_str()))
        {
            d.acked.send_replace(true);
        }
    }

    /// Over UDP, re-sends the INVITE's 200 to `peer` until the ACK comes (`retransmit`); if it
    /// never does, ends the call (`ended_by: no_ack`) and sends our BYE.
    pub(super) fn resend_until_acked(
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

    pub(super) async fn bye(&self, msg: &Message) -> Result<Message, Reject> {
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
    pub(super) fn cancel(&self, msg: &Message) -> Result<Message, Reject> {
        if lock(&self.dialogs).contains_key(msg.call_id()) {
            Ok(msg.response(200, "OK", None))
        } else {
            Err(reject(481, "Call/Transaction Does Not Exist"))
        }
    }
}
