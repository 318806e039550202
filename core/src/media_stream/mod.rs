//! The SignalWire (Twilio-compatible) bidirectional media stream.

pub mod messages;
pub(crate) mod session;
