//! The WebRTC transport to OpenAI: one `str0m::Rtc` per call, wrapped so no str0m type leaks.

pub(crate) mod media;
mod opus_fmtp;
pub(crate) mod rtc;
#[cfg(test)]
mod rtc_tests;
pub(crate) mod transport;
