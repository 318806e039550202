//! L16 bytes <-> i16 samples.
//!
//! The byte order is matched once per call, not per sample, so each loop is a plain copy over
//! `[u8; 2]` chunks the compiler can vectorise. Nothing here indexes untrusted data.

use super::ByteOrder;

/// L16 audio with an odd number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("L16 audio has an odd number of bytes")]
pub struct OddLength;

/// Appends the samples in `bytes` to `out`.
///
/// # Errors
/// [`OddLength`] if `bytes` has an odd length; `out` is then left untouched, because half a
/// sample means the payload is corrupt and the caller decides what to drop.
pub fn decode(bytes: &[u8], order: ByteOrder, out: &mut Vec<i16>) -> Result<(), OddLength> {
    if !bytes.len().is_multiple_of(2) {
        return Err(OddLength);
    }
    let (pairs, _) = bytes.as_chunks::<2>();
    match order {
        ByteOrder::Little => out.extend(pairs.iter().map(|&p| i16::from_le_bytes(p))),
        ByteOrder::Big => out.extend(pairs.iter().map(|&p| i16::from_be_bytes(p))),
    }
    Ok(())
}

/// Appends `samples` as bytes to `out`.
pub fn encode(samples: &[i16], order: ByteOrder, out: &mut Vec<u8>) {
    let start = out.len();
    // Cannot overflow: a slice of i16 spans at most isize::MAX bytes.
    out.resize(start + 2 * samples.len(), 0);
    let (dst, _) = out
        .get_mut(start..)
        .unwrap_or_default()
        .as_chunks_mut::<2>();
    let dst = dst.iter_mut().zip(samples);
    match order {
        ByteOrder::Little => dst.for_each(|(d, s)| *d = s.to_le_bytes()),
        ByteOrder::Big => dst.for_each(|(d, s)| *d = s.to_be_bytes()),
    }
}

/// Swaps the byte order of L16 audio in place (odd trailing byte left alone).
pub fn swap_in_place(bytes: &mut [u8]) {
    let (pairs, _) = bytes.as_chunks_mut::<2>();
    for pair in pairs {
        pair.reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (samples, little-endian bytes, big-endian bytes)
    const CASES: &[(&[i16], &[u8], &[u8])] = &[
        (&[], &[], &[]),
        (&[0], &[0x00, 0x00], &[0x00, 0x00]),
        (&[1], &[0x01, 0x00], &[0x00, 0x01]),
        (&[-1], &[0xFF, 0xFF], &[0xFF, 0xFF]),
        (&[0x1234], &[0x34, 0x12], &[0x12, 0x34]),
        (&[i16::MAX], &[0xFF, 0x7F], &[0x7F, 0xFF]),
        (&[i16::MIN], &[0x00, 0x80], &[0x80, 0x00]),
        (
            &[256, -256],
            &[0x00, 0x01, 0x00, 0xFF],
            &[0x01, 0x00, 0xFF, 0x00],
        ),
    ];

    #[test]
    fn decode_reads_both_byte_orders() {
        for &(samples, le, be) in CASES {
            let mut out = Vec::new();
            assert_eq!(decode(le, ByteOrder::Little, &mut out), Ok(()));
            assert_eq!(out, samples, "little {le:02x?}");
            out.clear();
            assert_eq!(decode(be, ByteOrder::Big, &mut out), Ok(()));
            assert_eq!(out, samples, "big {be:02x?}");
        }
    }

    #[test]
    fn encode_writes_both_byte_orders() {
        for &(samples, le, be) in CASES {
            let mut out = Vec::new();
            encode(samples, ByteOrder::Little, &mut out);
            assert_eq!(out, le, "little {samples:?}");
            out.clear();
            encode(samples, ByteOrder::Big, &mut out);
            assert_eq!(out, be, "big {samples:?}");
        }
    }

    #[test]
    fn decode_and_encode_append_to_existing_content() {
        let mut samples = vec![7];
        decode(&[0x01, 0x00], ByteOrder::Little, &mut samples).unwrap();
        assert_eq!(samples, [7, 1]);
        let mut bytes = vec![0xEE];
        encode(&[1], ByteOrder::Big, &mut bytes);
        assert_eq!(bytes, [0xEE, 0x00, 0x01]);
    }

    #[test]
    fn decode_rejects_odd_length_without_appending() {
        for odd in [&[0x01][..], &[0x01, 0x02, 0x03][..]] {
            for order in [ByteOrder::Little, ByteOrder::Big] {
                let mut out = vec![5];
                assert_eq!(decode(odd, order, &mut out), Err(OddLength));
                assert_eq!(out, [5]);
            }
        }
    }

    #[test]
    fn swap_in_place_turns_little_into_big_and_keeps_an_odd_tail() {
        for &(_, le, be) in CASES {
            let mut bytes = le.to_vec();
            swap_in_place(&mut bytes);
            assert_eq!(bytes, be);
        }
        let mut odd = [1, 2, 3, 4, 5];
        swap_in_place(&mut odd);
        assert_eq!(odd, [2, 1, 4, 3, 5]);
        swap_in_place(&mut []);
    }

    #[test]
    fn every_sample_round_trips_in_both_orders() {
        let samples: Vec<i16> = (i16::MIN..=i16::MAX).collect();
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let mut bytes = Vec::new();
            encode(&samples, order, &mut bytes);
            let mut back = Vec::new();
            decode(&bytes, order, &mut back).unwrap();
            assert_eq!(back, samples);
        }
    }
}
