//! Structural checks for uploaded recordings, and G.711 helpers for live telephony audio.
//!
//! The server stores only media it has verified to be what the uploader claimed: [`probe`] and
//! [`probe_as`] walk a whole WAV, MP3 or Ogg Opus file and refuse anything malformed, truncated
//! or of an unsupported kind with a [`MediaError`] that tells the uploader what to fix.
//!
//! This crate is pure parsing over byte slices: it does no I/O, decodes no compressed audio,
//! allocates little beyond what it returns, and must never panic on any input (a test feeds it
//! every truncation and thousands of mutations of valid files). All sizes read from a file go
//! through checked or saturating arithmetic.
#![forbid(unsafe_code)]

mod error;
pub mod g711;
mod mp3;
mod ogg;
pub mod peaks;
pub mod wav;

#[cfg(any(test, feature = "testgen"))]
pub mod testgen;

#[cfg(test)]
mod tests;

use std::ops::Range;

pub use error::MediaError;

/// The file formats callvault accepts for finished recordings.
///
/// Kept deliberately small: every format added here is another parser exposed to uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// RIFF/WAVE holding 16-bit PCM, µ-law or A-law.
    Wav,
    /// MPEG-1/2/2.5 Layer III elementary stream, optionally with ID3 tags.
    Mp3,
    /// Opus in an Ogg container (RFC 7845), single logical stream.
    OggOpus,
}

impl Container {
    /// The `Content-Type` to serve the stored recording with, so players pick the right decoder.
    pub fn content_type(self) -> &'static str {
        match self {
            Container::Wav => "audio/wav",
            Container::Mp3 => "audio/mpeg",
            Container::OggOpus => "audio/ogg",
        }
    }

    /// Stable lowercase name used in the API and in the metadata store; inverse of [`Container::parse`].
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Wav => "wav",
            Container::Mp3 => "mp3",
            Container::OggOpus => "ogg_opus",
        }
    }

    /// Parses the stable name produced by [`Container::as_str`] (exact match), so a stored or
    /// declared format never needs re-checking once it is a `Container`.
    pub fn parse(s: &str) -> Option<Self> {
        [Container::Wav, Container::Mp3, Container::OggOpus]
            .into_iter()
            .find(|c| c.as_str() == s)
    }

    /// Human name used in error messages.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Container::Wav => "WAV",
            Container::Mp3 => "MP3",
            Container::OggOpus => "Ogg Opus",
        }
    }
}

/// The audio coding inside the container, recorded so playback and export know what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Linear 16-bit little-endian PCM (WAV only).
    Pcm16,
    /// G.711 µ-law, 8 bits per sample (WAV only).
    Mulaw,
    /// G.711 A-law, 8 bits per sample (WAV only).
    Alaw,
    /// MPEG Layer III.
    Mp3,
    /// Opus.
    Opus,
}

impl Codec {
    /// Stable lowercase name used in the API and in the metadata store; inverse of [`Codec::parse`].
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Pcm16 => "pcm16",
            Codec::Mulaw => "mulaw",
            Codec::Alaw => "alaw",
            Codec::Mp3 => "mp3",
            Codec::Opus => "opus",
        }
    }

    /// Parses the stable name produced by [`Codec::as_str`] (exact match).
    pub fn parse(s: &str) -> Option<Self> {
        [
            Codec::Pcm16,
            Codec::Mulaw,
            Codec::Alaw,
            Codec::Mp3,
            Codec::Opus,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// What a successful probe established about a recording; stored next to the encrypted blob so
/// listings and retention never need to decrypt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// The container the bytes really are (detected from magic bytes, not from the upload's claim).
    pub container: Container,
    /// The codec inside the container.
    pub codec: Codec,
    /// 1 (mono) or 2 (stereo); anything else is rejected.
    pub channels: u16,
    /// Samples per second per channel. Always 48000 for Opus, which decodes at 48 kHz whatever
    /// input rate the encoder noted.
    pub sample_rate: u32,
    /// Playable duration, rounded down to whole milliseconds.
    pub duration_ms: u64,
    /// WAV only: byte range of the sample data inside the file, so the samples can be sliced or
    /// re-wrapped without re-parsing. `None` for compressed containers.
    pub data: Option<Range<u64>>,
}

/// Detects the container from its magic bytes and fully validates the file.
///
/// Use this when the uploader did not say what they sent; prefer [`probe_as`] when they did, so
/// a mislabelled upload is refused rather than silently stored under another type.
pub fn probe(bytes: &[u8]) -> Result<MediaInfo, MediaError> {
    if bytes.is_empty() {
        return Err(MediaError::Empty);
    }
    match detect(bytes) {
        Some(container) => parse(bytes, container),
        None => Err(MediaError::UnknownFormat {
            magic: hex_prefix(bytes),
        }),
    }
}

/// Validates that `bytes` are a well-formed file of the `claimed` container.
///
/// The claim comes from the uploader (content type or form field); a file whose magic bytes say
/// otherwise is refused with [`MediaError::ContainerMismatch`] before any deeper parsing.
pub fn probe_as(bytes: &[u8], claimed: Container) -> Result<MediaInfo, MediaError> {
    if bytes.is_empty() {
        return Err(MediaError::Empty);
    }
    let detected = detect(bytes);
    if detected != Some(claimed) {
        return Err(MediaError::ContainerMismatch { claimed, detected });
    }
    parse(bytes, claimed)
}

fn parse(bytes: &[u8], container: Container) -> Result<MediaInfo, MediaError> {
    match container {
        Container::Wav => wav::parse(bytes),
        Container::Mp3 => mp3::parse(bytes),
        Container::OggOpus => ogg::parse(bytes),
    }
}

/// Magic-byte sniffing only; the chosen parser does all real validation. "RIFF" alone counts
/// as WAV so that a RIFF file of another form (AVI, RMID) gets the specific WAV error.
fn detect(bytes: &[u8]) -> Option<Container> {
    if bytes.starts_with(b"RIFF") {
        Some(Container::Wav)
    } else if bytes.starts_with(b"OggS") {
        Some(Container::OggOpus)
    } else if bytes.starts_with(b"ID3") {
        Some(Container::Mp3)
    } else {
        match bytes {
            [0xFF, b1, ..] if b1 & 0xE0 == 0xE0 => Some(Container::Mp3),
            _ => None,
        }
    }
}

/// The first few bytes as hex, so an "unknown format" message shows what was actually sent.
fn hex_prefix(bytes: &[u8]) -> String {
    let mut s = String::new();
    for (i, b) in bytes.iter().take(8).enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Little-endian readers over slices whose length the caller has already checked; they return
/// 0 instead of panicking if that check was ever wrong.
pub(crate) fn le_u16(s: &[u8], at: usize) -> u16 {
    match s.get(at..at.saturating_add(2)) {
        Some(&[a, b]) => u16::from_le_bytes([a, b]),
        _ => 0,
    }
}

pub(crate) fn le_u32(s: &[u8], at: usize) -> u32 {
    match s.get(at..at.saturating_add(4)) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

pub(crate) fn le_u64(s: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    if let Some(src) = s.get(at..at.saturating_add(8)) {
        out.copy_from_slice(src);
    }
    u64::from_le_bytes(out)
}
