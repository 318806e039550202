//! G.711 μ-law and A-law, bit-exact with Sun's public-domain `g711.c` (and so with CPython's
//! `audioop`, which vendors it).
//!
//! Encoding computes the segment with `leading_zeros` instead of Sun's linear table search
//! (same result, no loop). Decoding reads 256-entry tables built at compile time, so the hot
//! path of the media leg is one load per sample. No function here can panic: every index is a
//! `u8` into a 256-entry table and every shift amount is bounded by the segment number.

/// μ-law digital silence.
///
/// `0xFF` and `0x7F` both decode to 0; `0xFF` is what `ulaw_encode(0)` gives and what
/// openai-agents-js sends as Twilio silence.
pub const ULAW_SILENCE: u8 = 0xFF;
/// A-law digital silence.
///
/// A-law has no exact zero: `0xD5` decodes to +8 and is what `alaw_encode(0)` gives.
pub const ALAW_SILENCE: u8 = 0xD5;

/// μ-law bias (0x84 in 16-bit terms), as Sun's `BIAS`.
const ULAW_BIAS: i32 = 0x84;
/// Largest 14-bit magnitude μ-law encodes before clipping (Sun's `CLIP`).
const ULAW_CLIP: i32 = 8159;

/// Decodes one μ-law code with Sun's `ulaw2linear` formula; used to build the table.
const fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code as i32;
    let t = (((u & 0x0F) << 3) + ULAW_BIAS) << ((u & 0x70) >> 4);
    let v = if u & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    };
    // |v| <= 32124, so the narrowing is exact.
    v as i16
}

/// Decodes one A-law code with Sun's `alaw2linear` formula; used to build the table.
const fn alaw_to_linear(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    t = match seg {
        0 => t + 8,
        1 => t + 0x108,
        _ => (t + 0x108) << (seg - 1),
    };
    // |t| <= 32256, so the narrowing is exact.
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

/// Builds a 256-entry decode table (const fns cannot call function pointers, hence the flag).
const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0usize;
    while code < 256 {
        table[code] = if alaw {
            alaw_to_linear(code as u8)
        } else {
            ulaw_to_linear(code as u8)
        };
        code += 1;
    }
    table
}

/// Every μ-law code decoded to 16-bit linear PCM (CPython's `_st_ulaw2linear16`).
pub const ULAW_TO_LINEAR: [i16; 256] = build_table(false);
/// Every A-law code decoded to 16-bit linear PCM (CPython's `_st_alaw2linear16`).
pub const ALAW_TO_LINEAR: [i16; 256] = build_table(true);

/// Number of significant bits in `p` (0 for 0).
#[inline]
fn bit_len(p: i32) -> u32 {
    32 - (p as u32).leading_zeros()
}

/// Encodes one sample to μ-law.
///
/// Uses the 14 most significant bits, as Sun's `linear2ulaw` and CPython's `st_14linear2ulaw`;
/// `ulaw_encode(0)` is [`ULAW_SILENCE`], full scale gives `0x80` (positive) and `0x00` (negative).
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut p = i32::from(sample) >> 2;
    let mask: i32 = if p < 0 {
        p = -p;
        0x7F
    } else {
        0xFF
    };
    p = p.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    // p is in 33..=8192: seg_uend[seg] = 2^(seg + 6) - 1, so seg = bit length - 6.
    let seg = bit_len(p) - 6;
    let code = if seg >= 8 {
        0x7F
    } else {
        ((seg as i32) << 4) | ((p >> (seg + 1)) & 0x0F)
    };
    (code ^ mask) as u8
}

/// Decodes one μ-law byte.
///
/// The output range is ±32124; both `0xFF` and `0x7F` decode to 0.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(code)]
}

/// Encodes one sample to A-law.
///
/// Uses the 13 most significant bits, as Sun's `linear2alaw` and CPython's `st_linear2alaw`
/// (negative values are one's-complemented, so -1 encodes like 0 with the sign bit clear).
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    let mut p = i32::from(sample) >> 3;
    let mask: i32 = if p >= 0 {
        0xD5
    } else {
        p = -p - 1;
        0x55
    };
    // p is in 0..=4095: seg_aend[seg] = 2^(seg + 5) - 1, so seg = max(bit length - 5, 0).
    let seg = bit_len(p).saturating_sub(5);
    let code = if seg >= 8 {
        0x7F
    } else if seg < 2 {
        ((seg as i32) << 4) | ((p >> 1) & 0x0F)
    } else {
        ((seg as i32) << 4) | ((p >> seg) & 0x0F)
    };
    (code ^ mask) as u8
}

/// Decodes one A-law byte.
///
/// The output range is ±32256 and there is no exact zero: [`ALAW_SILENCE`] decodes to +8.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(code)]
}

/// Appends the linear samples of the μ-law `codes` to `out`.
pub fn ulaw_decode_slice(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|&c| ulaw_decode(c)));
}

/// Appends the μ-law codes of `samples` to `out`.
pub fn ulaw_encode_slice(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| ulaw_encode(s)));
}

/// Appends the linear samples of the A-law `codes` to `out`.
pub fn alaw_decode_slice(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|&c| alaw_decode(c)));
}

/// Appends the A-law codes of `samples` to `out`.
pub fn alaw_encode_slice(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| alaw_encode(s)));
}

#[cfg(test)]
mod tests {
    use super::*;

    // An independent transcription of Sun's g711.c (public domain, 1994 update), kept as
    // literal as Rust allows: the seg tables, the linear `search`, and the same branches.
    mod sun {
        const SIGN_BIT: i32 = 0x80;
        const QUANT_MASK: i32 = 0xF;
        const SEG_SHIFT: i32 = 4;
        const SEG_MASK: i32 = 0x70;
        const BIAS: i32 = 0x84;
        const CLIP: i32 = 8159;

        const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
        const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];

        fn search(val: i32, table: &[i32; 8]) -> i32 {
            for (i, &end) in table.iter().enumerate() {
                if val <= end {
                    return i as i32;
                }
            }
            8
        }

        pub(super) fn linear2alaw(pcm_val: i16) -> u8 {
            let mut pcm_val = i32::from(pcm_val) >> 3;
            let mask;
            if pcm_val >= 0 {
                mask = 0xD5;
            } else {
                mask = 0x55;
                pcm_val = -pcm_val - 1;
            }
            let seg = search(pcm_val, &SEG_AEND);
            if seg >= 8 {
                return (0x7F ^ mask) as u8;
            }
            let mut aval = seg << SEG_SHIFT;
            if seg < 2 {
                aval |= (pcm_val >> 1) & QUANT_MASK;
            } else {
                aval |= (pcm_val >> seg) & QUANT_MASK;
            }
            (aval ^ mask) as u8
        }

        pub(super) fn alaw2linear(a_val: u8) -> i16 {
            let a_val = i32::from(a_val) ^ 0x55;
            let mut t = (a_val & QUANT_MASK) << 4;
            let seg = (a_val & SEG_MASK) >> SEG_SHIFT;
            match seg {
                0 => t += 8,
                1 => t += 0x108,
                _ => {
                    t += 0x108;
                    t <<= seg - 1;
                }
            }
            (if a_val & SIGN_BIT != 0 { t } else { -t }) as i16
        }

        pub(super) fn linear2ulaw(pcm_val: i16) -> u8 {
            let mut pcm_val = i32::from(pcm_val) >> 2;
            let mask;
            if pcm_val < 0 {
                pcm_val = -pcm_val;
                mask = 0x7F;
            } else {
                mask = 0xFF;
            }
            if pcm_val > CLIP {
                pcm_val = CLIP;
            }
            pcm_val += BIAS >> 2;
            let seg = search(pcm_val, &SEG_UEND);
            if seg >= 8 {
                (0x7F ^ mask) as u8
            } else {
                let uval = (seg << 4) | ((pcm_val >> (seg + 1)) & 0xF);
                (uval ^ mask) as u8
            }
        }

        pub(super) fn ulaw2linear(u_val: u8) -> i16 {
            let u_val = !i32::from(u_val);
            let mut t = ((u_val & QUANT_MASK) << 3) + BIAS;
            t <<= (u_val & SEG_MASK) >> SEG_SHIFT;
            (if u_val & SIGN_BIT != 0 {
                BIAS - t
            } else {
                t - BIAS
            }) as i16
        }
    }

    #[test]
    fn ulaw_encode_matches_sun_for_every_i16() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(x), sun::linear2ulaw(x), "input {x}");
        }
    }

    #[test]
    fn alaw_encode_matches_sun_for_every_i16() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(alaw_encode(x), sun::linear2alaw(x), "input {x}");
        }
    }

    #[test]
    fn ulaw_decode_matches_sun_for_every_code() {
        for c in 0..=u8::MAX {
            assert_eq!(ulaw_decode(c), sun::ulaw2linear(c), "code {c:#04x}");
        }
    }

    #[test]
    fn alaw_decode_matches_sun_for_every_code() {
        for c in 0..=u8::MAX {
            assert_eq!(alaw_decode(c), sun::alaw2linear(c), "code {c:#04x}");
        }
    }

    #[test]
    fn ulaw_fixed_points_match_the_reference() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(0), ULAW_SILENCE);
        assert_eq!(ulaw_encode(32767), 0x80);
        assert_eq!(ulaw_encode(-32768), 0x00);
        assert_eq!(ulaw_decode(ULAW_SILENCE), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
    }

    #[test]
    fn alaw_fixed_points_match_the_reference() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(0), ALAW_SILENCE);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
    }

    #[test]
    fn decoded_ranges_are_the_documented_ones() {
        let (umin, umax) = (ULAW_TO_LINEAR.iter().min(), ULAW_TO_LINEAR.iter().max());
        assert_eq!((umin, umax), (Some(&-32124), Some(&32124)));
        let (amin, amax) = (ALAW_TO_LINEAR.iter().min(), ALAW_TO_LINEAR.iter().max());
        assert_eq!((amin, amax), (Some(&-32256), Some(&32256)));
    }

    #[test]
    fn decode_then_encode_returns_the_code() {
        // Every code except μ-law's second zero (0x7F, "negative zero") survives a round trip.
        for c in 0..=u8::MAX {
            if c != 0x7F {
                assert_eq!(ulaw_encode(ulaw_decode(c)), c, "μ-law {c:#04x}");
            }
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law {c:#04x}");
        }
        assert_eq!(ulaw_encode(ulaw_decode(0x7F)), ULAW_SILENCE);
    }

    #[test]
    fn slice_helpers_append_the_per_sample_results() {
        let samples: Vec<i16> = (i16::MIN..=i16::MAX).step_by(97).collect();
        let codes: Vec<u8> = (0..=u8::MAX).collect();

        let mut u = vec![0xAB];
        ulaw_encode_slice(&samples, &mut u);
        assert_eq!(u[0], 0xAB);
        assert!(
            u[1..]
                .iter()
                .zip(&samples)
                .all(|(&c, &s)| c == ulaw_encode(s))
        );
        assert_eq!(u.len(), samples.len() + 1);

        let mut a = Vec::new();
        alaw_encode_slice(&samples, &mut a);
        assert!(a.iter().zip(&samples).all(|(&c, &s)| c == alaw_encode(s)));
        assert_eq!(a.len(), samples.len());

        let mut ud = vec![-1];
        ulaw_decode_slice(&codes, &mut ud);
        assert_eq!(ud[0], -1);
        assert_eq!(&ud[1..], &ULAW_TO_LINEAR[..]);

        let mut ad = Vec::new();
        alaw_decode_slice(&codes, &mut ad);
        assert_eq!(&ad[..], &ALAW_TO_LINEAR[..]);
    }

    #[test]
    fn slice_helpers_accept_empty_input() {
        let mut samples = Vec::new();
        let mut codes = Vec::new();
        ulaw_decode_slice(&[], &mut samples);
        alaw_decode_slice(&[], &mut samples);
        ulaw_encode_slice(&[], &mut codes);
        alaw_encode_slice(&[], &mut codes);
        assert!(samples.is_empty() && codes.is_empty());
    }
}
