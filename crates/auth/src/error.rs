//! One error enum per concern, each message saying what was wrong and what to do. None of them
//! ever carries the password, code or token that was presented.

/// Failures of password hashing and verification. A wrong password is not an error
/// (`verify` returns `Ok(false)`); these mean the stored data or the hasher itself is broken.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The stored PHC string could not be parsed or names parameters we cannot use.
    #[error(
        "the stored password hash is malformed ({0}): reset this user's password to replace it"
    )]
    MalformedHash(String),
    /// argon2 refused to hash; with fixed, valid parameters this means a bug or no memory.
    #[error("password hashing failed ({0}): this is a bug, or the host is out of memory")]
    Hashing(String),
}

/// Why a new password was refused. Each message tells the user what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "the password is too short ({actual} characters): use at least {min}; \
         a few unrelated words make a long password easy to remember"
    )]
    TooShort { min: usize, actual: usize },
    #[error("the password is too long ({actual} bytes): use at most {max} bytes")]
    TooLong { max: usize, actual: usize },
    #[error("the password contains the username: choose one that does not")]
    ContainsUsername,
    #[error(
        "the password uses only {distinct} different characters: \
         use at least {min} different characters"
    )]
    TooRepetitive { min: usize, distinct: usize },
    #[error(
        "the password is on the list of commonly used passwords: choose something less predictable"
    )]
    Common,
}

/// Why a presented bearer token (or a stored token hash) was refused before any lookup.
/// Messages never echo the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error(
        "the token does not start with `{expected}`: this place expects a {kind} token; \
         check that the right token was copied"
    )]
    WrongPrefix {
        expected: &'static str,
        kind: &'static str,
    },
    #[error(
        "the token has {actual} characters but should have {expected}: \
         copy the whole token again, without spaces or line breaks"
    )]
    WrongLength { expected: usize, actual: usize },
    #[error(
        "the token contains characters other than lowercase letters and the digits 2-7: \
         copy the whole token again"
    )]
    BadCharacter,
    #[error("a stored token hash must be 64 hexadecimal digits: the token table is corrupt")]
    BadHashHex,
}
