//! Changes the SRC makes to a running dialog with re-INVITE or UPDATE: pausing and resuming
//! streams, and metadata updates (further parties).

use super::super::media::Control;
use super::body::body_of;
use super::{Reject, Srs, lock, reject};
use callvault_sip::message::Message;
use callvault_sip::sdp::{self, AnswerMedia, Direction};

impl Srs {
    /// re-INVITE or UPDATE inside a dialog: new directions pause or resume streams, new
    /// metadata (RFC 7866 §6.1.1: a participant joined, a transfer) is merged and its parties
    /// are stored with the recording before the answer. Streams cannot be added mid-call
    /// (answered with port 0). The body may be an SDP offer, metadata, or both.
    pub(super) async fn reoffer(&self, msg: &Message) -> Result<Message, Reject> {
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
}
