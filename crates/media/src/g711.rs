//! ITU-T G.711 µ-law and A-law companding, bit-exact with the reference implementation
//! (the classic Sun/CCITT `g711.c`), for live telephony audio arriving over RTP.
//!
//! Decoding is a lookup in 256-entry tables built at compile time; encoding is a short
//! segment search. Nothing here allocates or can fail.

/// µ-law bias added before segment search (0x84 = 132).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law encodes, in the 14-bit domain used by the encoder.
const ULAW_CLIP: i32 = 8159;

const ULAW_TABLE: [i16; 256] = build_ulaw_table();
const ALAW_TABLE: [i16; 256] = build_alaw_table();

const fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let mut t = (((u & 0x0F) as i32) << 3) + ULAW_BIAS;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    }) as i16
}

const fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn build_ulaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_decode(i as u8);
        i += 1;
    }
    table
}

const fn build_alaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_decode(i as u8);
        i += 1;
    }
    table
}

/// Decodes one µ-law byte to 16-bit linear PCM (range ±32124).
pub fn ulaw_to_linear(u: u8) -> i16 {
    ULAW_TABLE[usize::from(u)]
}

/// Decodes one A-law byte to 16-bit linear PCM (range ±32256).
pub fn alaw_to_linear(a: u8) -> i16 {
    ALAW_TABLE[usize::from(a)]
}

/// Index of the first segment end that `value` does not exceed, or 8 if it exceeds them all.
fn segment(value: i32, ends: &[i32; 8]) -> u8 {
    let mut seg = 0u8;
    for &end in ends {
        if value <= end {
            return seg;
        }
        seg += 1;
    }
    seg
}

/// Encodes 16-bit linear PCM to µ-law; values beyond the µ-law range saturate.
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    // The reference works on 14-bit magnitudes.
    let mut value = i32::from(pcm) >> 2;
    let mask: u8 = if value < 0 {
        value = -value;
        0x7F
    } else {
        0xFF
    };
    value = value.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    let seg = segment(value, &SEG_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let quant = ((value >> (seg + 1)) & 0x0F) as u8;
    ((seg << 4) | quant) ^ mask
}

/// Encodes 16-bit linear PCM to A-law; values beyond the A-law range saturate.
pub fn linear_to_alaw(pcm: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    // The reference works on 13-bit values.
    let mut value = i32::from(pcm) >> 3;
    let mask: u8 = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    let seg = segment(value, &SEG_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let shift = if seg < 2 { 1 } else { seg };
    let quant = ((value >> shift) & 0x0F) as u8;
    ((seg << 4) | quant) ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_values_from_the_standard() {
        let cases: &[(u8, i16, i16)] = &[
            // (code, µ-law decode, A-law decode)
            (0xFF, 0, 848),
            (0x00, -32124, -5504),
            (0x80, 32124, 5504),
            (0x7F, 0, -848),
            (0xD5, 716, 8),
            (0x55, -716, -8),
            (0x2A, -5372, -32256),
            (0xAA, 5372, 32256),
        ];
        for &(code, ulaw, alaw) in cases {
            assert_eq!(ulaw_to_linear(code), ulaw, "µ-law 0x{code:02x}");
            assert_eq!(alaw_to_linear(code), alaw, "A-law 0x{code:02x}");
        }
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-32768), 0x00);
        assert_eq!(linear_to_ulaw(32767), 0x80);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(32767), 0xAA);
        assert_eq!(linear_to_alaw(-32768), 0x2A);
    }

    #[test]
    fn every_code_except_negative_zero_round_trips() {
        for code in 0..=255u8 {
            // µ-law 0x7F is "negative zero"; it decodes to 0, which encodes as 0xFF.
            if code != 0x7F {
                assert_eq!(
                    linear_to_ulaw(ulaw_to_linear(code)),
                    code,
                    "µ-law 0x{code:02x}"
                );
            }
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "A-law 0x{code:02x}"
            );
        }
    }

    #[test]
    fn decode_of_encode_stays_within_one_quantisation_step() {
        for x in i16::MIN..=i16::MAX {
            let x32 = i32::from(x);
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(x)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(x)));
            // The quantisation step grows with the segment: about 1/16 of the magnitude, never
            // less than the smallest step; beyond the clip level the error is the gap to full scale.
            let tol = (x32.abs() / 16).max(16);
            assert!(
                (u - x32).abs() <= tol.max(32768 - 32124),
                "µ-law {x} -> {u}"
            );
            assert!(
                (a - x32).abs() <= tol.max(32768 - 32256),
                "A-law {x} -> {a}"
            );
            // Encoding is idempotent through a decode.
            assert_eq!(
                linear_to_ulaw(u as i16),
                linear_to_ulaw(x),
                "µ-law idempotence {x}"
            );
            assert_eq!(
                linear_to_alaw(a as i16),
                linear_to_alaw(x),
                "A-law idempotence {x}"
            );
            // The sign survives (µ-law may round tiny values to zero; A-law has no zero code).
            assert!(u == 0 || u.signum() == x32.signum(), "µ-law sign {x}");
            assert!(x32 == 0 || a.signum() == x32.signum(), "A-law sign {x}");
        }
    }
}
