#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Round trips, seeking, tampering and truncation of the recording format.

use callvault_crypto::{
    ExposeSecret, Header, KeyProvider, RecordingWriter, TenantIdentity, decrypt_small,
    encrypt_small, generate_key_file, open_recording,
};
use std::io::{Cursor, Read, Seek, SeekFrom, Write};

fn setup() -> (tempfile::TempDir, KeyProvider, TenantIdentity) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    generate_key_file(&path, None).unwrap();
    let kp = KeyProvider::from_file(&path, None).unwrap();
    let (sealed, _) = TenantIdentity::generate(&kp, "t1", 1).unwrap();
    let id = TenantIdentity::open(&kp, "t1", 1, &sealed).unwrap();
    (dir, kp, id)
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn encrypt(id: &TenantIdentity, data: &[u8]) -> (Header, Vec<u8>) {
    let mut w = RecordingWriter::new(&[id.recipient()], Vec::new()).unwrap();
    // Odd-sized writes exercise the header splitter and chunk boundaries.
    for part in data.chunks(10_007) {
        w.write_all(part).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn round_trip_and_header_is_separate() {
    let (_d, _kp, id) = setup();
    for len in [0, 1, 65_535, 65_536, 65_537, 300_000] {
        let data = sample(len);
        let (header, payload) = encrypt(&id, &data);
        assert!(header.as_bytes().starts_with(b"age-encryption.org/v1\n"));
        assert!(header.as_bytes().ends_with(b"\n"));
        assert_eq!(payload.len(), 16 + len + 16 * len.div_ceil(65_536).max(1));
        let mut r = open_recording(&header, Cursor::new(payload), &id).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data, "len {len}");
    }
}

#[test]
fn seek_reads_exact_ranges() {
    let (_d, _kp, id) = setup();
    let data = sample(1_000_000);
    let (header, payload) = encrypt(&id, &data);
    let mut r = open_recording(&header, Cursor::new(payload), &id).unwrap();
    assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), data.len() as u64);
    for start in [0usize, 65_535, 65_536, 500_000, 999_990] {
        r.seek(SeekFrom::Start(start as u64)).unwrap();
        let mut buf = vec![0; 100.min(data.len() - start)];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(buf, &data[start..start + buf.len()]);
    }
}

#[test]
fn flipped_payload_byte_is_an_error_not_garbage() {
    let (_d, _kp, id) = setup();
    let data = sample(200_000);
    let (header, mut payload) = encrypt(&id, &data);
    payload[100_000] ^= 0x01; // inside the second chunk
    let mut r = open_recording(&header, Cursor::new(payload), &id).unwrap();
    let mut out = Vec::new();
    let err = r.read_to_end(&mut out).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    // Only the intact first chunk was released.
    assert!(out.len() <= 65_536 && data.starts_with(&out));
}

#[test]
fn truncated_payload_is_an_error() {
    let (_d, _kp, id) = setup();
    let data = sample(200_000);
    let (header, payload) = encrypt(&id, &data);
    let cut = payload[..16 + 2 * (65_536 + 16)].to_vec(); // whole chunks, final flag missing
    let mut r = open_recording(&header, Cursor::new(cut), &id).unwrap();
    assert!(r.read_to_end(&mut Vec::new()).is_err());
}

#[test]
fn altered_header_or_wrong_identity_fails_closed() {
    let (_d, kp, id) = setup();
    let (header, payload) = encrypt(&id, &sample(1000));
    let mut bad = header.as_bytes().to_vec();
    let i = bad.len() - 5;
    bad[i] ^= 1;
    assert!(open_recording(&Header::from_bytes(bad), Cursor::new(payload.clone()), &id).is_err());
    let (sealed, _) = TenantIdentity::generate(&kp, "t2", 1).unwrap();
    let other = TenantIdentity::open(&kp, "t2", 1, &sealed).unwrap();
    assert!(open_recording(&header, Cursor::new(payload), &other).is_err());
}

#[test]
fn small_values_round_trip() {
    let (_d, _kp, id) = setup();
    let ct = encrypt_small(&[id.recipient()], b"+46701234567").unwrap();
    assert!(!ct.windows(12).any(|w| w == b"+46701234567"));
    assert_eq!(
        decrypt_small(&id, &ct).unwrap().expose_secret().as_slice(),
        b"+46701234567"
    );
}
