//! L16 bytes <-> i16 samples (STUB: helper fills in).

use super::ByteOrder;

/// L16 audio with an odd number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("L16 audio has an odd number of bytes")]
pub struct OddLength;

/// Appends the samples in `bytes` to `out`.
pub fn decode(_bytes: &[u8], _order: ByteOrder, _out: &mut Vec<i16>) -> Result<(), OddLength> { unimplemented!() }
/// Appends `samples` as bytes to `out`.
pub fn encode(_samples: &[i16], _order: ByteOrder, _out: &mut Vec<u8>) { unimplemented!() }
/// Swaps the byte order of L16 audio in place (odd trailing byte left alone).
pub fn swap_in_place(_bytes: &mut [u8]) { unimplemented!() }
