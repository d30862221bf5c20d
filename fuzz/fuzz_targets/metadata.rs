//! Recording metadata XML in any dialect, and a merge of it into itself.
#![no_main]
use callvault_sip::metadata::Metadata;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(meta) = Metadata::parse(data) {
        let mut merged = meta.clone();
        merged.merge(meta);
        let _ = merged.sender_of_label("1");
    }
});
