//! Data-driven tests over whole files: generated valid files must probe back to their
//! parameters, each table row of broken input must fail with its named error, and no input at
//! all may panic.

use crate::testgen::{self, OPUS_PRE_SKIP};
use crate::{Codec, Container, MediaError, MediaInfo, ogg, probe, probe_as, wav};

mod broken;

/// The variant name of an error, taken from its `Debug` form, so tables can name the expected
/// variant without constructing its fields.
fn variant(e: &MediaError) -> String {
    format!("{e:?}")
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn expect_err(name: &str, bytes: &[u8], want: &str) {
    match probe(bytes) {
        Ok(info) => panic!("{name}: expected {want}, got Ok({info:?})"),
        Err(e) => assert_eq!(variant(&e), want, "{name}: wrong error ({e})"),
    }
}

// ----- helpers to build and damage files -----

fn le16(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}
fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut c = id.to_vec();
    c.extend_from_slice(&le32(body.len() as u32));
    c.extend_from_slice(body);
    if body.len() % 2 == 1 {
        c.push(0);
    }
    c
}

fn fmt_body(tag: u16, channels: u16, rate: u32, byte_rate: u32, align: u16, bits: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&le16(tag));
    f.extend_from_slice(&le16(channels));
    f.extend_from_slice(&le32(rate));
    f.extend_from_slice(&le32(byte_rate));
    f.extend_from_slice(&le16(align));
    f.extend_from_slice(&le16(bits));
    f
}

fn extensible_body(sub_tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let align = channels * bits / 8;
    let mut f = fmt_body(0xFFFE, channels, rate, rate * u32::from(align), align, bits);
    f.extend_from_slice(&le16(22));
    f.extend_from_slice(&le16(bits));
    f.extend_from_slice(&le32(if channels == 1 { 4 } else { 3 }));
    f.extend_from_slice(&le16(sub_tag));
    f.extend_from_slice(&[
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
    ]);
    f
}

fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut f = b"RIFF".to_vec();
    f.extend_from_slice(&le32(body.len() as u32 + 4));
    f.extend_from_slice(b"WAVE");
    f.extend_from_slice(&body);
    f
}

fn pcm16_fmt(channels: u16, rate: u32) -> Vec<u8> {
    chunk(
        b"fmt ",
        &fmt_body(
            1,
            channels,
            rate,
            rate * 2 * u32::from(channels),
            2 * channels,
            16,
        ),
    )
}

/// Byte ranges of the pages of a (mostly) well-formed Ogg file.
fn ogg_pages(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut pages = Vec::new();
    let mut pos = 0;
    while bytes.get(pos..pos + 4) == Some(b"OggS") {
        let Some(&n) = bytes.get(pos + 26) else { break };
        let Some(lacing) = bytes.get(pos + 27..pos + 27 + usize::from(n)) else {
            break;
        };
        let len = 27 + usize::from(n) + lacing.iter().map(|&l| usize::from(l)).sum::<usize>();
        if pos + len > bytes.len() {
            break;
        }
        pages.push(pos..pos + len);
        pos += len;
    }
    pages
}

/// Recomputes every page checksum, so a deliberate edit is seen by the check it targets rather
/// than by the CRC.
fn recrc(bytes: &mut [u8]) {
    for r in ogg_pages(bytes) {
        let crc = ogg::page_crc(&bytes[r.clone()]);
        bytes[r.start + 22..r.start + 26].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Applies `edit` to a valid Ogg Opus file and fixes the CRCs.
fn ogg_edit(edit: impl FnOnce(&mut Vec<u8>, &[std::ops::Range<usize>])) -> Vec<u8> {
    let mut f = testgen::ogg_opus(60, 2, 7);
    let pages = ogg_pages(&f);
    edit(&mut f, &pages);
    recrc(&mut f);
    f
}

fn mp3_frames(f: &[u8]) -> Vec<usize> {
    // Offsets of frame headers in a testgen file (ID3 tag of known length first).
    let mut at = 10 + 10 + 18;
    let mut offs = Vec::new();
    while at + 4 <= f.len() && f[at] == 0xFF {
        offs.push(at);
        at += if f[at + 2] & 0x02 != 0 { 418 } else { 417 };
    }
    offs
}

// ----- accepted files -----

#[test]
fn generated_wav_probes_back_to_its_parameters() {
    for codec in [Codec::Pcm16, Codec::Mulaw, Codec::Alaw] {
        for channels in [1u16, 2] {
            for (rate, frames) in [
                (8000u32, 8000usize),
                (16000, 12345),
                (44100, 441),
                (48000, 1),
            ] {
                let f = testgen::wav(codec, channels, rate, frames, 42);
                let info = probe_as(&f, Container::Wav).unwrap();
                let width = if codec == Codec::Pcm16 { 2 } else { 1 };
                let data_len = (frames * usize::from(channels) * width) as u64;
                let header_len = if codec == Codec::Pcm16 { 44 } else { 58 };
                assert_eq!(
                    info,
                    MediaInfo {
                        container: Container::Wav,
                        codec,
                        channels,
                        sample_rate: rate,
                        duration_ms: frames as u64 * 1000 / u64::from(rate),
                        data: Some(header_len..header_len + data_len),
                    },
                    "{codec:?} {channels}ch {rate}Hz"
                );
            }
        }
    }
}

#[test]
fn generated_wav_sounds_like_something() {
    for codec in [Codec::Pcm16, Codec::Mulaw, Codec::Alaw] {
        let f = testgen::wav(codec, 1, 8000, 16000, 3);
        let info = probe(&f).unwrap();
        let data = &f[info.data.unwrap().start as usize..];
        let samples: Vec<i16> = match codec {
            Codec::Pcm16 => data
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect(),
            Codec::Mulaw => data
                .iter()
                .map(|&b| crate::g711::ulaw_to_linear(b))
                .collect(),
            _ => data
                .iter()
                .map(|&b| crate::g711::alaw_to_linear(b))
                .collect(),
        };
        let mut longest_run = 1;
        let mut run = 1;
        for w in samples.windows(2) {
            run = if w[0] == w[1] { run + 1 } else { 1 };
            longest_run = longest_run.max(run);
        }
        assert!(longest_run < 16, "{codec:?}: constant run of {longest_run}");
        let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(peak > 2000, "{codec:?}: peak only {peak}");
    }
    // Deterministic in the seed, different across seeds.
    let a = testgen::wav(Codec::Pcm16, 2, 8000, 800, 1);
    assert_eq!(a, testgen::wav(Codec::Pcm16, 2, 8000, 800, 1));
    assert_ne!(a, testgen::wav(Codec::Pcm16, 2, 8000, 800, 2));
}

#[test]
fn wav_header_plus_samples_probes_back() {
    for codec in [Codec::Pcm16, Codec::Mulaw, Codec::Alaw] {
        for channels in [1u16, 2] {
            for rate in [8000u32, 11025, 22050, 32000, 48000] {
                let width = if codec == Codec::Pcm16 { 2 } else { 1 };
                let frames = 1001u32;
                let data_len = frames * u32::from(channels) * width;
                let mut f = wav::header(codec, channels, rate, data_len);
                let header_len = f.len() as u64;
                f.extend((0..data_len).map(|i| (i * 7) as u8));
                let info = probe(&f).unwrap();
                assert_eq!(info.codec, codec);
                assert_eq!(info.channels, channels);
                assert_eq!(info.sample_rate, rate);
                assert_eq!(info.duration_ms, u64::from(frames) * 1000 / u64::from(rate));
                assert_eq!(
                    info.data,
                    Some(header_len..header_len + u64::from(data_len))
                );
                // Odd lengths are valid with and without the trailing pad byte.
                if data_len % 2 == 1 {
                    f.push(0);
                    assert_eq!(probe(&f).unwrap(), info);
                }
            }
        }
    }
    assert!(wav::header(Codec::Opus, 1, 8000, 0).is_empty());
    let e = wav::try_header(Codec::Mp3, 1, 8000, 0).unwrap_err();
    assert_eq!(variant(&e), "WavHeaderCodec");
    let e = wav::try_header(Codec::Pcm16, 1, 8000, 3).unwrap_err();
    assert_eq!(variant(&e), "WavPartialFrame");
    let e = wav::try_header(Codec::Mulaw, 1, 8000, u32::MAX).unwrap_err();
    assert_eq!(variant(&e), "WavTooLarge");
    // An empty recording is still a well-formed file.
    let info = probe(&wav::header(Codec::Alaw, 1, 8000, 0)).unwrap();
    assert_eq!((info.duration_ms, info.data), (0, Some(58..58)));
}

#[test]
fn wav_variants_that_must_be_accepted() {
    let data = chunk(b"data", &[1, 2, 3, 4, 5, 6, 7, 8]);
    let cases: Vec<(&str, Vec<u8>, Codec, u16)> = vec![
        (
            "odd LIST chunk with pad byte before fmt",
            riff(&[chunk(b"LIST", b"INFOabc"), pcm16_fmt(2, 8000), data.clone()]),
            Codec::Pcm16,
            2,
        ),
        (
            "trailing chunk after data",
            riff(&[pcm16_fmt(1, 8000), data.clone(), chunk(b"cue ", &[0; 4])]),
            Codec::Pcm16,
            1,
        ),
        (
            "EXTENSIBLE PCM16",
            riff(&[
                chunk(b"fmt ", &extensible_body(1, 2, 16000, 16)),
                data.clone(),
            ]),
            Codec::Pcm16,
            2,
        ),
        (
            "EXTENSIBLE µ-law",
            riff(&[
                chunk(b"fmt ", &extensible_body(7, 1, 8000, 8)),
                data.clone(),
            ]),
            Codec::Mulaw,
            1,
        ),
        (
            "A-law with 16-byte fmt and no fact",
            riff(&[
                chunk(b"fmt ", &fmt_body(6, 1, 8000, 8000, 1, 8)),
                data.clone(),
            ]),
            Codec::Alaw,
            1,
        ),
    ];
    for (name, f, codec, channels) in cases {
        let info = probe(&f).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((info.codec, info.channels), (codec, channels), "{name}");
    }
}

#[test]
fn generated_mp3_probes_back() {
    for frames in [2usize, 3, 38, 500] {
        let f = testgen::mp3(frames, frames as u64);
        let info = probe_as(&f, Container::Mp3).unwrap();
        assert_eq!(
            info,
            MediaInfo {
                container: Container::Mp3,
                codec: Codec::Mp3,
                channels: 2,
                sample_rate: 44100,
                duration_ms: frames as u64 * 1152 * 1000 / 44100,
                data: None,
            }
        );
    }
    // A 128 kbit/s stream really is 128 kbit/s: 500 frames ≈ 13.06 s ≈ 208 979 bytes of frames.
    let f = testgen::mp3(500, 0);
    assert_eq!(f.len() - 38, 500 * 144 * 128_000 / 44_100);
}

#[test]
fn mp3_variants_that_must_be_accepted() {
    let f = testgen::mp3(5, 1);
    let bare = f[38..].to_vec();
    let mut id3v1 = bare.clone();
    id3v1.extend_from_slice(b"TAG");
    id3v1.resize(id3v1.len() + 125, b' ');
    let mut footer = b"ID3\x04\x00\x10\x00\x00\x00\x00ID3\x04\x00\x10\x00\x00\x00\x00".to_vec();
    footer[10..13].copy_from_slice(b"3DI");
    footer.extend_from_slice(&bare);
    // MPEG-2 Layer III, 64 kbit/s, 22.05 kHz, mono: 72 * 64000 / 22050 = 208 bytes.
    let mut mpeg2 = Vec::new();
    for _ in 0..4 {
        mpeg2.extend_from_slice(&[0xFF, 0xF3, 0x80, 0xC0]);
        mpeg2.resize(mpeg2.len() + 204, 0x55);
    }
    for (name, f, channels, rate, frames) in [
        ("no ID3v2", bare, 2, 44100, 5u64),
        ("ID3v1 trailer", id3v1, 2, 44100, 5),
        ("ID3v2.4 with footer", footer, 2, 44100, 5),
        ("MPEG-2 mono", mpeg2, 1, 22050, 4),
    ] {
        let info = probe(&f).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.channels, channels, "{name}");
        assert_eq!(info.sample_rate, rate, "{name}");
        let spf = if rate == 44100 { 1152 } else { 576 };
        assert_eq!(
            info.duration_ms,
            frames * spf * 1000 / u64::from(rate),
            "{name}"
        );
    }
}

#[test]
fn generated_ogg_opus_probes_back() {
    for channels in [1u16, 2] {
        for packets in [1usize, 2, 50, 400] {
            let f = testgen::ogg_opus(packets, channels, packets as u64);
            let info = probe_as(&f, Container::OggOpus).unwrap();
            assert_eq!(
                info,
                MediaInfo {
                    container: Container::OggOpus,
                    codec: Codec::Opus,
                    channels,
                    sample_rate: 48000,
                    duration_ms: (packets as u64 * 960 - u64::from(OPUS_PRE_SKIP)) * 1000 / 48000,
                    data: None,
                }
            );
        }
    }
    // Large files really do continue packets across pages.
    let f = testgen::ogg_opus(400, 2, 0);
    let continued = ogg_pages(&f)
        .iter()
        .filter(|r| f[r.start + 5] & 1 != 0)
        .count();
    assert!(continued > 0);
}

// ----- refused files -----

#[test]
fn granule_before_pre_skip_is_refused() {
    // One packet of 960 samples, but a pre-skip of 1000.
    let mut f = testgen::ogg_opus(1, 1, 0);
    let pages = ogg_pages(&f);
    f[pages[0].start + 28 + 10..][..2].copy_from_slice(&1000u16.to_le_bytes());
    recrc(&mut f);
    expect_err("pre-skip beyond end", &f, "OpusGranuleBeforePreSkip");
}

#[test]
fn probe_as_refuses_a_mislabelled_upload() {
    let files = [
        (Container::Wav, testgen::wav(Codec::Mulaw, 1, 8000, 80, 1)),
        (Container::Mp3, testgen::mp3(2, 1)),
        (Container::OggOpus, testgen::ogg_opus(2, 1, 1)),
    ];
    for (actual, bytes) in &files {
        for claimed in [Container::Wav, Container::Mp3, Container::OggOpus] {
            let result = probe_as(bytes, claimed);
            if claimed == *actual {
                assert_eq!(result.unwrap().container, claimed);
            } else {
                let e = result.unwrap_err();
                assert_eq!(variant(&e), "ContainerMismatch");
                assert!(e.to_string().contains(actual.label()), "{e}");
            }
        }
    }
    let e = probe_as(b"plain text", Container::Mp3).unwrap_err();
    assert_eq!(variant(&e), "ContainerMismatch");
    assert_eq!(
        e.to_string(),
        "the upload was declared as MP3 but its content is not a recognised audio format; \
         declare the correct format or re-export the recording"
    );
    assert_eq!(
        variant(&probe_as(b"", Container::Wav).unwrap_err()),
        "Empty"
    );
}

#[test]
fn messages_tell_the_uploader_what_was_wrong() {
    let f = riff(&[
        chunk(b"fmt ", &fmt_body(1, 1, 8000, 24000, 3, 24)),
        chunk(b"data", &[0; 3]),
    ]);
    assert_eq!(
        probe(&f).unwrap_err().to_string(),
        "WAV fmt chunk declares 24-bit PCM; only 16-bit PCM, µ-law and A-law are accepted"
    );
    let f = riff(&[
        chunk(b"fmt ", &fmt_body(3, 1, 8000, 32000, 4, 32)),
        chunk(b"data", &[0; 4]),
    ]);
    assert_eq!(
        probe(&f).unwrap_err().to_string(),
        "WAV fmt chunk declares format tag 0x0003 (IEEE float); only 16-bit PCM, µ-law and A-law are accepted"
    );
    assert_eq!(
        probe(&[0x12, 0x34]).unwrap_err().to_string(),
        "unrecognised file format (first bytes: 12 34); accepted formats are WAV (RIFF/WAVE), MP3 and Ogg Opus"
    );
}

#[test]
fn names_round_trip() {
    for c in [Container::Wav, Container::Mp3, Container::OggOpus] {
        assert_eq!(Container::parse(c.as_str()), Some(c));
        assert!(c.content_type().starts_with("audio/"));
    }
    for c in [
        Codec::Pcm16,
        Codec::Mulaw,
        Codec::Alaw,
        Codec::Mp3,
        Codec::Opus,
    ] {
        assert_eq!(Codec::parse(c.as_str()), Some(c));
    }
    assert_eq!(Container::parse("WAV"), None);
    assert_eq!(Codec::parse(""), None);
    assert_eq!(Container::OggOpus.content_type(), "audio/ogg");
    assert_eq!(Container::Mp3.content_type(), "audio/mpeg");
    assert_eq!(Container::Wav.content_type(), "audio/wav");
}

#[test]
fn ogg_crc_matches_the_reference_polynomial() {
    // CRC-32/MPEG-2 without its init and final xor, i.e. poly 0x04c11db7, init 0, no reflection.
    assert_eq!(ogg::crc_update(0, b""), 0);
    assert_eq!(ogg::crc_update(0, b"123456789"), 0x89A1_897F);
}

// ----- nothing panics -----

/// Deterministic mutations: every truncation prefix, and at every position a few byte edits.
/// For Ogg the edits are also tried with fixed-up CRCs, so they reach the checks behind the CRC.
#[test]
fn no_input_panics() {
    let files: Vec<(Vec<u8>, bool)> = vec![
        (testgen::wav(Codec::Pcm16, 2, 8000, 40, 1), false),
        (testgen::wav(Codec::Mulaw, 1, 8000, 41, 2), false),
        (
            riff(&[
                chunk(b"LIST", b"odd"),
                chunk(b"fmt ", &extensible_body(6, 1, 8000, 8)),
                chunk(b"data", &[1, 2, 3]),
            ]),
            false,
        ),
        (testgen::mp3(3, 3), false),
        (testgen::ogg_opus(3, 1, 4), true),
        (testgen::ogg_opus(24, 2, 5), true),
    ];
    let mut probes = 0u64;
    for (file, is_ogg) in &files {
        let _ = probe(file).unwrap();
        for n in 0..file.len() {
            let _ = probe(&file[..n]);
            for claimed in [Container::Wav, Container::Mp3, Container::OggOpus] {
                let _ = probe_as(&file[..n], claimed);
            }
            probes += 4;
        }
        for i in 0..file.len() {
            for edit in [0x01u8, 0x80, 0xFF, 0x00] {
                let mut m = file.clone();
                m[i] = if edit == 0 { 0 } else { m[i] ^ edit };
                let _ = probe(&m);
                if *is_ogg {
                    recrc(&mut m);
                    let _ = probe(&m);
                }
                probes += 1;
            }
        }
    }
    assert!(probes > 10_000);
}
