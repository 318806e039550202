//! The SignalWire (Twilio-compatible) bidirectional media stream.

pub mod messages;
