//! The table of broken inputs: each row must fail with its named error.

use super::*;

#[test]
fn broken_inputs_give_the_named_error() {
    let good_wav = testgen::wav(Codec::Pcm16, 1, 8000, 100, 5);
    let good_mp3 = testgen::mp3(4, 5);
    let frames = mp3_frames(&good_mp3);
    let data = chunk(b"data", &[0; 8]);

    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // any container
        ("empty", vec![], "Empty"),
        (
            "random bytes",
            (0..200u32).map(|i| (i * 37 + 11) as u8).collect(),
            "UnknownFormat",
        ),
        (
            "text",
            b"hello, this is not audio".to_vec(),
            "UnknownFormat",
        ),
        // WAV
        (
            "truncated data chunk",
            good_wav[..good_wav.len() - 10].to_vec(),
            "WavDataTruncated",
        ),
        (
            "RIFF header only",
            good_wav[..10].to_vec(),
            "WavHeaderTruncated",
        ),
        (
            "24-bit PCM",
            riff(&[
                chunk(b"fmt ", &fmt_body(1, 1, 8000, 24000, 3, 24)),
                data.clone(),
            ]),
            "WavBitsPerSample",
        ),
        (
            "16-bit µ-law",
            riff(&[
                chunk(b"fmt ", &fmt_body(7, 1, 8000, 16000, 2, 16)),
                data.clone(),
            ]),
            "WavBitsPerSample",
        ),
        (
            "3 channels",
            riff(&[
                chunk(b"fmt ", &fmt_body(1, 3, 8000, 48000, 6, 16)),
                data.clone(),
            ]),
            "UnsupportedChannels",
        ),
        (
            "0 channels",
            riff(&[
                chunk(b"fmt ", &fmt_body(1, 0, 8000, 0, 0, 16)),
                data.clone(),
            ]),
            "UnsupportedChannels",
        ),
        (
            "IEEE float",
            riff(&[
                chunk(b"fmt ", &fmt_body(3, 1, 8000, 32000, 4, 32)),
                data.clone(),
            ]),
            "WavUnsupportedFormat",
        ),
        (
            "EXTENSIBLE float",
            riff(&[
                chunk(b"fmt ", &extensible_body(3, 1, 8000, 32)),
                data.clone(),
            ]),
            "WavUnsupportedSubformat",
        ),
        (
            "96 kHz",
            riff(&[pcm16_fmt(1, 96000), data.clone()]),
            "WavSampleRate",
        ),
        (
            "4 kHz",
            riff(&[pcm16_fmt(1, 4000), data.clone()]),
            "WavSampleRate",
        ),
        (
            "bad block_align",
            riff(&[
                chunk(b"fmt ", &fmt_body(1, 2, 8000, 32000, 2, 16)),
                data.clone(),
            ]),
            "WavInconsistentFmt",
        ),
        (
            "bad byte_rate",
            riff(&[
                chunk(b"fmt ", &fmt_body(1, 1, 8000, 8000, 2, 16)),
                data.clone(),
            ]),
            "WavInconsistentFmt",
        ),
        (
            "short fmt",
            riff(&[chunk(b"fmt ", &[1, 0, 1, 0]), data.clone()]),
            "WavFmtTooShort",
        ),
        (
            "no fmt",
            riff(std::slice::from_ref(&data)),
            "WavDataBeforeFmt",
        ),
        (
            "only LIST",
            riff(&[chunk(b"LIST", b"INFO")]),
            "WavMissingFmt",
        ),
        ("no data", riff(&[pcm16_fmt(1, 8000)]), "WavMissingData"),
        (
            "two data chunks",
            riff(&[pcm16_fmt(1, 8000), data.clone(), data.clone()]),
            "WavDuplicateChunk",
        ),
        (
            "two fmt chunks",
            riff(&[pcm16_fmt(1, 8000), pcm16_fmt(1, 8000), data.clone()]),
            "WavDuplicateChunk",
        ),
        (
            "data before fmt",
            riff(&[data.clone(), pcm16_fmt(1, 8000)]),
            "WavDataBeforeFmt",
        ),
        (
            "partial frame",
            riff(&[pcm16_fmt(2, 8000), chunk(b"data", &[0; 6])]),
            "WavPartialFrame",
        ),
        (
            "truncated LIST",
            riff(&[
                pcm16_fmt(1, 8000),
                data.clone(),
                b"LIST\xff\x00\x00\x00ab".to_vec(),
            ]),
            "WavChunkTruncated",
        ),
        (
            "stray bytes after chunks",
            riff(&[pcm16_fmt(1, 8000), data.clone(), b"LI".to_vec()]),
            "WavChunkTruncated",
        ),
        ("AVI", b"RIFF\x04\x00\x00\x00AVI ".to_vec(), "WavNotWave"),
        // MP3
        (
            "mp3 with garbage between frames",
            [
                &good_mp3[..frames[2]],
                b"junk".as_slice(),
                &good_mp3[frames[2]..],
            ]
            .concat(),
            "Mp3ExpectedFrame",
        ),
        (
            "mp3 with truncated last frame",
            good_mp3[..good_mp3.len() - 100].to_vec(),
            "Mp3TruncatedFrame",
        ),
        (
            "mp3 cut inside a frame header",
            good_mp3[..frames[3] + 2].to_vec(),
            "Mp3TruncatedFrame",
        ),
        (
            "mp3 with one frame",
            good_mp3[..frames[1]].to_vec(),
            "Mp3TooFewFrames",
        ),
        (
            "ID3 tag only",
            good_mp3[..frames[0]].to_vec(),
            "Mp3TooFewFrames",
        ),
        (
            "ID3 tag larger than file",
            [
                b"ID3\x04\x00\x00\x00\x00\x7f\x7f".as_slice(),
                &good_mp3[10..],
            ]
            .concat(),
            "Id3Truncated",
        ),
        (
            "ID3 size not synchsafe",
            [
                b"ID3\x04\x00\x00\x00\x00\x80\x00".as_slice(),
                &good_mp3[10..],
            ]
            .concat(),
            "Id3Invalid",
        ),
        (
            "APE tag",
            [&good_mp3[..], b"APETAGEX\xd0\x07\x00\x00".as_slice()].concat(),
            "Mp3ApeTag",
        ),
        (
            "ID3v1 then more data",
            [&good_mp3[..], b"TAG", &[0u8; 126]].concat(),
            "Mp3ExpectedFrame",
        ),
        (
            "ADTS AAC",
            [0xFF, 0xF1, 0x50, 0x80, 0x02, 0x1F, 0xFC].to_vec(),
            "Mp3UnsupportedLayer",
        ),
    ];
    let mut edit_mp3 = |name, frame: usize, byte: usize, value: u8, want| {
        let mut f = good_mp3.clone();
        f[frames[frame] + byte] = value;
        cases.push((name, f, want));
    };
    edit_mp3("mp3 Layer II frame", 1, 1, 0xFD, "Mp3UnsupportedLayer");
    edit_mp3("mp3 free-format frame", 1, 2, 0x00, "Mp3FreeFormat");
    edit_mp3("mp3 bitrate index 15", 1, 2, 0xF0, "Mp3ReservedField");
    edit_mp3("mp3 reserved version", 0, 1, 0xEB, "Mp3ReservedField");
    edit_mp3(
        "mp3 sample rate change",
        2,
        2,
        0x94,
        "Mp3InconsistentFrames",
    );
    edit_mp3("mp3 stereo to mono", 2, 3, 0xC4, "Mp3InconsistentFrames");

    // Ogg Opus
    let good_ogg = testgen::ogg_opus(60, 2, 7);
    let mut flipped = good_ogg.clone();
    flipped[good_ogg.len() / 2] ^= 0x01;
    cases.push(("ogg with a flipped byte", flipped, "OggCrc"));
    cases.push((
        "ogg truncated",
        good_ogg[..good_ogg.len() - 5].to_vec(),
        "OggPageTruncated",
    ));
    let ogg_page = ogg_pages(&good_ogg);
    cases.push((
        "ogg cut in capture pattern",
        good_ogg[..ogg_page[2].start + 2].to_vec(),
        "OggPageTruncated",
    ));
    cases.push((
        "ogg page after EOS",
        [&good_ogg[..], &good_ogg[ogg_page[2].clone()]].concat(),
        "OggDataAfterEos",
    ));
    cases.push((
        "ogg junk between pages",
        [&good_ogg[..47], b"junk".as_slice(), &good_ogg[47..]].concat(),
        "OggExpectedPage",
    ));
    cases.push(("headers only", testgen::ogg_opus(0, 1, 1), "OpusNoAudio"));
    cases.push((
        "3 channels",
        testgen::ogg_opus(3, 3, 1),
        "UnsupportedChannels",
    ));
    let more: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "OpusHead version 2",
            ogg_edit(|f, p| f[p[0].start + 28 + 8] = 2),
            "OpusVersion",
        ),
        (
            "mapping family 1",
            ogg_edit(|f, p| f[p[0].start + 28 + 18] = 1),
            "OpusMappingFamily",
        ),
        (
            "Vorbis",
            ogg_edit(|f, p| f[p[0].start + 28..p[0].start + 36].copy_from_slice(b"\x01vorbis\0")),
            "OggNotOpus",
        ),
        (
            "missing EOS",
            ogg_edit(|f, p| f[p.last().unwrap().start + 5] &= !0x04),
            "OggMissingEos",
        ),
        (
            "EOS early",
            ogg_edit(|f, p| f[p[2].start + 5] |= 0x04),
            "OggDataAfterEos",
        ),
        (
            "first page not BOS",
            ogg_edit(|f, p| f[p[0].start + 5] &= !0x02),
            "OggFirstPageNotBos",
        ),
        (
            "second BOS",
            ogg_edit(|f, p| f[p[1].start + 5] |= 0x02),
            "OggUnexpectedBos",
        ),
        (
            "undefined flag",
            ogg_edit(|f, p| f[p[1].start + 5] |= 0x08),
            "OggUnknownFlags",
        ),
        (
            "version 1",
            ogg_edit(|f, p| f[p[1].start + 4] = 1),
            "OggVersion",
        ),
        (
            "second serial",
            ogg_edit(|f, p| f[p.last().unwrap().start + 14] ^= 0xFF),
            "OggMultipleStreams",
        ),
        (
            "page missing",
            ogg_edit(|f, p| {
                f.drain(p[2].clone());
            }),
            "OggPageSequence",
        ),
        (
            "pages swapped",
            ogg_edit(|f, p| {
                let a = f[p[2].clone()].to_vec();
                f.drain(p[2].clone());
                f.extend_from_slice(&a);
            }),
            "OggPageSequence",
        ),
        (
            "continued flag without a packet in progress",
            ogg_edit(|f, p| f[p[1].start + 5] |= 0x01),
            "OggContinuation",
        ),
        (
            "granule goes backwards",
            ogg_edit(|f, p| {
                f[p.last().unwrap().start + 6..][..8].copy_from_slice(&961u64.to_le_bytes())
            }),
            "OggGranuleBackwards",
        ),
        (
            "end granule missing",
            ogg_edit(|f, p| {
                f[p.last().unwrap().start + 6..][..8].copy_from_slice(&u64::MAX.to_le_bytes())
            }),
            "OpusEndGranuleMissing",
        ),
        (
            "OpusTags magic wrong",
            ogg_edit(|f, p| f[p[1].start + 28] = b'X'),
            "OpusTagsInvalid",
        ),
        (
            "OpusTags vendor too long",
            ogg_edit(|f, p| f[p[1].start + 28 + 8..][..4].copy_from_slice(&999u32.to_le_bytes())),
            "OpusTagsInvalid",
        ),
        (
            "OpusHead page with two packets",
            ogg_edit(|f, p| {
                f[p[0].start + 26] = 2;
                f.insert(p[0].start + 28, 0);
            }),
            "OpusHeadPage",
        ),
    ];
    cases.extend(more);

    for (name, bytes, want) in &cases {
        expect_err(name, bytes, want);
    }
}
