//! Streaming resampler (STUB: helper fills in).

/// A rate pair the resampler cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resample {from_hz} Hz to {to_hz} Hz")]
pub struct UnsupportedRates {
    /// Input rate.
    pub from_hz: u32,
    /// Output rate.
    pub to_hz: u32,
}

/// A stateful mono resampler fed chunks of any length.
pub struct Resampler {}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("Resampler") }
}

impl Resampler {
    /// A resampler from `from_hz` to `to_hz`.
    pub fn new(_from_hz: u32, _to_hz: u32) -> Result<Self, UnsupportedRates> { unimplemented!() }
    /// Feeds `input` and appends every output sample now available to `out`.
    pub fn process(&mut self, _input: &[i16], _out: &mut Vec<i16>) { unimplemented!() }
    /// Delay the resampler adds, in output samples.
    pub fn delay_samples(&self) -> usize { unimplemented!() }
    /// Forgets buffered input and filter state (after a `clear`).
    pub fn reset(&mut self) { unimplemented!() }
}
