//! An SDP offer, and each stream's codec choice.
#![no_main]
use callvault_sip::sdp::Session;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(session) = Session::parse(data) {
        for m in &session.media {
            let _ = m.audio_codec();
        }
    }
});
