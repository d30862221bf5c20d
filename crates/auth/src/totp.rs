//! Time-based one-time passwords (RFC 6238, built on HOTP, RFC 4226) as the second factor.
//!
//! `code` is the general algorithm, kept complete so the RFC test vectors check it. Enrolment
//! and `verify` are fixed to what every authenticator app supports: SHA-1, 6 digits, 30 seconds.
//! Replay protection needs state, which this crate does not keep: `verify` returns the matched
//! time step, the caller stores it and passes it back next time.

use std::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

/// Time step used at enrolment and by `verify`.
pub const STEP_SECS: u64 = 30;
/// Code length used at enrolment and by `verify`.
pub const DIGITS: u32 = 6;
/// Secret length from `TotpSecret::generate`: RFC 4226 recommends 160 bits, the SHA-1 output size.
pub const SECRET_LEN: usize = 20;

/// The HMAC behind the one-time password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name used in `otpauth://` URIs.
    pub fn uri_name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

/// HMAC accepts keys of every length (longer ones are hashed first), so keying cannot fail.
#[expect(
    clippy::expect_used,
    reason = "invariant: HMAC accepts keys of any length"
)]
fn hmac<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut mac =
        <M as KeyInit>::new_from_slice(key).expect("invariant: HMAC accepts keys of any length");
    mac.update(msg);
    Zeroizing::new(mac.finalize().into_bytes().to_vec())
}

/// The TOTP value for `unix_time`: HOTP (RFC 4226) of the counter `unix_time / step_secs`,
/// zero-padded to `digits`.
///
/// A `step_secs` of 0 is treated as 1 rather than dividing by zero. `digits` is clamped to
/// 1..=10: dynamic truncation yields a 31-bit number, which has at most 10 decimal digits
/// (RFC 4226 requires at least 6 for real use).
pub fn code(secret: &[u8], unix_time: u64, step_secs: u64, digits: u32, alg: Algorithm) -> String {
    let counter = unix_time / step_secs.max(1);
    hotp(secret, counter, digits, alg)
}

fn hotp(secret: &[u8], counter: u64, digits: u32, alg: Algorithm) -> String {
    let msg = counter.to_be_bytes();
    let mac = match alg {
        Algorithm::Sha1 => hmac::<Hmac<sha1::Sha1>>(secret, &msg),
        Algorithm::Sha256 => hmac::<Hmac<sha2::Sha256>>(secret, &msg),
        Algorithm::Sha512 => hmac::<Hmac<sha2::Sha512>>(secret, &msg),
    };
    // Dynamic truncation (RFC 4226 5.3). The MAC is at least 20 bytes and the offset at most 15,
    // so the four bytes are always in range.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    let digits = digits.clamp(1, 10);
    let value = u64::from(binary) % 10u64.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

/// A TOTP shared secret. Wiped on drop, never printed by `Debug`.
pub struct TotpSecret(SecretSlice<u8>);

impl TotpSecret {
    /// 20 random bytes from the OS, the size RFC 4226 recommends for SHA-1.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_LEN];
        OsRng.fill_bytes(&mut bytes);
        Self(SecretSlice::from(bytes))
    }

    /// Wraps a secret loaded from storage (after decryption; the caller owns that).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretSlice::from(bytes))
    }

    /// The raw bytes, to encrypt for storage.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// RFC 4648 base32 without padding, uppercase: the form authenticator apps accept for
    /// manual entry.
    pub fn to_base32(&self) -> SecretString {
        // `encode` allocates exactly the output length, so `SecretString::from` does not
        // reallocate and leave a copy behind.
        SecretString::from(data_encoding::BASE32_NOPAD.encode(self.expose_bytes()))
    }

    /// The `otpauth://` URI to show as a QR code at enrolment (Google Authenticator's key URI
    /// format). Issuer and account are percent-encoded, colons included, so neither can break
    /// the `Issuer:account` label.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> SecretString {
        let issuer = percent_encode(issuer);
        let account = percent_encode(account);
        let secret = self.to_base32();
        let mut uri = Zeroizing::new(String::new());
        uri.push_str("otpauth://totp/");
        uri.push_str(&issuer);
        uri.push(':');
        uri.push_str(&account);
        uri.push_str("?secret=");
        uri.push_str(secret.expose_secret());
        uri.push_str("&issuer=");
        uri.push_str(&issuer);
        uri.push_str("&algorithm=");
        uri.push_str(Algorithm::Sha1.uri_name());
        uri.push_str(&format!("&digits={DIGITS}&period={STEP_SECS}"));
        crate::seal(&uri)
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([REDACTED])")
    }
}

/// Percent-encodes everything except RFC 3986 unreserved characters (space becomes `%20`).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Checks a 6-digit SHA-1 code against the steps before, at and after `unix_time` (one step of
/// clock skew either way) and returns the matched step.
///
/// The caller must persist the returned step and pass it as `last_used_step` next time: a code
/// whose step is not after it is refused, so an observed code cannot be replayed, nor an older
/// one used after a newer. Input that is not exactly six ASCII digits is refused outright (strip
/// any spaces the user typed before calling). Every candidate is computed and compared in
/// constant time, so timing reveals neither which step matched nor how much of the code did.
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    unix_time: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = unix_time / STEP_SECS;
    let candidates = [now.checked_sub(1), Some(now), now.checked_add(1)];
    let mut matched = 0u64;
    let mut found = Choice::from(0);
    for step in candidates.into_iter().flatten() {
        let expected = Zeroizing::new(hotp(secret.expose_bytes(), step, DIGITS, Algorithm::Sha1));
        let fresh = Choice::from(u8::from(last_used_step.is_none_or(|last| step > last)));
        let hit = expected.as_bytes().ct_eq(code.as_bytes()) & fresh;
        // Ascending order: if several steps match, the latest wins.
        matched.conditional_assign(&step, hit);
        found |= hit;
    }
    bool::from(found).then_some(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED20: &[u8] = b"12345678901234567890";
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    #[test]
    fn rfc6238_appendix_b() {
        // (time, SHA1, SHA256, SHA512), 8 digits, 30 s steps.
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, sha1, sha256, sha512) in vectors {
            assert_eq!(code(SEED20, t, 30, 8, Algorithm::Sha1), sha1, "SHA1 at {t}");
            assert_eq!(
                code(SEED32, t, 30, 8, Algorithm::Sha256),
                sha256,
                "SHA256 at {t}"
            );
            assert_eq!(
                code(SEED64, t, 30, 8, Algorithm::Sha512),
                sha512,
                "SHA512 at {t}"
            );
        }
    }

    #[test]
    fn rfc4226_appendix_d() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, want) in (0u64..).zip(expected) {
            assert_eq!(
                code(SEED20, counter * 30, 30, 6, Algorithm::Sha1),
                want,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn code_is_zero_padded_and_tolerates_odd_arguments() {
        // RFC 6238 vector at t=1111111109 starts with a zero.
        assert_eq!(code(SEED20, 1111111109, 30, 8, Algorithm::Sha1).len(), 8);
        assert_eq!(code(SEED20, 59, 0, 6, Algorithm::Sha1).len(), 6);
        assert_eq!(code(SEED20, 59, 30, u32::MAX, Algorithm::Sha1).len(), 10);
        assert_eq!(code(b"", 59, 30, 6, Algorithm::Sha1).len(), 6);
    }

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(SEED20.to_vec())
    }

    /// The 6-digit code for step `step`, computed independently of `verify`.
    fn code_at_step(step: u64) -> String {
        code(SEED20, step * 30, 30, 6, Algorithm::Sha1)
    }

    #[test]
    fn verify_accepts_one_step_of_skew_either_way() {
        let s = rfc_secret();
        let now: u64 = 1_234_567_890;
        let step = now / 30;
        for d in [-1i64, 0, 1] {
            let st = step.checked_add_signed(d).unwrap();
            assert_eq!(
                verify(&s, &code_at_step(st), now, None),
                Some(st),
                "skew {d}"
            );
        }
    }

    #[test]
    fn verify_rejects_two_steps_of_skew() {
        let s = rfc_secret();
        let now = 1_234_567_890;
        let step = now / 30;
        for st in [step - 2, step + 2] {
            let c = code_at_step(st);
            // Guard against a coincidental collision with a neighbouring step's code.
            assert!((step - 1..=step + 1).all(|n| code_at_step(n) != c));
            assert_eq!(verify(&s, &c, now, None), None);
        }
    }

    #[test]
    fn verify_rejects_replay_and_older_steps() {
        let s = rfc_secret();
        let now = 1_234_567_890;
        let step = now / 30;
        let used = verify(&s, &code_at_step(step), now, None).unwrap();
        assert_eq!(verify(&s, &code_at_step(step), now, Some(used)), None);
        assert_eq!(verify(&s, &code_at_step(step), now + 29, Some(used)), None);
        assert_eq!(verify(&s, &code_at_step(step - 1), now, Some(used)), None);
        assert_eq!(
            verify(&s, &code_at_step(step + 1), now, Some(used)),
            Some(step + 1)
        );
    }

    #[test]
    fn verify_rejects_malformed_input() {
        let s = rfc_secret();
        let now = 1_234_567_890;
        let good = code_at_step(now / 30);
        assert_eq!(verify(&s, &good, now, None), Some(now / 30));
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "12 345",
            " 123456",
            "١٢٣٤٥٦",
            "+12345",
            "-12345",
            &format!("{good} "),
            &code(SEED20, now, 30, 8, Algorithm::Sha1),
        ] {
            assert_eq!(verify(&s, bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn verify_near_epoch_has_no_previous_step() {
        let s = rfc_secret();
        assert_eq!(verify(&s, &code_at_step(0), 5, None), Some(0));
        assert_eq!(verify(&s, &code_at_step(1), 5, None), Some(1));
        assert_eq!(verify(&s, &code_at_step(0), u64::MAX, None), None);
    }

    #[test]
    fn generated_secret_and_encodings() {
        let s = TotpSecret::generate();
        assert_eq!(s.expose_bytes().len(), 20);
        assert_ne!(s.expose_bytes(), TotpSecret::generate().expose_bytes());
        let b32 = s.to_base32();
        assert_eq!(b32.expose_secret().len(), 32);
        assert_eq!(
            data_encoding::BASE32_NOPAD
                .decode(b32.expose_secret().as_bytes())
                .unwrap(),
            s.expose_bytes()
        );
        assert_eq!(
            rfc_secret().to_base32().expose_secret(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn otpauth_uri_format() {
        let uri = rfc_secret().otpauth_uri("CallVault Hotline", "nurse:ann@example.org");
        assert_eq!(
            uri.expose_secret(),
            "otpauth://totp/CallVault%20Hotline:nurse%3Aann%40example.org\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=CallVault%20Hotline\
             &algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(percent_encode("é&?=/"), "%C3%A9%26%3F%3D%2F");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = rfc_secret();
        let b32 = s.to_base32();
        let uri = s.otpauth_uri("X", "y");
        for shown in [format!("{s:?}"), format!("{b32:?}"), format!("{uri:?}")] {
            assert!(!shown.contains("GEZDG"), "{shown}");
            assert!(!shown.contains("1234567890"), "{shown}");
        }
    }
}
