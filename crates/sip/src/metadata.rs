//! Recording metadata (RFC 7865), the XML that tells a recorder who is on the call and which
//! RTP stream each of them sends, in the three dialects met in the field:
//!
//! - **RFC 7865**: root `<recording xmlns="urn:ietf:params:xml:ns:recording:1">`, ids in
//!   `session_id`/`participant_id`/`stream_id` attributes, senders in `<participantstreamassoc>`.
//! - **Oracle/Acme SBC** (pre-RFC drafts): namespace `urn:ietf:params:xml:ns:recording` without
//!   `:1`, ids in `id=` with the owning session in `session=`, and `<send>`/`<recv>` directly
//!   inside `<participant>`.
//! - **BroadWorks**: root `<recording_metadata xmlns="urn:ietf:params:xml:ns:siprec">`, `id=`
//!   attributes, otherwise RFC-shaped.
//!
//! The parser is a forward-only walk over quick-xml events: no DTD, no external entities (quick-xml
//! does not expand them), bounded depth, counts and text lengths. Elements it does not know are
//! skipped, so vendor extensions pass through harmlessly.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::ParseError;

const NS_RFC: &[u8] = b"urn:ietf:params:xml:ns:recording:1";
const NS_ACME: &[u8] = b"urn:ietf:params:xml:ns:recording";
const NS_BROADWORKS: &[u8] = b"urn:ietf:params:xml:ns:siprec";
const MAX_DEPTH: usize = 32;
const MAX_ITEMS: usize = 64;
const MAX_TEXT: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Rfc7865,
    AcmeOracle,
    BroadWorks,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Participant {
    pub id: String,
    /// The address of record, e.g. `sip:+46701234567@example.com` or `tel:+4670…`.
    pub aor: Option<String>,
    pub name: Option<String>,
    /// Ids of the streams this participant sends.
    pub send: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    pub id: String,
    /// The SDP `a=label` this stream is carried on.
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub dialect: Dialect,
    /// `session_id` (or `id`) attributes of the communication sessions recorded.
    pub session_ids: Vec<String>,
    /// `<sipSessionID>` values: the recorded call's Session-ID (RFC 7989), searchable.
    pub sip_session_ids: Vec<String>,
    pub participants: Vec<Participant>,
    pub streams: Vec<Stream>,
}

impl Metadata {
    /// The participant who sends the stream carried on SDP label `label`, if the metadata
    /// says so (it may not: `participantstreamassoc` is often empty in the field).
    pub fn sender_of_label(&self, label: &str) -> Option<&Participant> {
        let stream = self
            .streams
            .iter()
            .find(|s| s.label.as_deref() == Some(label))?;
        self.participants
            .iter()
            .find(|p| p.send.contains(&stream.id))
    }

    /// Folds a later snapshot (re-INVITE/UPDATE, RFC 7866 §7.2) into this one: participants
    /// and streams are matched by id, new ones added, and known ones updated where the
    /// update says something.
    pub fn merge(&mut self, update: Metadata) {
        for sid in update.session_ids {
            push_unique(&mut self.session_ids, sid);
        }
        for sid in update.sip_session_ids {
            push_unique(&mut self.sip_session_ids, sid);
        }
        for p in update.participants {
            upsert(&mut self.participants, p, |q, p| {
                q.aor = p.aor.or(q.aor.take());
                q.name = p.name.or(q.name.take());
                for s in p.send {
                    push_unique(&mut q.send, s);
                }
            });
        }
        for s in update.streams {
            upsert(&mut self.streams, s, |t, s| {
                t.label = s.label.or(t.label.take());
            });
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        Walker::default().run(text)
    }
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) && list.len() < MAX_ITEMS {
        list.push(item);
    }
}

trait Identified {
    fn id(&self) -> &str;
}

impl Identified for Participant {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Identified for Stream {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Updates the element with `item`'s id using `update`, or appends `item` if there is room.
fn upsert<T: Identified>(list: &mut Vec<T>, item: T, update: impl FnOnce(&mut T, T)) {
    match list.iter().position(|x| x.id() == item.id()) {
        Some(i) => update(&mut list[i], item),
        None if list.len() < MAX_ITEMS => list.push(item),
        None => {}
    }
}

fn bad(why: &'static str) -> ParseError {
    ParseError::Metadata(why)
}

/// The element whose text is being collected, and where the text goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Capture {
    SipSessionId,
    ParticipantName,
    ParticipantAor,
    ParticipantSend,
    AssocSend,
    StreamLabel,
}

#[derive(Default)]
struct Walker {
    dialect: Option<Dialect>,
    /// Local names of the open elements, root first.
    stack: Vec<String>,
    capture: Option<(Capture, String)>,
    session_ids: Vec<String>,
    sip_session_ids: Vec<String>,
    participants: Vec<Participant>,
    streams: Vec<Stream>,
    /// Sends declared in `<participantstreamassoc>`, applied after the walk because the
    /// association may precede its participant.
    assoc: Vec<(String, String)>,
    assoc_participant: Option<String>,
}

impl Walker {
    fn run(mut self, text: &str) -> Result<Metadata, ParseError> {
        let mut reader = NsReader::from_str(text);
        loop {
            let (ns, event) = reader
                .read_resolved_event()
                .map_err(|_| bad("not well-formed XML"))?;
            let ns = match ns {
                ResolveResult::Bound(ns) => Some(ns.as_ref().to_vec()),
                _ => None,
            };
            match event {
                Event::Start(e) => {
                    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                    let attrs = attributes(&e)?;
                    self.open(&name, ns.as_deref(), &attrs)?;
                    self.stack.push(name);
                    if self.stack.len() > MAX_DEPTH {
                        return Err(bad("nested too deeply"));
                    }
                }
                Event::Empty(e) => {
                    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                    let attrs = attributes(&e)?;
                    self.open(&name, ns.as_deref(), &attrs)?;
                    self.stack.push(name);
                    self.close()?;
                }
                Event::End(_) => self.close()?,
                Event::Text(t) => {
                    let t = t.xml10_content().map_err(|_| bad("text is not UTF-8"))?;
                    self.text(&t)?;
                }
                Event::CData(t) => {
                    let t = t.decode().map_err(|_| bad("CDATA is not UTF-8"))?;
                    self.text(&t)?;
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => {
                            let name = r.decode().map_err(|_| bad("entity name is not UTF-8"))?;
                            quick_xml::escape::resolve_predefined_entity(&name)
                                .ok_or(bad("unknown entity reference"))?
                                .to_owned()
                        }
                        Err(_) => return Err(bad("invalid character reference")),
                    };
                    self.text(&resolved)?;
                }
                Event::DocType(_) => return Err(bad("a DOCTYPE is not allowed")),
                Event::Eof => break,
                _ => {}
            }
        }
        self.finish()
    }

    fn open(
        &mut self,
        name: &str,
        ns: Option<&[u8]>,
        attrs: &[(String, String)],
    ) -> Result<(), ParseError> {
        let depth = self.stack.len();
        if depth == 0 {
            self.dialect = Some(match (name, ns) {
                ("recording", Some(NS_RFC)) => Dialect::Rfc7865,
                ("recording", Some(NS_ACME)) => Dialect::AcmeOracle,
                ("recording_metadata", Some(NS_BROADWORKS)) => Dialect::BroadWorks,
                _ => {
                    return Err(bad(
                        "root must be <recording> in urn:ietf:params:xml:ns:recording:1 (or a known vendor dialect)",
                    ));
                }
            });
            return Ok(());
        }
        let id = |specific: &str| {
            attr(attrs, specific)
                .or_else(|| attr(attrs, "id"))
                .filter(|v| !v.is_empty() && v.len() <= MAX_TEXT)
                .map(str::to_owned)
        };
        let parent = self.stack.last().map(String::as_str);
        match (depth, parent, name) {
            (1, _, "session") => {
                let sid = id("session_id").ok_or(bad("<session> without an id"))?;
                push_unique(&mut self.session_ids, sid);
            }
            (1, _, "participant") => {
                if self.participants.len() == MAX_ITEMS {
                    return Err(bad("too many participants"));
                }
                let pid = id("participant_id").ok_or(bad("<participant> without an id"))?;
                self.participants.push(Participant {
                    id: pid,
                    ..Participant::default()
                });
            }
            (1, _, "stream") => {
                if self.streams.len() == MAX_ITEMS {
                    return Err(bad("too many streams"));
                }
                let sid = id("stream_id").ok_or(bad("<stream> without an id"))?;
                self.streams.push(Stream {
                    id: sid,
                    label: None,
                });
            }
            (1, _, "participantstreamassoc") => {
                self.assoc_participant = Some(
                    id("participant_id")
                        .ok_or(bad("<participantstreamassoc> without a participant_id"))?,
                );
            }
            (2, Some("session"), "sipSessionID") => self.begin(Capture::SipSessionId),
            (2, Some("participant"), "nameID") | (2, Some("participant"), "nameId") => {
                if let (Some(aor), Some(p)) = (attr(attrs, "aor"), self.participants.last_mut()) {
                    p.aor = Some(aor.to_owned());
                }
            }
            (2, Some("participant"), "aor") => self.begin(Capture::ParticipantAor),
            (2, Some("participant"), "name") | (3, Some("nameID"), "name") => {
                self.begin(Capture::ParticipantName);
            }
            (2, Some("participant"), "send") => self.begin(Capture::ParticipantSend),
            (2, Some("participantstreamassoc"), "send") => self.begin(Capture::AssocSend),
            (2, Some("stream"), "label") => self.begin(Capture::StreamLabel),
            _ => {}
        }
        Ok(())
    }

    fn begin(&mut self, what: Capture) {
        self.capture = Some((what, String::new()));
    }

    fn text(&mut self, t: &str) -> Result<(), ParseError> {
        if let Some((_, buf)) = &mut self.capture {
            if buf.len() + t.len() > MAX_TEXT {
                return Err(bad("a text value is too long"));
            }
            buf.push_str(t);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ParseError> {
        let name = self.stack.pop().ok_or(bad("unbalanced end tag"))?;
        if name == "participantstreamassoc" && self.stack.len() == 1 {
            self.assoc_participant = None;
        }
        let Some((what, value)) = self.capture.take() else {
            return Ok(());
        };
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Ok(());
        }
        match what {
            Capture::SipSessionId => push_unique(&mut self.sip_session_ids, value),
            Capture::ParticipantName => self.last_participant(|p| p.name = Some(value)),
            Capture::ParticipantAor => self.last_participant(|p| p.aor = Some(value)),
            Capture::ParticipantSend => self.last_participant(|p| push_unique(&mut p.send, value)),
            Capture::AssocSend => {
                if let Some(pid) = &self.assoc_participant
                    && self.assoc.len() < MAX_ITEMS
                {
                    self.assoc.push((pid.clone(), value));
                }
            }
            Capture::StreamLabel => {
                if let Some(s) = self.streams.last_mut() {
                    s.label = Some(value);
                }
            }
        }
        Ok(())
    }

    fn last_participant(&mut self, f: impl FnOnce(&mut Participant)) {
        if let Some(p) = self.participants.last_mut() {
            f(p);
        }
    }

    fn finish(mut self) -> Result<Metadata, ParseError> {
        let dialect = self.dialect.ok_or(bad("empty document"))?;
        if !self.stack.is_empty() {
            return Err(bad("document ends inside an element"));
        }
        for (pid, stream) in self.assoc {
            // An association naming an unknown participant creates it: RFC 7865 allows a
            // participant to be described in an earlier snapshot.
            let new = Participant {
                id: pid.clone(),
                ..Participant::default()
            };
            upsert(&mut self.participants, new, |_, _| {});
            if let Some(p) = self.participants.iter_mut().find(|p| p.id == pid) {
                push_unique(&mut p.send, stream);
            }
        }
        Ok(Metadata {
            dialect,
            session_ids: self.session_ids,
            sip_session_ids: self.sip_session_ids,
            participants: self.participants,
            streams: self.streams,
        })
    }
}

fn attributes(e: &quick_xml::events::BytesStart<'_>) -> Result<Vec<(String, String)>, ParseError> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|_| bad("malformed attribute"))?;
        let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|_| bad("malformed attribute value"))?;
        out.push((key, value.into_owned()));
        if out.len() > 16 {
            return Err(bad("too many attributes"));
        }
    }
    Ok(out)
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
