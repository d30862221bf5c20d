// size: one test binary per feature. Every file here is its own binary that links the whole
// server (about a minute on CI's two cores), so a feature's black-box tests share one file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! SIPREC end to end, black-box: SIPp (`sip-tester`) plays a recording client against the
//! real server over UDP and TCP, sending multipart SDP + metadata and then two RTP streams of
//! real speech (espeak-ng → sox → 8 kHz µ-law → a pcap built here); the stored recording must
//! decode to exactly the sent samples, caller left, and be found by the caller's number.
//! Also: pause/resume by re-INVITE with the Oracle/Acme metadata dialect, and — with a small
//! SIP client of our own — malformed INVITEs, unknown sources, unsupported extensions and
//! RTP port exhaustion.
//!
//! SIPp has neither TLS nor SRTP, so a small client here covers SIP over TLS with SRTP media,
//! including a forged packet that must never reach the recording.

mod common;

use common::live::played;
use common::*;
use serde_json::{Value, json};
use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const TENANT: &str = "hotline";

/// µ-law samples of `text` spoken by espeak-ng, resampled by sox.
fn speech(dir: &Path, name: &str, text: &str) -> Vec<u8> {
    let wav = dir.join(format!("{name}.wav"));
    let ul = dir.join(format!("{name}.ul"));
    let ok = Command::new("espeak-ng")
        .args(["-v", "en", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng (apt-get install espeak-ng)");
    assert!(ok.success());
    sox(&[wav.to_str().unwrap()], &ul);
    std::fs::read(ul).unwrap()
}

/// µ-law samples of a sine tone: never silent, so a pause shows as silence.
fn tone(dir: &Path, name: &str, hz: u32, secs: u32) -> Vec<u8> {
    let ul = dir.join(format!("{name}.ul"));
    let ok = Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-e", "u-law", "-t", "raw"])
        .arg(&ul)
        .args([
            "synth",
            &secs.to_string(),
            "sine",
            &hz.to_string(),
            "vol",
            "0.5",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::read(ul).unwrap()
}

fn sox(input: &[&str], out: &Path) {
    let ok = Command::new("sox")
        .args(input)
        .args(["-r", "8000", "-c", "1", "-e", "u-law", "-t", "raw"])
        .arg(out)
        .status()
        .expect("sox (apt-get install sox)");
    assert!(ok.success());
}

/// A pcap (Ethernet/IPv4/UDP) of RTP streams, 20 ms packets of PCMU, interleaved in time.
/// Stream i goes to port 6000 + 2i: SIPp's `play_pcap_audio` sends it to the answered port of
/// the first stream plus that offset — which is why the recorder answers label 2 on port + 2.
fn pcap(streams: &[&[u8]]) -> Vec<u8> {
    let mut out = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
    let packets = streams
        .iter()
        .map(|s| s.len().div_ceil(160))
        .max()
        .unwrap_or(0);
    for n in 0..packets {
        for (i, audio) in streams.iter().enumerate() {
            let Some(payload) = audio.chunks(160).nth(n) else {
                continue;
            };
            let mut rtp = vec![0x80, 0];
            rtp.extend_from_slice(&(n as u16).to_be_bytes());
            rtp.extend_from_slice(&((n * 160) as u32).to_be_bytes());
            rtp.extend_from_slice(&(0x5151_0000 + i as u32).to_be_bytes());
            rtp.extend_from_slice(payload);
            let udp_len = 8 + rtp.len();
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
            let sum = ip
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum::<u32>();
            let sum = !((sum & 0xFFFF) + (sum >> 16)) as u16;
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            let mut frame = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00];
            frame.extend_from_slice(&ip);
            frame.extend_from_slice(&(5000 + 2 * i as u16).to_be_bytes());
            frame.extend_from_slice(&(6000 + 2 * i as u16).to_be_bytes());
            frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
            frame.extend_from_slice(&[0, 0]);
            frame.extend_from_slice(&rtp);
            let usec = n as u64 * 20_000;
            out.extend_from_slice(&((usec / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((usec % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&frame);
        }
    }
    out
}

/// An even port with `span` free ports after it, for the RTP range.
fn rtp_range(span: u16) -> (u16, u16) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut seed = nanos ^ std::process::id();
    loop {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let base = 40_000 + ((seed >> 8) % 10_000) as u16 * 2;
        let free = (base..base + span).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok());
        if free {
            return (base, base + span - 1);
        }
    }
}

/// Starts the server with `[sip]` on loopback UDP, TCP and TLS, `127.0.0.1` as the only
/// source; `plain_rtp` allows it unencrypted RTP, otherwise it must use SRTP over SIP/TLS.
fn recorder_server(rtp_ports: u16, plain_rtp: bool) -> Server {
    recorder_server_with(
        rtp_ports,
        "",
        &format!(
            r#"
[[sip.sources]]
name = "sbc-test"
tenant = "{TENANT}"
addresses = ["127.0.0.1"]
insecure_plain_rtp = {plain_rtp}
"#
        ),
    )
}

/// The same listeners with more `[sip]` settings and the given `[[sip.sources]]`.
fn recorder_server_with(rtp_ports: u16, sip: &str, sources: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (min, max) = rtp_range(rtp_ports);
    let config = dir.path().join("callvault.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[sip]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
tls = "127.0.0.1:0"
rtp_port_min = {min}
rtp_port_max = {max}
rtp_timeout_secs = 5
{sip}
{sources}
"#
        ),
    )
    .unwrap();
    Server::start_in(dir, &[("CALLVAULT_CONFIG", config.to_str().unwrap())])
}

/// A tenant and a listener who may play its calls.
async fn setup(s: &Server) -> (User, User) {
    let admin = s.admin().await;
    s.tenant(&admin, TENANT).await;
    let nurse = s.user(&admin, "nurse", "listener", Some(TENANT)).await;
    (admin, nurse)
}

/// Runs one SIPp call of `scenario` from `dir` (which holds the pcap) against `target`.
fn sipp(dir: &Path, scenario: &str, transport: &str, target: &str, pause_ms: usize) {
    // Read at run time: a compiled-in path goes stale when a shared target directory is reused
    // by a checkout elsewhere.
    let xml = format!(
        "{}/tests/sipp/{scenario}",
        std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test or nextest")
    );
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let media = rtp_range(4).0;
    let out = Command::new("sipp")
        .current_dir(dir)
        .args(["-sf", &xml, "-t", transport, "-m", "1", "-l", "1"])
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
        .args(["-p", &port.to_string(), "-mp", &media.to_string()])
        .args([
            "-d",
            &pause_ms.to_string(),
            "-timeout",
            "60s",
            "-timeout_error",
        ])
        .args(["-trace_err", "-error_file", "sipp-errors.log", "-nostdin"])
        .arg(target)
        .output()
        .expect("sipp (apt-get install sip-tester)");
    let errors = std::fs::read_to_string(dir.join("sipp-errors.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "sipp {scenario} over {transport} failed: {}\n{errors}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The recordings `listener` finds by `caller`'s number.
async fn by_caller(s: &Server, listener: &User, caller: &str) -> Vec<Value> {
    let page = ok_json(
        listener
            .client
            .post(s.url("/api/v1/recordings/search"))
            .json(&json!({ "caller_number": caller }))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

/// Polls the search by caller number until the assembled recording appears.
async fn recording_of(s: &Server, listener: &User, caller: &str) -> Value {
    for _ in 0..400 {
        if let Some(item) = by_caller(s, listener, caller).await.first() {
            return item.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no recording for {caller} appeared");
}

fn channels(interleaved: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let left = interleaved.iter().step_by(2).copied().collect();
    let right = interleaved.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// The µ-law bytes `sent`, then silence to `len`.
fn padded(sent: &[u8], len: usize) -> Vec<u8> {
    let mut v = sent.to_vec();
    v.resize(len, 0xFF);
    v
}

async fn audit(s: &Server, admin: &User, action: &str) -> Vec<Value> {
    let auditor = s.token(admin, "auditor", None).await;
    let v = s
        .bearer_json(&auditor, &format!("/api/v1/audit?action={action}"))
        .await;
    v.as_array()
        .or(v["items"].as_array())
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_siprec_call_over_udp_is_stored_sample_exact_caller_left_and_searchable() {
    let s = recorder_server(200, true);
    let (_, nurse) = setup(&s).await;
    let work = tempfile::tempdir().unwrap();
    let caller = speech(
        work.path(),
        "caller",
        "Hello, my daughter has had a fever since yesterday.",
    );
    let agent = speech(
        work.path(),
        "agent",
        "Child health line, this is the nurse speaking.",
    );
    std::fs::write(work.path().join("speech.pcap"), pcap(&[&caller, &agent])).unwrap();
    let ms = caller.len().max(agent.len()) / 8 + 1000;
    sipp(
        work.path(),
        "siprec_rfc.xml",
        "u1",
        s.sip_udp.as_deref().unwrap(),
        ms,
    );

    let found = recording_of(&s, &nurse, "+46701234567").await;
    assert_eq!(
        found["agent_id"], "nurse-17",
        "the metadata's agent is searchable"
    );
    assert_eq!(
        found["external_call_id"],
        "ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2"
    );
    assert_eq!(found["channels"], 2);
    let (audio, _) = played(&s, &nurse, found["id"].as_str().unwrap()).await;
    let (left, right) = channels(&audio);
    assert_eq!(left.len(), right.len());
    assert!(left.len() >= caller.len().max(agent.len()));
    assert!(
        left == padded(&caller, left.len()),
        "caller on the left, sample-exact"
    );
    assert!(
        right == padded(&agent, right.len()),
        "agent on the right, sample-exact"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn acme_dialect_over_tcp_pauses_and_resumes_by_reinvite() {
    let s = recorder_server(200, true);
    let (admin, nurse) = setup(&s).await;
    let work = tempfile::tempdir().unwrap();
    let left = tone(work.path(), "left", 440, 6);
    let right = tone(work.path(), "right", 660, 6);
    std::fs::write(work.path().join("tones.pcap"), pcap(&[&left, &right])).unwrap();
    sipp(
        work.path(),
        "siprec_acme_pause.xml",
        "t1",
        s.sip_tcp.as_deref().unwrap(),
        0,
    );

    let found = recording_of(&s, &nurse, "+46812345678").await;
    assert_eq!(found["agent_id"], "agent-4711");
    let (audio, _) = played(&s, &nurse, found["id"].as_str().unwrap()).await;
    let (l, r) = channels(&audio);
    // About 1.5 s of the tone, then ~1.5 s of silence while paused, then the tone again.
    // (A sine crosses zero, so single 0xFF bytes occur; the pause is the longest run.)
    let longest_silence = |c: &[u8]| {
        let (mut best, mut start) = ((0, 0), 0);
        for (i, b) in c.iter().enumerate() {
            if *b != 0xFF {
                start = i + 1;
            } else if i + 1 - start > best.1 {
                best = (start, i + 1 - start);
            }
        }
        best
    };
    // The stored recording's metadata says where the SRC paused, and that it was the SRC.
    let detail = nurse
        .get_json(
            &s,
            &format!("/api/v1/recordings/{}", found["id"].as_str().unwrap()),
        )
        .await;
    let paused = detail["live"]["paused"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(paused.len(), 1, "{detail}");
    assert_eq!(paused[0]["by"], "src");
    let doc = nurse.get_json(&s, "/api/v1/openapi.json").await;
    let schema = &doc["components"]["schemas"];
    assert!(
        schema["LiveOutcome"]["properties"]["paused"].is_object(),
        "{schema}"
    );
    assert!(
        schema["Paused"]["properties"]["offset_ms"].is_object(),
        "{schema}"
    );
    let (at, run) = longest_silence(&l);
    let (offset_ms, length_ms) = (
        paused[0]["offset_ms"].as_u64().unwrap(),
        paused[0]["length_ms"].as_u64().unwrap(),
    );
    // The interval is the signalling's (re-INVITE to re-INVITE), the silence the media's:
    // they agree to within the network's and the mixer's jitter allowance.
    assert!(
        (offset_ms as i64 - at as i64 / 8).abs() < 500,
        "paused at {offset_ms} ms, silent from {} ms",
        at / 8
    );
    assert!(
        (length_ms as i64 - run as i64 / 8).abs() < 500,
        "paused {length_ms} ms, silent {} ms",
        run / 8
    );
    for (name, c, sent) in [("left", &l, &left), ("right", &r, &right)] {
        let (at, run) = longest_silence(c);
        assert!(
            (8 * 1000..8 * 2200).contains(&run),
            "{name}: a pause of ~1.5 s, got {run} samples"
        );
        assert!(
            at > 8 * 1000,
            "{name}: the tone was recorded before the pause"
        );
        assert!(
            c[..at] == sent[..at],
            "{name}: sample-exact before the pause"
        );
        assert!(
            c[at + run..].iter().any(|b| *b != 0xFF),
            "{name}: recording resumed"
        );
    }
    let finished = audit(&s, &admin, "siprec.media").await;
    let details: Value = serde_json::from_str(finished[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["ended_by"], "bye");
    assert_eq!(
        details["paused_by_src_ms"].as_array().map(Vec::len),
        Some(1),
        "{details}"
    );
    assert_eq!(finished[0]["actor"], "sip:sbc-test");
}

/// The details of the first call's `siprec.media` audit entry, once the call has ended.
async fn media_outcome(s: &Server, admin: &User) -> Value {
    for _ in 0..400 {
        if let Some(e) = audit(s, admin, "siprec.media").await.first() {
            return serde_json::from_str(e["details"].as_str().unwrap()).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no siprec.media audit entry appeared");
}

/// A minimal SIP UDP client for the refusals SIPp cannot express.
struct Client {
    socket: UdpSocket,
    target: String,
}

impl Client {
    fn from(local: &str, target: &str) -> Self {
        let socket = UdpSocket::bind((local, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self {
            socket,
            target: target.to_owned(),
        }
    }

    /// Sends `msg` and returns its final answer (skipping 100 Trying, and the 200s of earlier
    /// INVITEs that the recorder re-sends until they are acknowledged).
    fn ask(&self, msg: &str) -> String {
        self.socket.send_to(msg.as_bytes(), &self.target).unwrap();
        let header = |text: &str, name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).map(str::to_owned))
        };
        let (call_id, cseq) = (header(msg, "Call-ID: "), header(msg, "CSeq: "));
        loop {
            let text = self.receive();
            let ours = header(&text, "Call-ID: ") == call_id && header(&text, "CSeq: ") == cseq;
            if ours && !text.starts_with("SIP/2.0 100") {
                return text;
            }
        }
    }

    /// The next message from the recorder.
    fn receive(&self) -> String {
        let mut buf = [0u8; 65_535];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("a message from the recorder");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Acknowledges the 200 `ok` to an INVITE (RFC 3261 §13.2.2.4: a new transaction).
    fn ack(&self, ok: &str) {
        let line = |name: &str| ok.lines().find(|l| l.starts_with(name)).unwrap().to_owned();
        let cseq = line("CSeq: ").replace("INVITE", "ACK");
        let ack = format!(
            "ACK sip:recorder@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKack{}\r\n{}\r\n{}\r\n{}\r\n{cseq}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            rand_suffix(),
            line("From: "),
            line("To: "),
            line("Call-ID: "),
        );
        self.socket.send_to(ack.as_bytes(), &self.target).unwrap();
    }
}

/// A fresh branch suffix.
fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn invite(call_id: &str, extra: &str, body: &str) -> String {
    format!(
        "INVITE sip:recorder@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{call_id}\r\nFrom: <sip:src@127.0.0.1>;tag=t{call_id}\r\nTo: <sip:recorder@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:src@127.0.0.1:5999>;+sip.src\r\nMax-Forwards: 70\r\n{extra}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=label:1\r\na=sendonly\r\nm=audio 7002 RTP/AVP 0\r\na=label:2\r\na=sendonly\r\n";

/// RFC 7865 metadata: `caller` sends the stream labelled 1.
fn rfc_metadata(session: &str, caller: &str) -> String {
    format!(
        r#"<recording xmlns="urn:ietf:params:xml:ns:recording:1"><session session_id="{session}"/><participant participant_id="a"><nameID aor="tel:{caller}"/></participant><stream stream_id="s1" session_id="{session}"><label>1</label></stream><participantstreamassoc participant_id="a"><send>s1</send></participantstreamassoc></recording>"#
    )
}

/// An INVITE (Via UDP) whose body is `sdp` and `metadata` as multipart/mixed.
fn siprec_invite(call_id: &str, sdp: &str, metadata: &str) -> String {
    let body = format!(
        "--b\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n--b\r\nContent-Type: application/rs-metadata+xml\r\n\r\n{metadata}\r\n--b--\r\n"
    );
    invite(call_id, "Require: siprec\r\n", &body).replacen(
        "Content-Type: application/sdp",
        "Content-Type: multipart/mixed;boundary=b",
        1,
    )
}

/// The BYE ending the dialog that `ok` (the INVITE's 200) answered, over `via` (UDP, TLS…).
fn bye(call_id: &str, ok: &str, via: &str) -> String {
    let to = ok.lines().find_map(|l| l.strip_prefix("To: ")).unwrap();
    format!(
        "BYE sip:recorder@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{via} 127.0.0.1:5999;branch=z9hG4bKbye{call_id}\r\nFrom: <sip:src@127.0.0.1>;tag=t{call_id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n"
    )
}

/// `request` (built by [`invite`]) sent inside the dialog that `ok` answered, as the `cseq`th
/// request: the To tag from the answer, a new transaction, and `method`.
fn in_dialog(request: &str, call_id: &str, ok: &str, method: &str, cseq: u32) -> String {
    let to = ok.lines().find_map(|l| l.strip_prefix("To: ")).unwrap();
    request
        .replacen("INVITE sip:", &format!("{method} sip:"), 1)
        .replace("To: <sip:recorder@127.0.0.1>", &format!("To: {to}"))
        .replace("CSeq: 1 INVITE", &format!("CSeq: {cseq} {method}"))
        .replace(
            &format!("branch=z9hG4bK{call_id}"),
            &format!("branch=z9hG4bK{call_id}-{cseq}"),
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_check_that_fails_refuses_the_call_and_logs_its_cause_not_the_wire() {
    // Before the domain errors, the refusal said only "the audit record could not be written"
    // and the cause reached neither the SRC nor the log.
    let s = recorder_server(4, true);
    let (admin, _) = setup(&s).await;
    let off =
        serde_json::json!({ "record": false, "parties": "both", "retention_class": "standard" });
    s.policy(&admin, TENANT, off).await;
    let db = rusqlite::Connection::open(s.data().join("metadata.sqlite")).unwrap();
    db.execute_batch("CREATE TRIGGER audit_down BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit down'); END;")
        .unwrap();
    let src = Client::from("127.0.0.1", s.sip_udp.as_deref().unwrap());
    let answer = src.ask(&invite("unaudited", "Require: siprec\r\n", SDP));
    assert!(
        answer.starts_with("SIP/2.0 403 ") && answer.contains("could not be checked"),
        "{answer}"
    );
    assert!(
        !answer.contains("audit down"),
        "no cause on the wire: {answer}"
    );
    assert!(
        s.log()
            .lines()
            .any(|l| l.contains("SIPREC call refused") && l.contains("audit down")),
        "{}",
        s.log()
    );
}

/// The answered RTP ports, in offer order.
fn answered_ports(ok: &str) -> Vec<u16> {
    ok.lines()
        .filter_map(|l| l.strip_prefix("m=audio "))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

/// `packets` 20 ms PCMU packets of `fill` to `port`.
fn send_rtp(port: u16, packets: u16, fill: u8) {
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in 0..packets {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        p[2..4].copy_from_slice(&n.to_be_bytes());
        p[4..8].copy_from_slice(&(u32::from(n) * 160).to_be_bytes());
        p.extend_from_slice(&[fill; 160]);
        rtp.send_to(&p, ("127.0.0.1", port)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_port_exhaustion_and_rtp_timeout() {
    // Room for exactly one two-stream call.
    let s = recorder_server(4, true);
    let (admin, _) = setup(&s).await;
    let target = s.sip_udp.clone().unwrap();
    let src = Client::from("127.0.0.1", &target);

    let broken = invite("bad1", "", SDP).replace("CSeq: 1 INVITE", "CSeq: one INVITE");
    let answer = src.ask(&broken);
    assert!(answer.starts_with("SIP/2.0 400 "), "{answer}");
    assert!(
        answer.contains("Warning: 399 callvault \"malformed header: CSeq number\""),
        "{answer}"
    );
    let bad_sdp = invite("bad2", "Require: siprec\r\n", "v=0\r\nm=audio x\r\n");
    assert!(src.ask(&bad_sdp).starts_with("SIP/2.0 400 "));
    let bad_xml = invite("bad3", "Require: siprec\r\n", SDP).replace(
        "Content-Type: application/sdp\r\nContent-Length: ",
        "Content-Type: multipart/mixed;boundary=b\r\nContent-Length: ",
    );
    assert!(
        src.ask(&bad_xml).starts_with("SIP/2.0 400 "),
        "a multipart type over a plain body"
    );
    let options = "OPTIONS sip:recorder@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKopt\r\nFrom: <sip:src@127.0.0.1>;tag=o\r\nTo: <sip:recorder@127.0.0.1>\r\nCall-ID: opt\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    assert!(
        src.ask(options).starts_with("SIP/2.0 200 "),
        "the server is unharmed"
    );
    let register = options
        .replace("OPTIONS sip", "REGISTER sip")
        .replace("1 OPTIONS", "1 REGISTER");
    assert!(src.ask(&register).starts_with("SIP/2.0 405 "));
    let answer = src.ask(&invite("ext", "Require: siprec, 100rel\r\n", SDP));
    assert!(
        answer.starts_with("SIP/2.0 420 ") && answer.contains("Unsupported: 100rel"),
        "{answer}"
    );

    let stranger = Client::from("127.0.0.2", &target);
    let answer = stranger.ask(&invite("who", "Require: siprec\r\n", SDP));
    assert!(answer.starts_with("SIP/2.0 403 "), "{answer}");
    let refused = audit(&s, &admin, "siprec.refused").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["actor"], "sip:127.0.0.2");
    assert_eq!(refused[0]["result"], "denied");

    // The recording policy decides for SIPREC as for every ingest path.
    let off =
        serde_json::json!({ "record": false, "parties": "both", "retention_class": "standard" });
    s.policy(&admin, TENANT, off).await;
    let answer = src.ask(&invite("nopolicy", "Require: siprec\r\n", SDP));
    assert!(
        answer.starts_with("SIP/2.0 403 ") && answer.contains("not to record"),
        "{answer}"
    );
    let policy_refusals = audit(&s, &admin, "ingest.refused").await;
    assert_eq!(policy_refusals.len(), 1);
    assert_eq!(policy_refusals[0]["actor"], "sip:sbc-test");
    let on =
        serde_json::json!({ "record": true, "parties": "both", "retention_class": "standard" });
    s.policy(&admin, TENANT, on).await;

    let first = src.ask(&invite("call1", "Require: siprec\r\n", SDP));
    assert!(first.starts_with("SIP/2.0 200 "), "{first}");
    let ports = answered_ports(&first);
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[1], ports[0] + 2, "label 2 on label 1's port + 2");
    assert_eq!(first.matches("a=recvonly").count(), 2);
    let second = src.ask(&invite("call2", "Require: siprec\r\n", SDP));
    assert!(second.starts_with("SIP/2.0 503 "), "{second}");
    // A retransmitted INVITE gets the same answer, not a second call.
    assert_eq!(src.ask(&invite("call1", "Require: siprec\r\n", SDP)), first);

    // The SRC sends a little audio and vanishes without BYE: after `rtp_timeout_secs` the call
    // is finalised, audited as such, and its ports serve the next call.
    send_rtp(ports[0], 5, 0x55);
    let details = media_outcome(&s, &admin).await;
    assert_eq!(details["ended_by"], "rtp_timeout");
    // The ports come back once the receivers are gone; poll with fresh INVITEs.
    let mut third = String::new();
    for n in 0..100 {
        third = src.ask(&invite(&format!("call3-{n}"), "Require: siprec\r\n", SDP));
        if !third.starts_with("SIP/2.0 503 ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        third.starts_with("SIP/2.0 200 "),
        "ports returned after the timeout: {third}"
    );
}

type TlsSip = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A SIP client over TLS that trusts the server's certificate.
async fn tls_client(s: &Server) -> TlsSip {
    tls_client_as(s, "127.0.0.1", None).await
}

/// A SIP/TLS client connecting from `local` (a loopback address), presenting `identity`.
async fn tls_client_as(s: &Server, local: &str, identity: Option<&Identity>) -> TlsSip {
    use rustls_pki_types::pem::PemObject;
    let _ = s.client(); // installs the process's rustls provider
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls_pki_types::CertificateDer::from_pem_file(s.data().join("tls/cert.pem")).unwrap(),
        )
        .unwrap();
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let cfg = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let tcp = socket
        .connect(s.sip_tls.as_deref().unwrap().parse().unwrap())
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// A TLS client certificate chain (leaf first) and its key, made with rcgen.
struct Identity {
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
}

impl Identity {
    /// A certificate for `name`, self-signed or issued by `ca`.
    fn new(name: &str, ca: Option<&(rcgen::Certificate, rcgen::KeyPair)>) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = match ca {
            Some((ca_cert, ca_key)) => params.signed_by(&key, ca_cert, ca_key).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        let mut chain = vec![cert.der().clone()];
        chain.extend(ca.map(|(c, _)| c.der().clone()));
        Self {
            chain,
            key: rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }

    /// The leaf's SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` prints it.
    fn fingerprint(&self) -> String {
        use sha2::Digest as _;
        let hex = hex::encode_upper(sha2::Sha256::digest(&self.chain[0]));
        let pairs: Vec<&str> = (0..32).map(|i| &hex[2 * i..2 * i + 2]).collect();
        pairs.join(":")
    }
}

/// A CA for SRC certificates.
fn src_ca() -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "SRC test CA");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert, key)
}

/// Sends one request over a stream and reads the final answer.
async fn ask_stream<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    msg: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(msg.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            if body.len() >= len {
                if head.starts_with("SIP/2.0 100") {
                    buf.drain(..head.len() + 4 + len);
                    continue;
                }
                return text;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn srtp_over_sip_tls_is_recorded_exactly_and_forged_packets_never_reach_it() {
    use base64::Engine as _;
    use callvault_sip::srtp;
    let s = recorder_server(200, false);
    let (admin, nurse) = setup(&s).await;
    let keys: Vec<[u8; srtp::MASTER_LEN]> = (1..=2u8)
        .map(|k| std::array::from_fn(|i| k.wrapping_mul(31).wrapping_add(i as u8)))
        .collect();
    let b64 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(k);
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 7000 RTP/SAVP 0\r\na=label:1\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\na=sendonly\r\n\
         m=audio 7002 RTP/SAVP 0\r\na=label:2\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\na=sendonly\r\n",
        b64(&keys[0]),
        b64(&keys[1])
    );
    let invite = siprec_invite("tls1", &sdp, &rfc_metadata("tls-1", "+46709876543"))
        .replace("SIP/2.0/UDP", "SIP/2.0/TLS");
    let mut sip = tls_client(&s).await;
    let ok = ask_stream(&mut sip, &invite).await;
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    assert_eq!(
        ok.matches("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
            .count(),
        2,
        "{ok}"
    );
    assert_eq!(ok.matches("RTP/SAVP").count(), 2);
    let ports = answered_ports(&ok);

    // The same offer over UDP is refused: SDES keys only travel over TLS.
    let udp = Client::from("127.0.0.1", s.sip_udp.as_deref().unwrap());
    let refused = udp.ask(
        &invite
            .replace("SIP/2.0/TLS", "SIP/2.0/UDP")
            .replace("tls1", "udp1"),
    );
    assert!(refused.starts_with("SIP/2.0 488 "), "{refused}");

    let audio: Vec<Vec<u8>> = (0..2u8)
        .map(|k| {
            (0..8000u32)
                .map(|i| (i * 7 + u32::from(k) * 91) as u8 | 0x01)
                .collect()
        })
        .collect();
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (k, stream) in audio.iter().enumerate() {
        let mut ctx = srtp::Context::new(&keys[k]);
        for (n, payload) in stream.chunks(160).enumerate() {
            let mut p = vec![0x80, 0];
            p.extend_from_slice(&(n as u16 + 100).to_be_bytes());
            p.extend_from_slice(&((n * 160) as u32).to_be_bytes());
            p.extend_from_slice(&(0xABCD_0000 + k as u32).to_be_bytes());
            p.extend_from_slice(payload);
            let protected = ctx.protect(&p).unwrap();
            if n == 10 {
                // A forgery first: the same header, other bytes, a tag that cannot verify.
                let mut forged = protected.clone();
                forged[12..172].fill(0);
                rtp.send_to(&forged, ("127.0.0.1", ports[k])).unwrap();
            }
            rtp.send_to(&protected, ("127.0.0.1", ports[k])).unwrap();
        }
    }
    // Let the packets land before hanging up (no sleep-to-synchronise: BYE flushes whatever
    // arrived, and the assertions below would show any packet missing).
    let monitor = s.token(&admin, "auditor", None).await;
    let mut text = String::new();
    for _ in 0..400 {
        text = body_text(s.client().get(s.url("/metrics")).bearer_auth(&monitor)).await;
        if metric(&text, "callvault_sip_rtp_packets_total") == Some(100) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        metric(&text, "callvault_sip_rtp_packets_total"),
        Some(100),
        "{text}"
    );
    assert_eq!(
        metric(&text, "callvault_sip_srtp_auth_failures_total"),
        Some(2)
    );
    assert!(
        ask_stream(&mut sip, &bye("tls1", &ok, "TLS"))
            .await
            .starts_with("SIP/2.0 200 ")
    );

    let found = recording_of(&s, &nurse, "+46709876543").await;
    let (stored, _) = played(&s, &nurse, found["id"].as_str().unwrap()).await;
    let (left, right) = channels(&stored);
    assert!(
        left == padded(&audio[0], left.len()),
        "caller stream decrypted sample-exact"
    );
    assert!(
        right == padded(&audio[1], right.len()),
        "agent stream decrypted sample-exact"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn srcs_are_told_apart_by_client_certificate_and_refused_without_the_right_one() {
    let work = tempfile::tempdir().unwrap();
    let ca = src_ca();
    let ca_file = work.path().join("src-ca.pem");
    std::fs::write(&ca_file, ca.0.pem()).unwrap();
    let pinned = Identity::new("sbc-a.example.net", None);
    let named = Identity::new("sbc-b.example.net", Some(&ca));
    let impostor = Identity::new("sbc-a.example.net", None);
    let misnamed = Identity::new("pbx.example.net", Some(&ca));
    // sbc-a: its address and its pinned self-signed certificate; sbc-b: any address, with a
    // certificate for its name from the SRCs' CA.
    let s = recorder_server_with(
        200,
        &format!("client_ca_file = \"{}\"", ca_file.display()),
        &format!(
            r#"
[[sip.sources]]
name = "sbc-a"
tenant = "{TENANT}"
addresses = ["127.0.0.1"]
certificate_sha256 = ["{}"]
insecure_plain_rtp = true

[[sip.sources]]
name = "sbc-b"
tenant = "{TENANT}"
certificate_name = "sbc-b.example.net"
insecure_plain_rtp = true
"#,
            pinned.fingerprint()
        ),
    );
    let (admin, nurse) = setup(&s).await;
    let tls_invite = |call: &str, caller: &str| {
        siprec_invite(call, SDP, &rfc_metadata(call, caller)).replace("SIP/2.0/UDP", "SIP/2.0/TLS")
    };

    // The right certificate from the right address: recorded.
    let mut sip = tls_client_as(&s, "127.0.0.1", Some(&pinned)).await;
    let ok = ask_stream(&mut sip, &tls_invite("cert-ok", "+46701112233")).await;
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    send_rtp(answered_ports(&ok)[0], 10, 0x42);
    let bye_ok = ask_stream(&mut sip, &bye("cert-ok", &ok, "TLS")).await;
    assert!(bye_ok.starts_with("SIP/2.0 200 "), "{bye_ok}");
    let found = recording_of(&s, &nurse, "+46701112233").await;
    assert_eq!(found["channels"], 2);

    // A CA-issued certificate naming sbc-b is let in from an address no source lists.
    let mut roaming = tls_client_as(&s, "127.0.0.2", Some(&named)).await;
    let ok_b = ask_stream(&mut roaming, &tls_invite("cert-b", "+46701112244")).await;
    assert!(ok_b.starts_with("SIP/2.0 200 "), "{ok_b}");
    let bye_b = ask_stream(&mut roaming, &bye("cert-b", &ok_b, "TLS")).await;
    assert!(bye_b.starts_with("SIP/2.0 200 "), "{bye_b}");

    // sbc-a's address without a certificate, over TLS and over UDP; with another certificate
    // for the same name; a CA-issued certificate for another name from elsewhere.
    let mut bare = tls_client_as(&s, "127.0.0.1", None).await;
    let no_cert = ask_stream(&mut bare, &tls_invite("no-cert", "+46701112255")).await;
    assert!(no_cert.starts_with("SIP/2.0 403 "), "{no_cert}");
    assert!(no_cert.contains("none was presented"), "{no_cert}");
    let udp = Client::from("127.0.0.1", s.sip_udp.as_deref().unwrap());
    let over_udp = udp.ask(&siprec_invite(
        "no-cert-udp",
        SDP,
        &rfc_metadata("u", "+4670"),
    ));
    assert!(over_udp.starts_with("SIP/2.0 403 "), "{over_udp}");
    let mut fake = tls_client_as(&s, "127.0.0.1", Some(&impostor)).await;
    let wrong = ask_stream(&mut fake, &tls_invite("wrong-cert", "+46701112266")).await;
    assert!(wrong.starts_with("SIP/2.0 403 "), "{wrong}");
    assert!(
        wrong.contains("not one pinned for source `sbc-a`"),
        "{wrong}"
    );
    let mut other = tls_client_as(&s, "127.0.0.2", Some(&misnamed)).await;
    let stranger = ask_stream(&mut other, &tls_invite("misnamed", "+46701112277")).await;
    assert!(stranger.starts_with("SIP/2.0 403 "), "{stranger}");

    let refused = audit(&s, &admin, "siprec.refused").await;
    let reasons: Vec<String> = refused
        .iter()
        .map(|e| {
            let d: Value = serde_json::from_str(e["details"].as_str().unwrap()).unwrap();
            d["reason"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(refused.len(), 4, "{reasons:?}");
    let has = |what: &str| reasons.iter().any(|r| r.contains(what));
    assert!(
        has("source `sbc-a` must present its TLS client certificate"),
        "{reasons:?}"
    );
    assert!(
        has(&format!(
            "the client certificate (SHA-256 {}) is not one pinned for source `sbc-a`",
            impostor.fingerprint().replace(':', "").to_lowercase()
        )),
        "{reasons:?}"
    );
    assert!(
        has("not a configured recording client (client certificate SHA-256"),
        "{reasons:?}"
    );
    // Refusals at sbc-a's address are its tenant's to see.
    let at_a = refused.iter().filter(|e| e["tenant"] == TENANT).count();
    assert_eq!(at_a, 3, "{refused:?}");
    assert!(refused.iter().all(|e| e["result"] == "denied"));
    // Nothing of the refused calls was recorded.
    for caller in ["+46701112255", "+46701112266", "+46701112277"] {
        assert!(by_caller(&s, &nurse, caller).await.is_empty(), "{caller}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_updates_in_reinvite_and_update_make_joined_parties_searchable() {
    let s = recorder_server(200, true);
    let (_, nurse) = setup(&s).await;
    let src = Client::from("127.0.0.1", s.sip_udp.as_deref().unwrap());
    let (caller, transferred_to, consulted) = ("+46701230001", "+46701230002", "+46701230003");
    let ok = src.ask(&siprec_invite("xfer", SDP, &rfc_metadata("xfer", caller)));
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    // Over UDP the 200 is re-sent, byte for byte, until the ACK comes (RFC 3261 §13.3.1.4).
    assert_eq!(src.receive(), ok, "the 200 again, T1 later");
    src.ack(&ok);
    send_rtp(answered_ports(&ok)[0], 10, 0x42);

    // A transfer (RFC 7866 §6.1.1): a re-INVITE with the SDP and new metadata naming the party
    // the call went to, as a SIP URI with a phone number.
    let joined = format!(
        r#"<recording xmlns="urn:ietf:params:xml:ns:recording:1"><session session_id="xfer"/><participant participant_id="b"><nameID aor="sip:{transferred_to}@pbx.example;user=phone"/></participant><stream stream_id="s2" session_id="xfer"><label>2</label></stream><participantstreamassoc participant_id="b"><send>s2</send></participantstreamassoc></recording>"#
    );
    let reinvite = in_dialog(
        &siprec_invite("xfer", SDP, &joined),
        "xfer",
        &ok,
        "INVITE",
        2,
    );
    let answer = src.ask(&reinvite);
    assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
    assert_eq!(answer.matches("a=recvonly").count(), 2, "{answer}");
    // An UPDATE with metadata alone (a consultation call joined).
    let consult = format!(
        r#"<recording xmlns="urn:ietf:params:xml:ns:recording:1"><participant participant_id="c"><nameID aor="tel:{consulted}"/></participant></recording>"#
    );
    let update = invite("xfer", "Require: siprec\r\n", &consult).replace(
        "Content-Type: application/sdp",
        "Content-Type: application/rs-metadata+xml",
    );
    let answer = src.ask(&in_dialog(&update, "xfer", &ok, "UPDATE", 3));
    assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
    assert!(
        src.ask(&bye("xfer", &ok, "UDP"))
            .starts_with("SIP/2.0 200 ")
    );

    let found = recording_of(&s, &nurse, caller).await;
    for party in [transferred_to, consulted] {
        let hits = by_caller(&s, &nurse, party).await;
        assert_eq!(hits.len(), 1, "{party} finds the call");
        assert_eq!(hits[0]["id"], found["id"]);
    }
    let detail = nurse
        .get_json(
            &s,
            &format!("/api/v1/recordings/{}", found["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(detail["caller_number"], caller);
    let mut parties: Vec<&str> = detail["other_parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    parties.sort_unstable();
    assert_eq!(parties, [transferred_to, consulted], "{detail}");
    // Pseudonymised at rest: the numbers are nowhere in clear, not in any stored file (the
    // database included) and not in the log.
    let stored: Vec<_> = s
        .storage_dirs()
        .iter()
        .flat_map(|d| files_under(d))
        .chain([s.root().join("server.log")])
        .collect();
    for f in stored {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for party in [transferred_to, consulted] {
            let digits = party.trim_start_matches('+').as_bytes();
            assert!(
                !bytes.windows(digits.len()).any(|w| w == digits),
                "{party} in clear in {}",
                f.display()
            );
        }
    }
}

#[test]
fn serve_refuses_bad_src_certificate_settings_before_binding() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("callvault.toml");
    let cases = [
        (
            "certificate_sha256 = [\"AB:CD\"]",
            "`sip.sources` `sbc-x`: `certificate_sha256` `AB:CD` has 2 bytes",
        ),
        (
            "certificate_name = \"sbc.example.net\"",
            "set `sip.client_ca_file`",
        ),
        ("", "`sip.sources` `sbc-x` lists neither `addresses` nor"),
    ];
    for (source, expected) in cases {
        std::fs::write(
            &config,
            format!(
                "[sip]\ntls = \"127.0.0.1:0\"\n\n[[sip.sources]]\nname = \"sbc-x\"\ntenant = \"{TENANT}\"\n{source}\n"
            ),
        )
        .unwrap();
        let out = cli(
            root.path(),
            &[("CALLVAULT_CONFIG", config.to_str().unwrap())],
            &["serve"],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{source}: serve started");
        assert!(stderr.contains(expected), "{source}: {stderr}");
    }
    // An unreadable CA file is named with its path.
    std::fs::write(
        &config,
        format!(
            "[sip]\ntls = \"127.0.0.1:0\"\nclient_ca_file = \"{0}/missing-ca.pem\"\n\n[[sip.sources]]\nname = \"sbc-x\"\ntenant = \"{TENANT}\"\naddresses = [\"127.0.0.1\"]\n",
            root.path().display()
        ),
    )
    .unwrap();
    let out = cli(
        root.path(),
        &[("CALLVAULT_CONFIG", config.to_str().unwrap())],
        &["serve"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`sip.client_ca_file`") && stderr.contains("missing-ca.pem"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_ack_the_200_is_resent_then_the_call_ends_with_our_bye() {
    // T1 = 20 ms (a debug-build test knob): 64·T1 is 1.28 s instead of 32 s.
    let s = recorder_server_with(
        200,
        "test_t1_ms = 20",
        &format!(
            "[[sip.sources]]\nname = \"sbc-test\"\ntenant = \"{TENANT}\"\naddresses = [\"127.0.0.1\"]\ninsecure_plain_rtp = true\n"
        ),
    );
    let (admin, _) = setup(&s).await;
    let src = Client::from("127.0.0.1", s.sip_udp.as_deref().unwrap());
    let ok = src.ask(&invite("noack", "Require: siprec\r\n", SDP));
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    send_rtp(answered_ports(&ok)[0], 5, 0x42);
    // Never acknowledged: copies of the 200, then the recorder's BYE.
    let mut copies = 0;
    let bye = loop {
        let m = src.receive();
        if m.starts_with("BYE ") {
            break m;
        }
        assert_eq!(m, ok, "only the 200 is re-sent");
        copies += 1;
    };
    assert_eq!(
        copies, 6,
        "re-sent at 20, 60, 140, 300, 620 and 1260 ms (T1 doubling); BYE at 64·T1 = 1280 ms"
    );
    let header = |m: &str, name: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .to_owned()
    };
    assert!(
        bye.starts_with("BYE sip:src@127.0.0.1:5999 SIP/2.0\r\n"),
        "{bye}"
    );
    assert_eq!(header(&bye, "Call-ID: "), "noack");
    assert_eq!(
        header(&bye, "To: "),
        header(&ok, "From: "),
        "to the SRC, its tag"
    );
    assert_eq!(
        header(&bye, "From: "),
        header(&ok, "To: "),
        "from us, our tag"
    );
    assert_eq!(header(&bye, "CSeq: "), "1 BYE");
    let details = media_outcome(&s, &admin).await;
    assert_eq!(details["ended_by"], "no_ack");
}
