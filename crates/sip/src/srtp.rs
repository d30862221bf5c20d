//! SRTP (RFC 3711) for the one suite SIPREC clients offer everywhere:
//! `AES_CM_128_HMAC_SHA1_80` — AES-128 in counter mode, HMAC-SHA1 tag truncated to 80 bits,
//! key derivation rate 0, no MKI. Built only from RustCrypto primitives (`aes`, `ctr`, `hmac`,
//! `sha1`); the construction is RFC 3711's, checked against its Appendix B vectors and a
//! libsrtp packet vector in the tests below.
//!
//! A [`Context`] serves one direction of one SDES key (one `m=` line): it derives the session
//! keys once, and keeps per-SSRC rollover counters and a 64-packet replay window. A packet that
//! fails authentication or replays is an error the caller counts and drops; it never changes
//! the context's state, so a forged packet cannot push the window or the rollover counter.

use aes::Aes128;
use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::rtp;

pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
/// Master key (16) || master salt (14), as carried base64 in `a=crypto … inline:`.
pub const MASTER_LEN: usize = 30;
const TAG_LEN: usize = 10;
const REPLAY_WINDOW: u64 = 64;
/// SSRCs one stream may use over its life (SRCs change SSRC on transfer or failover); past
/// this the least recently seen is forgotten.
const MAX_SSRCS: usize = 8;

type Aes128Ctr = ctr::Ctr128BE<Aes128>;

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SrtpError {
    #[error("not an SRTP packet")]
    Malformed,
    /// One variant for every tag mismatch: nothing about why is revealed.
    #[error("SRTP authentication failed")]
    Authentication,
    #[error("SRTP packet replayed or too old")]
    Replay,
}

#[derive(Zeroize, ZeroizeOnDrop)]
struct SessionKeys {
    cipher: [u8; 16],
    auth: [u8; 20],
    salt: [u8; 14],
}

impl SessionKeys {
    /// RFC 3711 §4.3.1 with key_derivation_rate 0: x = label·2^48 XOR master_salt, the key
    /// stream of AES-CM(master_key, x·2^16) truncated to the wanted length.
    fn derive(master: &[u8; MASTER_LEN]) -> Self {
        let (key, salt) = master.split_at(16);
        let prf = |label: u8, out: &mut [u8]| {
            let mut iv = [0u8; 16];
            iv[..14].copy_from_slice(salt);
            iv[7] ^= label;
            let mut cipher = Aes128Ctr::new(key.into(), (&iv).into());
            out.fill(0);
            cipher.apply_keystream(out);
            iv.zeroize();
        };
        let mut keys = Self {
            cipher: [0; 16],
            auth: [0; 20],
            salt: [0; 14],
        };
        prf(0x00, &mut keys.cipher);
        prf(0x01, &mut keys.auth);
        prf(0x02, &mut keys.salt);
        keys
    }

    /// RFC 3711 §4.1.1: IV = (k_s·2^16) XOR (SSRC·2^64) XOR (i·2^16).
    fn apply_keystream(&self, ssrc: u32, index: u64, payload: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        Aes128Ctr::new((&self.cipher).into(), (&iv).into()).apply_keystream(payload);
    }

    fn tag(&self, authenticated: &[u8], roc: u32) -> Hmac<Sha1> {
        // invariant: HMAC takes keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha1>::new_from_slice(&self.auth).expect("invariant: any key length");
        mac.update(authenticated);
        mac.update(&roc.to_be_bytes());
        mac
    }
}

#[derive(Clone, Copy)]
struct SsrcState {
    ssrc: u32,
    /// Highest index accepted so far (ROC·2^16 + SEQ).
    highest: u64,
    /// Bit n set: index `highest - n` was accepted.
    window: u64,
    last_used: u64,
}

pub struct Context {
    keys: SessionKeys,
    ssrcs: Vec<SsrcState>,
    clock: u64,
}

impl Context {
    pub fn new(master: &[u8; MASTER_LEN]) -> Self {
        Self {
            keys: SessionKeys::derive(master),
            ssrcs: Vec::new(),
            clock: 0,
        }
    }

    /// From the bytes of an `a=crypto` inline key.
    pub fn from_key_salt(key_salt: &[u8]) -> Option<Self> {
        let master: &[u8; MASTER_LEN] = key_salt.try_into().ok()?;
        Some(Self::new(master))
    }

    /// Verifies and decrypts one SRTP packet into the plain RTP packet it protected.
    pub fn unprotect(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let header = rtp::header(packet).map_err(|_| SrtpError::Malformed)?;
        if packet.len() < header.header_len + TAG_LEN {
            return Err(SrtpError::Malformed);
        }
        let (authenticated, tag) = packet.split_at(packet.len() - TAG_LEN);
        let state = self.ssrcs.iter().find(|s| s.ssrc == header.ssrc).copied();
        let index = match state {
            Some(s) => estimate_index(s.highest, header.sequence),
            None => u64::from(header.sequence),
        };
        let roc = (index >> 16) as u32;
        self.keys
            .tag(authenticated, roc)
            .verify_truncated_left(tag)
            .map_err(|_| SrtpError::Authentication)?;
        if let Some(s) = state
            && index <= s.highest
        {
            let age = s.highest - index;
            if age >= REPLAY_WINDOW || s.window & (1 << age) != 0 {
                return Err(SrtpError::Replay);
            }
        }
        let mut plain = authenticated.to_vec();
        self.keys
            .apply_keystream(header.ssrc, index, &mut plain[header.header_len..]);
        self.accept(header.ssrc, index);
        Ok(plain)
    }

    /// Encrypts and authenticates one RTP packet (the sending side, for test clients).
    pub fn protect(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let header = rtp::header(packet).map_err(|_| SrtpError::Malformed)?;
        let index = match self.ssrcs.iter().find(|s| s.ssrc == header.ssrc) {
            Some(s) => estimate_index(s.highest, header.sequence),
            None => u64::from(header.sequence),
        };
        let mut out = packet.to_vec();
        self.keys
            .apply_keystream(header.ssrc, index, &mut out[header.header_len..]);
        let tag = self
            .keys
            .tag(&out, (index >> 16) as u32)
            .finalize()
            .into_bytes();
        out.extend_from_slice(&tag[..TAG_LEN]);
        self.accept(header.ssrc, index);
        Ok(out)
    }

    fn accept(&mut self, ssrc: u32, index: u64) {
        self.clock += 1;
        let clock = self.clock;
        match self.ssrcs.iter_mut().find(|s| s.ssrc == ssrc) {
            Some(s) if index > s.highest => {
                let shift = index - s.highest;
                s.window = if shift >= REPLAY_WINDOW {
                    0
                } else {
                    s.window << shift
                } | 1;
                s.highest = index;
                s.last_used = clock;
            }
            Some(s) => {
                // Only the sending side gets here with an index older than the window.
                if s.highest - index < REPLAY_WINDOW {
                    s.window |= 1 << (s.highest - index);
                }
                s.last_used = clock;
            }
            None => {
                if self.ssrcs.len() == MAX_SSRCS
                    && let Some(oldest) =
                        (0..self.ssrcs.len()).min_by_key(|&i| self.ssrcs[i].last_used)
                {
                    self.ssrcs.swap_remove(oldest);
                }
                self.ssrcs.push(SsrcState {
                    ssrc,
                    highest: index,
                    window: 1,
                    last_used: clock,
                });
            }
        }
    }
}

/// RFC 3711 Appendix A: the packet index whose low 16 bits are `seq`, closest to `highest`.
fn estimate_index(highest: u64, seq: u16) -> u64 {
    let roc = highest >> 16;
    let s_l = highest & 0xFFFF;
    let seq = u64::from(seq);
    let v = if s_l < 32_768 {
        if seq > s_l + 32_768 {
            roc.wrapping_sub(1)
        } else {
            roc
        }
    } else if seq + 32_768 < s_l {
        roc + 1
    } else {
        roc
    };
    // An index before the stream's first packet (roc 0 − 1) cannot be valid; it fails the
    // tag check like any other forgery, with the index clamped into range.
    (v & 0xFFFF_FFFF) << 16 | seq
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap_or_default()
    }

    fn master() -> [u8; MASTER_LEN] {
        let bytes = h("E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6");
        bytes.try_into().unwrap_or([0; MASTER_LEN])
    }

    /// RFC 3711 Appendix B.3.
    #[test]
    fn key_derivation_matches_rfc3711_b3() {
        let keys = SessionKeys::derive(&master());
        assert_eq!(keys.cipher.to_vec(), h("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(keys.salt.to_vec(), h("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(
            keys.auth.to_vec(),
            h("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
    }

    /// RFC 3711 Appendix B.2: the AES-CM key stream for SSRC 0, index 0.
    #[test]
    fn keystream_matches_rfc3711_b2() {
        let keys = SessionKeys {
            cipher: h("2B7E151628AED2A6ABF7158809CF4F3C")
                .try_into()
                .unwrap_or([0; 16]),
            auth: [0; 20],
            salt: h("F0F1F2F3F4F5F6F7F8F9FAFBFCFD")
                .try_into()
                .unwrap_or([0; 14]),
        };
        let mut stream = [0u8; 48];
        keys.apply_keystream(0, 0, &mut stream);
        assert_eq!(
            stream.to_vec(),
            h(
                "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0"
            )
        );
    }

    /// The packet vector libsrtp's test driver uses for this suite (same master key as B.3).
    const PLAIN: &str = "800f1234decafbadcafebabe abababababababababababababababab";
    const PROTECTED: &str =
        "800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb";

    #[test]
    fn protects_and_unprotects_the_libsrtp_vector() {
        assert_eq!(Context::new(&master()).protect(&h(PLAIN)), Ok(h(PROTECTED)));
        assert_eq!(
            Context::new(&master()).unprotect(&h(PROTECTED)),
            Ok(h(PLAIN))
        );
    }

    #[test]
    fn a_flipped_bit_anywhere_fails_authentication_and_changes_nothing() {
        let good = h(PROTECTED);
        let mut ctx = Context::new(&master());
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            let result = ctx.unprotect(&bad);
            // Flipping the version bits makes it not RTP at all.
            assert!(
                matches!(
                    result,
                    Err(SrtpError::Authentication | SrtpError::Malformed)
                ),
                "byte {i}: {result:?}"
            );
        }
        assert_eq!(
            ctx.unprotect(&good),
            Ok(h(PLAIN)),
            "forgeries must not disturb the context"
        );
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = h("8000000000000000cafebabe");
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0xD5; 160]);
        p
    }

    #[test]
    fn replays_are_refused_and_reordering_within_the_window_is_not() {
        let mut tx = Context::new(&master());
        let mut rx = Context::new(&master());
        let packets: Vec<Vec<u8>> = (1..=100)
            .map(|s| tx.protect(&rtp(s)).unwrap_or_default())
            .collect();
        assert!(rx.unprotect(&packets[10]).is_ok());
        assert!(rx.unprotect(&packets[12]).is_ok());
        assert!(
            rx.unprotect(&packets[11]).is_ok(),
            "late but inside the window"
        );
        assert_eq!(rx.unprotect(&packets[11]), Err(SrtpError::Replay));
        assert!(rx.unprotect(&packets[99]).is_ok());
        assert_eq!(
            rx.unprotect(&packets[20]),
            Err(SrtpError::Replay),
            "older than the window"
        );
    }

    #[test]
    fn the_rollover_counter_follows_sequence_wrap() {
        let mut tx = Context::new(&master());
        let mut rx = Context::new(&master());
        for seq in (65_500..=u16::MAX).chain(0..50) {
            let plain = rtp(seq);
            let protected = tx.protect(&plain).unwrap_or_default();
            assert_eq!(rx.unprotect(&protected), Ok(plain), "seq {seq}");
        }
    }
}
