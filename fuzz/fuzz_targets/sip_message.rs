//! A SIP message as it arrives in a datagram or a stream, and the multipart body inside it.
#![no_main]
use callvault_sip::{message, multipart};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = message::frame_len(data);
    if let Ok(msg) = message::Message::parse(data) {
        let _ = msg.cseq();
        let _ = msg.to_bytes();
        let _ = multipart::parts(msg.header("Content-Type").unwrap_or_default(), &msg.body);
    }
});
