//! STUB (a helper fills it in): Opus at the phone's rate.

/// An Opus failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("opus: {0}")]
pub struct OpusError(pub String);

/// Mono Opus encoder at 8, 16 or 24 kHz, 20 ms frames, VOIP, in-band FEC.
pub struct OpusEncoder {}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpusEncoder")
    }
}

impl OpusEncoder {
    /// An encoder for `rate_hz` (8000, 16000 or 24000).
    pub fn new(_rate_hz: u32) -> Result<Self, OpusError> {
        unimplemented!()
    }
    /// Encodes exactly 20 ms of samples, appending the packet to `out`.
    pub fn encode(&mut self, _pcm: &[i16], _out: &mut Vec<u8>) -> Result<(), OpusError> {
        unimplemented!()
    }
}

/// Mono Opus decoder at 8, 16 or 24 kHz with loss concealment.
pub struct OpusDecoder {}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpusDecoder")
    }
}

impl OpusDecoder {
    /// A decoder producing `rate_hz` samples.
    pub fn new(_rate_hz: u32) -> Result<Self, OpusError> {
        unimplemented!()
    }
    /// Decodes one packet, appending its samples to `out`.
    pub fn decode(&mut self, _packet: &[u8], _out: &mut Vec<i16>) -> Result<usize, OpusError> {
        unimplemented!()
    }
    /// Conceals one lost 20 ms frame; uses the in-band FEC of `next` when given.
    pub fn conceal(
        &mut self,
        _next: Option<&[u8]>,
        _out: &mut Vec<i16>,
    ) -> Result<usize, OpusError> {
        unimplemented!()
    }
}
