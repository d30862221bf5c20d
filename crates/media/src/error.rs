//! Every way an upload can be refused. Each variant is one kind of problem, and its message is
//! written for the uploader: what was wrong, and where possible what to send instead. Offsets are
//! byte offsets from the start of the file so a support engineer can look at the exact spot.

use crate::{Codec, Container};

/// Why a recording was refused.
///
/// Messages are safe to show to the uploader: they describe only the file's structure, never
/// its audio content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    // ----- any container -----
    /// Zero bytes were uploaded.
    #[error("the upload is empty; send the finished recording file (WAV, MP3 or Ogg Opus)")]
    Empty,
    /// The magic bytes match none of the accepted containers.
    #[error(
        "unrecognised file format (first bytes: {magic}); accepted formats are WAV (RIFF/WAVE), MP3 and Ogg Opus"
    )]
    UnknownFormat { magic: String },
    /// The uploader declared one container but the bytes are another (or none we know).
    #[error(
        "the upload was declared as {} but {}; declare the correct format or re-export the recording",
        .claimed.label(),
        match .detected { Some(c) => format!("its content is {}", c.label()), None => "its content is not a recognised audio format".to_owned() }
    )]
    ContainerMismatch {
        claimed: Container,
        detected: Option<Container>,
    },
    /// Only mono and stereo recordings are stored.
    #[error(
        "{} file has {channels} channels; only mono (1) and stereo (2) recordings are accepted",
        .container.label()
    )]
    UnsupportedChannels { container: Container, channels: u16 },

    // ----- WAV -----
    /// Fewer than 12 bytes: not even the RIFF header is complete.
    #[error(
        "WAV file is only {len} bytes long and ends inside its RIFF header; the upload is truncated"
    )]
    WavHeaderTruncated { len: usize },
    /// A RIFF file whose form type is not WAVE (e.g. AVI).
    #[error("RIFF file has form type {form:?}, not \"WAVE\"; only WAV audio is accepted")]
    WavNotWave { form: String },
    /// The RIFF size field claims more bytes than were uploaded.
    #[error(
        "RIFF header declares {declared} bytes but the file has {actual}; the upload is truncated"
    )]
    WavRiffSizeExceedsFile { declared: u64, actual: u64 },
    /// A non-data chunk's header or body runs past the end of the file.
    #[error(
        "WAV chunk {chunk:?} at byte {offset} runs past the end of the file; the upload is truncated"
    )]
    WavChunkTruncated { chunk: String, offset: u64 },
    /// The fmt chunk is too small for the fields its format needs.
    #[error("WAV fmt chunk is {len} bytes; this format needs at least {needed}")]
    WavFmtTooShort { len: u32, needed: u32 },
    /// A chunk that must appear once appears twice.
    #[error("WAV file has more than one {chunk:?} chunk; exactly one is allowed")]
    WavDuplicateChunk { chunk: &'static str },
    /// The data chunk comes before the fmt chunk describing it.
    #[error("WAV data chunk appears before the fmt chunk; the fmt chunk must come first")]
    WavDataBeforeFmt,
    /// No fmt chunk at all.
    #[error("WAV file has no fmt chunk, so its audio format is unknown")]
    WavMissingFmt,
    /// No data chunk at all.
    #[error("WAV file has no data chunk; it contains no audio")]
    WavMissingData,
    /// A format tag other than PCM, µ-law, A-law or EXTENSIBLE wrapping one of them.
    #[error(
        "WAV fmt chunk declares format tag 0x{tag:04x}{}; only 16-bit PCM, µ-law and A-law are accepted",
        crate::wav::format_tag_name(*.tag).map(|n| format!(" ({n})")).unwrap_or_default()
    )]
    WavUnsupportedFormat { tag: u16 },
    /// WAVE_FORMAT_EXTENSIBLE with a subformat GUID we do not accept.
    #[error(
        "WAV fmt chunk is WAVE_FORMAT_EXTENSIBLE with subformat {guid}; only 16-bit PCM, µ-law and A-law are accepted"
    )]
    WavUnsupportedSubformat { guid: String },
    /// Right format, wrong sample width.
    #[error(
        "WAV fmt chunk declares {bits}-bit {format}; only 16-bit PCM, µ-law and A-law are accepted"
    )]
    WavBitsPerSample { format: &'static str, bits: u16 },
    /// Outside the range telephony and wideband recorders produce.
    #[error("WAV sample rate {rate} Hz is not accepted; use a rate from 8000 to 48000 Hz")]
    WavSampleRate { rate: u32 },
    /// block_align or byte_rate disagree with channels × sample width × rate.
    #[error(
        "WAV fmt chunk {field} is {declared} but channels, sample width and rate imply {expected}"
    )]
    WavInconsistentFmt {
        field: &'static str,
        declared: u32,
        expected: u64,
    },
    /// The data chunk claims more sample bytes than the file holds.
    #[error(
        "WAV data chunk declares {declared} bytes but only {available} are present; the upload is truncated"
    )]
    WavDataTruncated { declared: u64, available: u64 },
    /// The data chunk ends in the middle of a sample frame.
    #[error(
        "WAV data chunk is {len} bytes, not a whole number of {block_align}-byte sample frames"
    )]
    WavPartialFrame { len: u64, block_align: u16 },
    /// `wav::try_header` was asked for a codec WAV cannot carry here.
    #[error("a WAV header can describe pcm16, mulaw or alaw audio, not {}", .codec.as_str())]
    WavHeaderCodec { codec: Codec },
    /// `wav::try_header` was asked for more data than a RIFF size field can describe.
    #[error("{data_len} bytes of samples do not fit in a WAV file (RIFF sizes are 32-bit)")]
    WavTooLarge { data_len: u64 },

    // ----- MP3 -----
    /// The ID3v2 header at the start of the file is malformed.
    #[error("MP3 file starts with a malformed ID3v2 tag ({reason})")]
    Id3Invalid { reason: &'static str },
    /// The ID3v2 tag claims to be larger than the file.
    #[error(
        "ID3v2 tag declares {declared} bytes but only {available} follow; the upload is truncated"
    )]
    Id3Truncated { declared: u64, available: u64 },
    /// Bytes that are not an MPEG frame where one must start (garbage between frames).
    #[error(
        "expected an MPEG audio frame header at byte {offset} but found other data; the MP3 stream is corrupt or has junk between frames"
    )]
    Mp3ExpectedFrame { offset: u64 },
    /// An APE tag; we accept only ID3 tags.
    #[error("MP3 file has an APE tag at byte {offset}; remove it (ID3 tags are accepted)")]
    Mp3ApeTag { offset: u64 },
    /// Layer I/II or reserved layer bits.
    #[error(
        "MPEG frame at byte {offset} is {layer}; only Layer III (MP3) is accepted{}",
        if *.layer == "reserved layer bits" { " (AAC/ADTS files look like this)" } else { "" }
    )]
    Mp3UnsupportedLayer { offset: u64, layer: &'static str },
    /// A header field holds a value the standard reserves.
    #[error("MPEG frame header at byte {offset} has a reserved {field}")]
    Mp3ReservedField { offset: u64, field: &'static str },
    /// Free-format bitrate: frame boundaries cannot be verified from headers alone.
    #[error(
        "MPEG frame at byte {offset} uses free-format bitrate, which is not accepted; re-encode with a standard bitrate"
    )]
    Mp3FreeFormat { offset: u64 },
    /// The last frame is cut short.
    #[error(
        "MPEG frame at byte {offset} needs {frame_len} bytes but only {available} remain; the upload is truncated"
    )]
    Mp3TruncatedFrame {
        offset: u64,
        frame_len: u64,
        available: u64,
    },
    /// Fewer than two frames: too little to be a recording, and too little to trust the sync.
    #[error("MP3 stream has {frames} audio frame(s); at least 2 are required")]
    Mp3TooFewFrames { frames: u64 },
    /// A frame whose sample rate or mono/stereo class differs from the first frame.
    #[error(
        "MPEG frame at byte {offset} changes the {what} mid-stream; the file is spliced or corrupt"
    )]
    Mp3InconsistentFrames { offset: u64, what: &'static str },

    // ----- Ogg -----
    /// No "OggS" where a page must start.
    #[error("expected an Ogg page at byte {offset} but found other data; the file is corrupt")]
    OggExpectedPage { offset: u64 },
    /// Ogg stream structure version other than 0.
    #[error(
        "Ogg page at byte {offset} has stream structure version {version}; only version 0 exists"
    )]
    OggVersion { offset: u64, version: u8 },
    /// A page header, segment table or body runs past the end of the file.
    #[error("Ogg page at byte {offset} runs past the end of the file; the upload is truncated")]
    OggPageTruncated { offset: u64 },
    /// The page checksum does not match: the bytes were altered in transit or on disk.
    #[error(
        "Ogg page at byte {offset} has checksum {stored:08x} but its content gives {computed:08x}; the file is corrupt"
    )]
    OggCrc {
        offset: u64,
        stored: u32,
        computed: u32,
    },
    /// Header-type bits that no Ogg version defines.
    #[error("Ogg page at byte {offset} sets undefined header flags 0x{flags:02x}")]
    OggUnknownFlags { offset: u64, flags: u8 },
    /// More than one logical stream (chained or multiplexed files).
    #[error(
        "Ogg file contains more than one logical stream (serials {first:08x} and {other:08x}); upload a single Opus stream"
    )]
    OggMultipleStreams { first: u32, other: u32 },
    /// A page is missing, duplicated or reordered.
    #[error(
        "Ogg page at byte {offset} has sequence number {found} but {expected} was expected; a page is missing or out of order"
    )]
    OggPageSequence {
        offset: u64,
        expected: u32,
        found: u32,
    },
    /// The first page lacks the beginning-of-stream flag.
    #[error("the first Ogg page is not marked beginning-of-stream")]
    OggFirstPageNotBos,
    /// A later page claims to begin a stream.
    #[error("Ogg page at byte {offset} is marked beginning-of-stream but is not the first page")]
    OggUnexpectedBos { offset: u64 },
    /// The continued-packet flag disagrees with the previous page's lacing.
    #[error(
        "Ogg page at byte {offset} has a continued-packet flag that does not match the previous page"
    )]
    OggContinuation { offset: u64 },
    /// The stream never ends with an end-of-stream page.
    #[error(
        "the last Ogg page is not marked end-of-stream; the upload is truncated or the recording was not finished"
    )]
    OggMissingEos,
    /// Pages after the end-of-stream page.
    #[error("Ogg data continues at byte {offset} after the end-of-stream page")]
    OggDataAfterEos { offset: u64 },
    /// The final packet's lacing says it continues, but there are no more pages.
    #[error("the last Ogg packet is unterminated; the upload is truncated")]
    OggUnterminatedPacket,
    /// A page's granule position is lower than an earlier page's.
    #[error(
        "Ogg page at byte {offset} has granule position {granule}, lower than the previous {previous}"
    )]
    OggGranuleBackwards {
        offset: u64,
        previous: u64,
        granule: u64,
    },
    /// The Ogg stream carries something other than Opus (Vorbis, FLAC, Speex…).
    #[error(
        "the Ogg stream does not carry Opus (its first packet is not OpusHead); only Ogg Opus is accepted"
    )]
    OggNotOpus,
    /// OpusHead shorter than its 19 fixed bytes.
    #[error("OpusHead packet is {len} bytes; at least 19 are required")]
    OpusHeadTooShort { len: usize },
    /// An OpusHead version we do not accept.
    #[error("OpusHead declares version {version}; only version 1 is accepted")]
    OpusVersion { version: u8 },
    /// Channel mapping families other than 0 (surround, ambisonics).
    #[error(
        "OpusHead declares channel mapping family {family}; only family 0 (mono/stereo) is accepted"
    )]
    OpusMappingFamily { family: u8 },
    /// The first page must hold the OpusHead packet and nothing else.
    #[error("the first Ogg page must contain exactly the OpusHead packet")]
    OpusHeadPage,
    /// No OpusTags packet, or a malformed one, as the second packet.
    #[error("the second Ogg Opus packet must be a well-formed OpusTags header ({reason})")]
    OpusTagsInvalid { reason: &'static str },
    /// Headers only: no audio packets.
    #[error("the Ogg Opus stream has headers but no audio packets")]
    OpusNoAudio,
    /// The end-of-stream page does not carry a granule position.
    #[error("the end-of-stream Ogg page has no granule position, so the duration is unknown")]
    OpusEndGranuleMissing,
    /// The final granule position is below the pre-skip, giving a negative duration.
    #[error(
        "the final granule position {granule} is smaller than the pre-skip {pre_skip}; the stream is corrupt"
    )]
    OpusGranuleBeforePreSkip { granule: u64, pre_skip: u16 },
}
