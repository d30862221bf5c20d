//! Data-driven parser tests over hand-written SIPREC INVITEs in the shapes real recording
//! clients send (RFC 7866's example, Cisco CUBE, Oracle/Acme SBC, BroadWorks, FreeSWITCH with
//! compact headers), and a table of malformed inputs each parser must refuse with a reason.
//!
//! The samples in `tests/samples/` are written with LF line ends and `Content-Length: AUTO` so
//! they stay editable; `load` turns them into wire format (CRLF, the true length).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use callvault_sip::message::{Message, Method, StartLine, frame_len};
use callvault_sip::metadata::{Dialect, Metadata};
use callvault_sip::multipart;
use callvault_sip::sdp::{Codec, Direction, Session, Transport};
use callvault_sip::{ParseError, rtp};

/// A sample's text, LF form. The package directory is read at run time: a compiled-in path
/// goes stale when a shared target directory is reused by a checkout elsewhere.
fn sample(name: &str) -> String {
    let path = format!(
        "{}/tests/samples/{name}",
        std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test or nextest")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load(name: &str) -> Vec<u8> {
    wire(&sample(name))
}

/// LF → CRLF, and `AUTO` in the length header replaced by the body's byte count.
fn wire(text: &str) -> Vec<u8> {
    let text = text.replace('\n', "\r\n");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let head = head.replace(": AUTO", &format!(": {}", body.len()));
    format!("{head}\r\n\r\n{body}").into_bytes()
}

struct Expected {
    file: &'static str,
    call_id: &'static str,
    dialect: Dialect,
    /// (label, port, codec, offered direction, usable SDES keys)
    streams: &'static [(&'static str, u16, Codec, Direction, usize)],
    transport: Transport,
    /// (label, aor of the participant sending it)
    senders: &'static [(&'static str, &'static str)],
    sip_session_id: Option<&'static str>,
}

const SAMPLES: &[Expected] = &[
    Expected {
        file: "rfc7866.sip",
        call_id: "d253c800-b0d1ea39-4a7dd-3f0e20a",
        dialect: Dialect::Rfc7865,
        streams: &[
            ("1", 12240, Codec::Pcmu, Direction::SendOnly, 0),
            ("2", 12242, Codec::Pcmu, Direction::SendOnly, 0),
        ],
        transport: Transport::RtpAvp,
        senders: &[("1", "sip:bob@biloxy.com"), ("2", "sip:alice@atlanta.com")],
        sip_session_id: Some(
            "ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2",
        ),
    },
    Expected {
        file: "cisco-cube.sip",
        call_id: "5E8C2A1B-A77011EE-8001B9F2-3D1C4E5A@10.0.0.10",
        dialect: Dialect::Rfc7865,
        streams: &[
            ("1", 16444, Codec::Pcmu, Direction::SendOnly, 0),
            ("2", 16446, Codec::Pcmu, Direction::SendOnly, 0),
        ],
        transport: Transport::RtpAvp,
        senders: &[
            ("1", "sip:+46701234567@10.0.0.10"),
            ("2", "sip:1177@10.0.0.20"),
        ],
        sip_session_id: Some(
            "9b1d2c3e4f5a5b6c7d8e9f0a1b2c3d4e;remote=1f2e3d4c5b6a79880a9b8c7d6e5f4a3b",
        ),
    },
    Expected {
        file: "acme-oracle.sip",
        call_id: "0b8e7c2a83ee5d2f1f6b6a6e8b9b7bb2@192.0.2.20",
        dialect: Dialect::AcmeOracle,
        streams: &[
            ("917", 49170, Codec::Pcma, Direction::SendOnly, 0),
            ("918", 49172, Codec::Pcma, Direction::SendOnly, 0),
        ],
        transport: Transport::RtpAvp,
        senders: &[
            ("917", "sip:+4687654321@carrier.example.net"),
            ("918", "sip:agent.4711@callcenter.example.com"),
        ],
        sip_session_id: None,
    },
    Expected {
        file: "broadworks.sip",
        call_id: "BW14532345103080924-1885743951@203.0.113.7",
        dialect: Dialect::BroadWorks,
        // Stream 1 offers three keys: one with an MKI and one of another suite are unusable.
        streams: &[
            ("1", 21000, Codec::Pcmu, Direction::SendOnly, 1),
            ("2", 21002, Codec::Pcmu, Direction::SendOnly, 1),
        ],
        transport: Transport::RtpSavp,
        senders: &[
            ("1", "tel:+46771177177"),
            ("2", "sip:nurse.42@hospital.example.org"),
        ],
        sip_session_id: Some("BW14532345103080924-1885743950@203.0.113.7"),
    },
    Expected {
        file: "freeswitch-compact.sip",
        call_id: "3c26700a-8f1b-123d-8c4c-0242ac110002",
        dialect: Dialect::Rfc7865,
        streams: &[
            ("a-leg", 30000, Codec::Pcmu, Direction::SendOnly, 0),
            ("b-leg", 30002, Codec::Pcma, Direction::Inactive, 0),
        ],
        transport: Transport::RtpAvp,
        // Empty participantstreamassoc: the metadata names nobody as a sender.
        senders: &[],
        sip_session_id: None,
    },
];

#[test]
fn realistic_siprec_invites_parse_as_expected() {
    for want in SAMPLES {
        let file = want.file;
        let raw = load(file);
        let msg = Message::parse(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(msg.method(), Some(&Method::Invite), "{file}");
        assert_eq!(msg.call_id(), want.call_id, "{file}");
        assert!(msg.has_option_tag("Require", "siprec"), "{file}");
        assert!(
            msg.header("Contact")
                .is_some_and(|c| c.contains("+sip.src")),
            "{file}"
        );
        assert!(
            msg.top_via_branch()
                .is_some_and(|b| b.starts_with("z9hG4bK")),
            "{file}"
        );
        assert!(msg.from_tag().is_some() && msg.to_tag().is_none(), "{file}");

        let content_type = msg.header("Content-Type").unwrap_or_default();
        let parts =
            multipart::parts(content_type, &msg.body).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(parts.len(), 2, "{file}");
        let sdp = parts
            .iter()
            .find(|p| p.content_type == "application/sdp")
            .map(|p| p.body);
        let sdp = Session::parse(sdp.unwrap_or_default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let audio: Vec<_> = sdp.media.iter().filter(|m| m.kind == "audio").collect();
        assert_eq!(audio.len(), want.streams.len(), "{file}");
        for (m, &(label, port, codec, direction, keys)) in audio.iter().zip(want.streams) {
            assert_eq!(m.label.as_deref(), Some(label), "{file}");
            assert_eq!(m.port, port, "{file} {label}");
            assert_eq!(
                m.audio_codec().map(|(_, c)| c),
                Some(codec),
                "{file} {label}"
            );
            assert_eq!(m.direction, direction, "{file} {label}");
            assert_eq!(m.crypto.len(), keys, "{file} {label}");
            assert_eq!(m.transport, Some(want.transport), "{file} {label}");
            assert!(m.connection.is_some(), "{file} {label}");
        }

        let xml = parts
            .iter()
            .find(|p| p.content_type.starts_with("application/rs-metadata"))
            .map(|p| p.body);
        let meta =
            Metadata::parse(xml.unwrap_or_default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(meta.dialect, want.dialect, "{file}");
        assert_eq!(meta.streams.len(), want.streams.len(), "{file}");
        assert_eq!(meta.participants.len(), 2, "{file}");
        assert_eq!(meta.session_ids.len(), 1, "{file}");
        assert_eq!(
            meta.sip_session_ids.first().map(String::as_str),
            want.sip_session_id,
            "{file}"
        );
        for &(label, _, _, _, _) in want.streams {
            let sender = meta.sender_of_label(label).and_then(|p| p.aor.as_deref());
            let expected = want
                .senders
                .iter()
                .find(|(l, _)| *l == label)
                .map(|(_, a)| *a);
            assert_eq!(sender, expected, "{file} label {label}");
        }
    }
}

#[test]
fn entities_and_names_are_decoded() {
    let raw = load("broadworks.sip");
    let msg = Message::parse(&raw).unwrap_or_else(|e| panic!("{e}"));
    let parts = multipart::parts(msg.header("Content-Type").unwrap_or_default(), &msg.body)
        .unwrap_or_else(|e| panic!("{e}"));
    let meta = Metadata::parse(parts[1].body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.participants[0].name.as_deref(), Some("Caller & Co"));
}

#[test]
fn a_metadata_update_merges_by_id() {
    let first = r#"<recording xmlns="urn:ietf:params:xml:ns:recording:1">
        <participant participant_id="p1"><nameID aor="sip:a@x"/></participant>
        <stream stream_id="s1" session_id="c"><label>1</label></stream></recording>"#;
    let update = r#"<recording xmlns="urn:ietf:params:xml:ns:recording:1">
        <participant participant_id="p2"><nameID aor="sip:b@x"/></participant>
        <participantstreamassoc participant_id="p1"><send>s1</send></participantstreamassoc>
        </recording>"#;
    let mut meta = Metadata::parse(first.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert!(meta.sender_of_label("1").is_none());
    meta.merge(Metadata::parse(update.as_bytes()).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(meta.participants.len(), 2);
    assert_eq!(
        meta.sender_of_label("1").and_then(|p| p.aor.as_deref()),
        Some("sip:a@x")
    );
}

#[test]
fn responses_echo_the_transaction_and_add_our_tag() {
    let raw = load("cisco-cube.sip");
    let invite = Message::parse(&raw).unwrap_or_else(|e| panic!("{e}"));
    let mut ok = invite.response(200, "OK", Some("cv1234"));
    ok.push_header("Contact", "<sip:rec@10.0.0.50:5060>");
    ok.set_body("application/sdp", b"v=0\r\n".to_vec());
    let reparsed = Message::parse(&ok.to_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        reparsed.start,
        StartLine::Response {
            code: 200,
            reason: "OK".into()
        }
    );
    assert_eq!(reparsed.call_id(), invite.call_id());
    assert_eq!(reparsed.to_tag(), Some("cv1234"));
    assert_eq!(reparsed.top_via_branch(), invite.top_via_branch());
    assert_eq!(reparsed.cseq().ok(), Some((101, Method::Invite)));
    assert_eq!(reparsed.body, b"v=0\r\n");
    let trying = invite.response(100, "Trying", Some("cv1234"));
    assert_eq!(
        Message::parse(&trying.to_bytes())
            .ok()
            .and_then(|m| m.to_tag().map(str::to_owned)),
        None
    );
}

#[test]
fn stream_framing_finds_each_message() {
    let one = load("acme-oracle.sip");
    let mut stream = one.clone();
    stream.extend_from_slice(&one);
    assert_eq!(frame_len(&stream), Ok(one.len()));
    assert_eq!(
        frame_len(&stream[..one.len() - 1]),
        Err(ParseError::Incomplete)
    );
    assert_eq!(frame_len(&one[..40]), Err(ParseError::Incomplete));
}

/// Applies `edit` to the RFC 7866 sample (in LF form, before `wire`).
fn mutated(edit: impl Fn(&str) -> String) -> Vec<u8> {
    wire(&edit(&sample("rfc7866.sip")))
}

#[test]
fn malformed_sip_is_refused_with_a_reason() {
    let cases: Vec<(&str, Vec<u8>, ParseError)> = vec![
        (
            "no Via",
            mutated(|t| {
                t.replace(
                    "Via: SIP/2.0/TCP src.example.com;branch=z9hG4bKdf6b622b648d9\n",
                    "",
                )
            }),
            ParseError::MissingHeader("Via"),
        ),
        (
            "no Call-ID",
            mutated(|t| t.replace("Call-ID:", "X-Call-ID:")),
            ParseError::MissingHeader("Call-ID"),
        ),
        (
            "CSeq method",
            mutated(|t| t.replace("101 INVITE", "101 BYE")),
            ParseError::Header("CSeq method differs from the request method"),
        ),
        (
            "CSeq number",
            mutated(|t| t.replace("101 INVITE", "x INVITE")),
            ParseError::Header("CSeq number"),
        ),
        (
            "length",
            mutated(|t| t.replace(": AUTO", ": 99999")),
            ParseError::ContentLength,
        ),
        (
            "length text",
            mutated(|t| t.replace(": AUTO", ": -1")),
            ParseError::Header("Content-Length is not a number"),
        ),
        (
            "version",
            mutated(|t| t.replace("SIP/2.0\n", "SIP/3.0\n")),
            ParseError::StartLine("only SIP/2.0 is supported"),
        ),
        (
            "uri",
            mutated(|t| t.replace("sip:recorder@srs.example.com SIP", "http://srs SIP")),
            ParseError::StartLine("Request-URI must be a sip:, sips: or tel: URI"),
        ),
        (
            "method",
            mutated(|t| t.replace("INVITE sip:", "IN(VITE sip:")),
            ParseError::StartLine("method is not a token"),
        ),
        (
            "colon",
            mutated(|t| t.replace("Max-Forwards: 70", "Max-Forwards 70")),
            ParseError::Header("a header line has no colon"),
        ),
        (
            "twice",
            mutated(|t| t.replace("Max-Forwards: 70", "Call-ID: other")),
            ParseError::Header("a single-valued header appears twice"),
        ),
        (
            "branch",
            mutated(|t| t.replace(";branch=z9hG4bKdf6b622b648d9", "")),
            ParseError::Header("Via has no branch parameter"),
        ),
        (
            "LF only",
            load("rfc7866.sip")
                .iter()
                .copied()
                .filter(|b| *b != b'\r')
                .collect(),
            ParseError::Incomplete,
        ),
        ("empty", Vec::new(), ParseError::Incomplete),
        (
            "huge",
            vec![b'A'; 70_000],
            ParseError::TooLarge(70_000, 65_535),
        ),
    ];
    for (what, raw, want) in cases {
        assert_eq!(Message::parse(&raw).err(), Some(want), "{what}");
    }
}

#[test]
fn malformed_sdp_is_refused_with_a_reason() {
    let base =
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0\n";
    let cases = [
        (
            "no version",
            base.replace("v=0\n", ""),
            "must begin with v=0",
        ),
        (
            "port",
            base.replace("4000", "40x0"),
            "m= port is not a number (port/count is not supported)",
        ),
        (
            "payload type",
            base.replace("RTP/AVP 0", "RTP/AVP 300"),
            "m= formats must be RTP payload types",
        ),
        (
            "address",
            base.replace("IP4 192.0.2.1\nt", "IP4 example.com\nt"),
            "c= address is not a unicast IP address",
        ),
        (
            "family",
            base.replace("c=IN IP4", "c=IN IP6"),
            "c= address family disagrees with its address",
        ),
        (
            "no c=",
            base.replace("c=IN IP4 192.0.2.1\n", ""),
            "a stream has no c= line",
        ),
        (
            "shape",
            format!("{base}junk\n"),
            "a line is not of the form x=value",
        ),
        (
            "rtpmap",
            format!("{base}a=rtpmap:0 PCMU\n"),
            "a=rtpmap must be `pt name/rate[/channels]`",
        ),
        (
            "origin",
            base.replace("o=- 1 1 IN IP4 192.0.2.1", "o=- 1"),
            "o= needs six fields",
        ),
    ];
    for (what, sdp, why) in cases {
        assert_eq!(
            Session::parse(sdp.as_bytes()).err(),
            Some(ParseError::Sdp(why)),
            "{what}"
        );
    }
    let bad_key = format!("{base}a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\n");
    assert_eq!(
        Session::parse(bad_key.as_bytes()).err(),
        Some(ParseError::Crypto(
            "inline key must be 30 bytes (16 key + 14 salt)"
        ))
    );
}

#[test]
fn malformed_metadata_is_refused_with_a_reason() {
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>
        <recording xmlns="urn:ietf:params:xml:ns:recording:1">&lol2;</recording>"#;
    let deep = format!(
        r#"<recording xmlns="urn:ietf:params:xml:ns:recording:1">{}{}</recording>"#,
        "<a>".repeat(40),
        "</a>".repeat(40)
    );
    let cases = [
        (
            "namespace",
            r#"<recording xmlns="urn:example"/>"#.to_owned(),
            "root must be <recording> in urn:ietf:params:xml:ns:recording:1 (or a known vendor dialect)",
        ),
        ("entity bomb", laughs.to_owned(), "a DOCTYPE is not allowed"),
        (
            "unbalanced",
            r#"<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>"#.to_owned(),
            "document ends inside an element",
        ),
        (
            "mismatched",
            r#"<recording xmlns="urn:ietf:params:xml:ns:recording:1"><a></b></recording>"#
                .to_owned(),
            "not well-formed XML",
        ),
        (
            "no id",
            r#"<recording xmlns="urn:ietf:params:xml:ns:recording:1"><participant/></recording>"#
                .to_owned(),
            "<participant> without an id",
        ),
        ("deep", deep, "nested too deeply"),
        ("empty", String::new(), "empty document"),
    ];
    for (what, xml, why) in cases {
        assert_eq!(
            Metadata::parse(xml.as_bytes()).err(),
            Some(ParseError::Metadata(why)),
            "{what}"
        );
    }
}

#[test]
fn malformed_multipart_is_refused_with_a_reason() {
    let cases = [
        (
            "multipart/mixed",
            "--b\r\nContent-Type: a/b\r\n\r\nx\r\n--b--",
            "no boundary parameter",
        ),
        (
            "multipart/mixed;boundary=b",
            "--b\r\nContent-Type: a/b\r\n\r\nx",
            "no closing boundary",
        ),
        ("multipart/mixed;boundary=b", "hello", "no opening boundary"),
        (
            "multipart/alternative;boundary=b",
            "--b--",
            "only multipart/mixed is supported",
        ),
        (
            "multipart/mixed;boundary=b",
            "--b\r\nContent-Type: multipart/mixed\r\n\r\nx\r\n--b--",
            "nested multipart bodies are not supported",
        ),
    ];
    for (content_type, body, why) in cases {
        assert_eq!(
            multipart::parts(content_type, body.as_bytes()).err(),
            Some(ParseError::Multipart(why)),
            "{content_type} {body:?}"
        );
    }
    let single = multipart::parts("application/sdp", b"v=0").unwrap_or_default();
    assert_eq!(single.len(), 1);
    assert_eq!(single[0].content_type, "application/sdp");
}

#[test]
fn rtp_headers_parse_and_malformed_ones_are_refused() {
    // V=2, X=1, CC=1, M=1, PT=0, seq 0x1234, ts 0xdecafbad, ssrc 0xcafebabe, one CSRC,
    // a one-word extension, two payload bytes, P set with 2 padding bytes.
    let mut p = hex("b1801234decafbadcafebabe 11111111 bede0001 22222222 d5d5 0002");
    let packet = rtp::parse(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(packet.header.sequence, 0x1234);
    assert_eq!(packet.header.timestamp, 0xdeca_fbad);
    assert_eq!(packet.header.ssrc, 0xcafe_babe);
    assert!(packet.header.marker);
    assert_eq!(packet.header.payload_type, 0);
    assert_eq!(packet.payload, &[0xd5, 0xd5]);
    p.truncate(4);
    let cases = [
        (p, "shorter than the 12-byte header"),
        (hex("40001234decafbadcafebabe"), "version is not 2"),
        (
            hex("90001234decafbadcafebabe bede"),
            "truncated header extension",
        ),
        (
            hex("90001234decafbadcafebabe bede0009"),
            "header longer than the packet",
        ),
        (
            hex("a0001234decafbadcafebabe d5 09"),
            "padding length exceeds the payload",
        ),
        (
            hex("80c81234decafbadcafebabe"),
            "RTCP packet on the RTP port",
        ),
    ];
    for (packet, why) in cases {
        assert_eq!(
            rtp::parse(&packet).err(),
            Some(ParseError::Rtp(why)),
            "{why}"
        );
    }
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap_or_default()
}
