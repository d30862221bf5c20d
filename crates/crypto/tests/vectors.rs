#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Test vectors for the at-rest format (docs/FORMAT.md), checked two ways: with independent
//! primitives (the `age` crate's own decryptor, `chacha20poly1305`, `argon2`, `hmac`) so the
//! documented bytes are right, and through this crate's API so the code still reads them.
//!
//! The fixtures in `tests/vectors/` were generated once and cross-checked with `rage 0.11` and
//! Python's `cryptography` package. Never regenerate them to make a test pass: a failure here
//! means the at-rest format changed, and stored recordings would stop opening.

use base64::Engine as _;
use callvault_crypto::{
    ExposeSecret, Header, JournalKey, KeyProvider, RecordingWriter, SealContext, SecretString,
    TenantIdentity, TenantRecipient, decrypt_small, open_recording,
};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::Mac;
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Master key: the bytes 00 01 02 … 1f.
const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// The identity of `vectors/identity.txt`, sealed under `MASTER_KEY` for tenant `acme`, key 1,
/// with nonce 40 41 … 57.
const IDENTITY_CONTEXT: &str = "callvault/tenant-identity/v1/acme/1";
const IDENTITY_NONCE: &str = "404142434445464748494a4b4c4d4e4f5051525354555657";
const IDENTITY_SEALED: &str = "01404142434445464748494a4b4c4d4e4f5051525354555657\
957e405d83a53a44caa0aaf5eac548a3d7829afd581163a33d06a710395d11c643cd4a3b04d8c85cb3e1c4744c9e\
e9c9a85f29a657d486db83bd5bb85ff60f646868cf23208b0e83c83a8c6cbf348ca3757a44d4c3116b9615ba";

/// Caller-number hash key a0 a1 … bf, sealed for tenant `acme` with nonce 60 61 … 77, and the
/// keyed hash of one number under it.
const HASH_KEY: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";
const HASH_KEY_CONTEXT: &str = "callvault/caller-hash-key/v1/acme";
const HASH_KEY_SEALED: &str = "01606162636465666768696a6b6c6d6e6f7071727374757677\
15781385f2adf28f8bbe5784adddad11824f299fbae444d3e8a49ccd29ccda5e8b3d110d663d5e144797f12f0e1c797c";
const CALLER: &str = "+46701234567";
const CALLER_HASH: &str = "95cb5fc1bef1fcd2b9ffee15f771abe55a30ec520b271d96938b1462900af28b";

/// `vectors/master-key-sealed.txt`: `MASTER_KEY` sealed under a passphrase.
const PASSPHRASE: &str = "correct horse battery staple";
const KDF_SALT: &str = "808182838485868788898a8b8c8d8e8f";
const KEK: &str = "ab81e152034dafa1d3d8d036f16666b5b933f29566ce50880fde34621f8179ea";
const MASTER_SEALED: &str = "01909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7\
06544eb42597e665c1d6d44bad66673f5d0af96c3df1d462aa526c524f138388b2317edf27c4abff3b3a48aa6dcc4569";

/// Live-call journal: journal key 20 21 … 3f (wrapped to the vector recipient as
/// `journal-key.age`), chunk 7 of call `LIVE_CALL` sealed with nonce 80 81 … 97. The sealed
/// bytes were computed with Python's `cryptography` (HChaCha20 + ChaCha20-Poly1305).
const JOURNAL_KEY: &str = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
const LIVE_CALL: &str = "rec_0123456789abcdef0123456789abcdef";
const LIVE_NONCE: &str = "808182838485868788898a8b8c8d8e8f9091929394959697";
const LIVE_SEALED: &str = "01808182838485868788898a8b8c8d8e8f9091929394959697\
f7609af3c13db1c48ed4abaf3df8f5d4d7e804d5303a890f8349c60f2db1a052f1cf96285f0dab7704d93f4d1a69c9e6cb";

fn vector(name: &str) -> Vec<u8> {
    // Read at run time: a compiled-in path goes stale when a shared target directory is reused
    // by a checkout elsewhere.
    let p = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test or nextest"))
        .join("tests/vectors")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn text(name: &str) -> String {
    String::from_utf8(vector(name))
        .unwrap()
        .trim_end()
        .to_owned()
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The payload length of an age file with `len` bytes of plaintext.
fn payload_len(len: usize) -> usize {
    16 + len + 16 * len.div_ceil(65_536).max(1)
}

/// Decrypts a whole age file with the standard decryptor, as `rage -d -i` would.
fn age_decrypt(identity: &age::x25519::Identity, file: &[u8]) -> std::io::Result<Vec<u8>> {
    let dec = age::Decryptor::new(file).map_err(std::io::Error::other)?;
    let mut r = dec
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)?;
    Ok(out)
}

fn vector_identity() -> age::x25519::Identity {
    age::x25519::Identity::from_str(&text("identity.txt")).unwrap()
}

/// A key file copied out of the fixtures with the mode `KeyProvider` insists on.
fn key_file(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, vector(name)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn seal_independently(key: &[u8], nonce: &[u8], aad: &str, plaintext: &[u8]) -> Vec<u8> {
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        .unwrap();
    [&[0x01], nonce, &ct].concat()
}

#[test]
fn recording_vector_is_a_standard_age_file() {
    let header = vector("recording.header");
    let payload = vector("recording.payload");
    let plaintext = vector("plaintext.txt");
    let identity = vector_identity();
    assert_eq!(identity.to_public().to_string(), text("recipient.txt"));

    // Header: version line, stanzas, then the MAC line `--- <43 base64 chars>\n` last.
    assert!(header.starts_with(b"age-encryption.org/v1\n-> X25519 "));
    let body = std::str::from_utf8(&header).unwrap();
    let mac_line = body.trim_end_matches('\n').rsplit('\n').next().unwrap();
    assert!(
        mac_line.starts_with("--- ") && mac_line.len() == 4 + 43,
        "{mac_line}"
    );
    assert!(header.ends_with(b"\n"));
    assert_eq!(
        body.matches("\n--- ").count(),
        1,
        "only the MAC line starts with ---"
    );

    assert_eq!(payload.len(), payload_len(plaintext.len()));
    let whole = [header.as_slice(), payload.as_slice()].concat();
    assert_eq!(age_decrypt(&identity, &whole).unwrap(), plaintext);

    // Any altered payload byte fails authentication instead of yielding other audio.
    let mut bad = whole.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    assert!(age_decrypt(&identity, &bad).is_err());
}

#[test]
fn caller_number_vector_is_a_small_age_file() {
    let caller = vector("caller.age");
    assert_eq!(
        age_decrypt(&vector_identity(), &caller).unwrap(),
        CALLER.as_bytes()
    );
}

#[test]
fn fresh_recordings_have_the_vector_shape() {
    let identity = vector_identity();
    let recipient = TenantRecipient::parse(&text("recipient.txt")).unwrap();
    for len in [0, 1, 65_536, 65_537, 200_000] {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut w = RecordingWriter::new(std::slice::from_ref(&recipient), Vec::new()).unwrap();
        w.write_all(&data).unwrap();
        let (header, payload) = w.finish().unwrap();
        assert!(header.as_bytes().starts_with(b"age-encryption.org/v1\n"));
        assert_eq!(payload.len(), payload_len(len), "len {len}");
        let whole = [header.as_bytes(), payload.as_slice()].concat();
        assert_eq!(age_decrypt(&identity, &whole).unwrap(), data, "len {len}");
    }
}

#[test]
fn master_key_sealing_vector() {
    let key = hex(MASTER_KEY);
    let identity_text = text("identity.txt");
    let sealed = hex(IDENTITY_SEALED);
    assert_eq!(
        seal_independently(
            &key,
            &hex(IDENTITY_NONCE),
            IDENTITY_CONTEXT,
            identity_text.as_bytes()
        ),
        sealed
    );
    assert_eq!(sealed.len(), 1 + 24 + identity_text.len() + 16);

    // The plain key file holds the same key, base64 on the second line.
    let file = String::from_utf8(vector("master-key.txt")).unwrap();
    let mut lines = file.lines();
    assert_eq!(lines.next(), Some("callvault-master-key-v1"));
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(b64.decode(lines.next().unwrap()).unwrap(), key);

    // This crate opens the vector with that file, and only under the right context.
    let dir = tempfile::tempdir().unwrap();
    let kp = KeyProvider::from_file(&key_file(&dir, "master-key.txt"), None).unwrap();
    let ctx = SealContext::tenant_identity("acme", 1);
    assert_eq!(
        kp.open(&ctx, &sealed).unwrap().expose_secret().as_slice(),
        identity_text.as_bytes()
    );
    assert!(
        kp.open(&SealContext::tenant_identity("acme", 2), &sealed)
            .is_err()
    );
    assert!(
        kp.open(&SealContext::tenant_identity("other", 1), &sealed)
            .is_err()
    );

    // The whole chain: master key → sealed identity → recording, through this crate's API.
    let id = TenantIdentity::open(&kp, "acme", 1, &sealed).unwrap();
    assert_eq!(id.export().expose_secret(), identity_text);
    assert_eq!(id.recipient().to_string(), text("recipient.txt"));
    let header = Header::from_bytes(vector("recording.header"));
    let mut r = open_recording(&header, Cursor::new(vector("recording.payload")), &id).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, vector("plaintext.txt"));
    assert_eq!(
        decrypt_small(&id, &vector("caller.age"))
            .unwrap()
            .expose_secret()
            .as_slice(),
        CALLER.as_bytes()
    );
}

#[test]
fn caller_hash_vector() {
    let sealed = hex(HASH_KEY_SEALED);
    assert_eq!(
        seal_independently(
            &hex(MASTER_KEY),
            &sealed[1..25],
            HASH_KEY_CONTEXT,
            &hex(HASH_KEY)
        ),
        sealed
    );
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&hex(HASH_KEY)).unwrap();
    mac.update(CALLER.as_bytes());
    assert_eq!(mac.finalize().into_bytes().as_slice(), hex(CALLER_HASH));

    let dir = tempfile::tempdir().unwrap();
    let kp = KeyProvider::from_file(&key_file(&dir, "master-key.txt"), None).unwrap();
    let key = callvault_crypto::CallerHashKey::open(&kp, "acme", &sealed).unwrap();
    assert_eq!(key.hash(CALLER).as_slice(), hex(CALLER_HASH));
}

#[test]
fn passphrase_sealed_key_file_vector() {
    let file = String::from_utf8(vector("master-key-sealed.txt")).unwrap();
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "callvault-master-key-v1-argon2id");
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(b64.decode(lines[1]).unwrap(), hex(KDF_SALT));
    assert_eq!(b64.decode(lines[2]).unwrap(), hex(MASTER_SEALED));

    // argon2id, m = 65536 KiB, t = 3, p = 1, 32-byte output.
    let params = argon2::Params::new(65_536, 3, 1, Some(32)).unwrap();
    let mut kek = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(PASSPHRASE.as_bytes(), &hex(KDF_SALT), &mut kek)
        .unwrap();
    assert_eq!(kek.as_slice(), hex(KEK));
    let sealed = hex(MASTER_SEALED);
    assert_eq!(
        seal_independently(
            &kek,
            &sealed[1..25],
            "callvault-master-key-v1",
            &hex(MASTER_KEY)
        ),
        sealed
    );

    // This crate unseals it to the same master key: it opens the sealed identity vector.
    let dir = tempfile::tempdir().unwrap();
    let path = key_file(&dir, "master-key-sealed.txt");
    let kp = KeyProvider::from_file(&path, Some(&SecretString::from(PASSPHRASE))).unwrap();
    let opened = kp
        .open(
            &SealContext::tenant_identity("acme", 1),
            &hex(IDENTITY_SEALED),
        )
        .unwrap();
    assert_eq!(
        opened.expose_secret().as_slice(),
        text("identity.txt").as_bytes()
    );
    assert!(KeyProvider::from_file(&path, Some(&SecretString::from("wrong"))).is_err());
}

#[test]
fn live_journal_vector() {
    let key = hex(JOURNAL_KEY);
    // The wrapped key is a standard age file to the vector recipient.
    assert_eq!(
        age_decrypt(&vector_identity(), &vector("journal-key.age")).unwrap(),
        key
    );
    // The sealed chunk, independently.
    let aad = format!("callvault/live-chunk/v1/{LIVE_CALL}/7");
    let plaintext = vector("live-chunk.plaintext");
    assert_eq!(
        seal_independently(&key, &hex(LIVE_NONCE), &aad, &plaintext),
        hex(LIVE_SEALED)
    );
    // Through this crate's API, from the sealed tenant identity down to the chunk.
    let dir = tempfile::tempdir().unwrap();
    let kp = KeyProvider::from_file(&key_file(&dir, "master-key.txt"), None).unwrap();
    let id = TenantIdentity::open(&kp, "acme", 1, &hex(IDENTITY_SEALED)).unwrap();
    let jk = JournalKey::unwrap(&id, &vector("journal-key.age")).unwrap();
    let opened = jk.open_chunk(LIVE_CALL, 7, &hex(LIVE_SEALED)).unwrap();
    assert_eq!(opened.expose_secret().as_slice(), plaintext.as_slice());
    assert!(jk.open_chunk(LIVE_CALL, 8, &hex(LIVE_SEALED)).is_err());
}
