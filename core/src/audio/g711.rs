//! G.711 μ-law and A-law (STUB: helper fills in).

/// μ-law digital silence.
pub const ULAW_SILENCE: u8 = 0xFF;
/// A-law digital silence.
pub const ALAW_SILENCE: u8 = 0xD5;

/// Encodes one sample to μ-law.
pub fn ulaw_encode(_sample: i16) -> u8 { unimplemented!() }
/// Decodes one μ-law byte.
pub fn ulaw_decode(_code: u8) -> i16 { unimplemented!() }
/// Encodes one sample to A-law.
pub fn alaw_encode(_sample: i16) -> u8 { unimplemented!() }
/// Decodes one A-law byte.
pub fn alaw_decode(_code: u8) -> i16 { unimplemented!() }
