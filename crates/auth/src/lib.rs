//! Credentials, computed: password hashing and policy, TOTP second factors, bearer tokens and
//! the lockout schedule.
//!
//! This crate only computes. It never stores, looks up or logs anything: the server decides where
//! a hash, a TOTP secret, a last-used time step or a failure count lives, and hands them back in.
//! Keeping I/O out means every rule here is checked by plain unit tests, with the RFC test
//! vectors where one exists.
//!
//! Secrets cross the API only inside `secrecy` types, so they cannot be `Debug`-printed or logged
//! by accident; the caller exposes them deliberately, once, when showing them to the user.
#![forbid(unsafe_code)]

mod error;
pub mod lockout;
pub mod password;
pub mod token;
pub mod totp;

pub use error::{AuthError, PolicyError, TokenFormatError};

/// Re-exported so callers can name secret types without depending on `secrecy` directly.
pub use secrecy::{ExposeSecret, SecretString};

/// Moves `s` into a `SecretString` without leaving an unzeroized copy behind.
///
/// `SecretString::from(String)` goes through `into_boxed_str`, which reallocates (and abandons
/// the old buffer unwiped) whenever capacity exceeds length. Copying into a buffer of exactly the
/// right capacity avoids that; the caller keeps its working buffer in `Zeroizing`.
fn seal(s: &str) -> SecretString {
    let mut exact = String::with_capacity(s.len());
    exact.push_str(s);
    SecretString::from(exact)
}
