//! An RTP packet, plain and as SRTP under a fixed key (authentication must fail, never panic).
#![no_main]
use callvault_sip::{rtp, srtp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rtp::parse(data);
    let mut ctx = srtp::Context::new(&[7; srtp::MASTER_LEN]);
    let _ = ctx.unprotect(data);
});
