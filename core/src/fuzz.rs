//! Fuzz bodies as plain functions (the str0m pattern): `fuzz/fuzz_targets/*.rs` are three-line
//! wrappers around these, and the ordinary test command replays the committed corpora (and a
//! sweep of random call lifecycles) through the same functions on stable.
//!
//! Every body takes the fuzzer's bytes and panics, with a message naming the broken rule, only
//! when the core breaks one of its own rules; bad input is never a failure. Each body takes an
//! origin from its caller (the wrapper reads the clock): the call sees only offsets from it.
//!
//! - [`signalwire_message`]: one text frame from SignalWire, parsed and fed to a started call.
//! - [`openai_event`]: one text frame from OpenAI, parsed by both backends' parsers and fed to a
//!   ready call on each backend.
//! - [`sdp_answer`]: an SDP answer through the WebRTC accept path, directly and through a call.
//! - [`media_payload`]: phone audio through every codec's conversion, directly and in a call.
//! - [`rtp_payload`]: RTP payloads through the model-audio decoder into the playout buffer.
//! - [`call_lifecycle`]: a whole call driven by a sequence of operations decoded from the bytes,
//!   with the core's invariants and a reference model of the tool-call sequencer checked after
//!   every input.

mod bytes;
mod harness;
mod lifecycle;
mod media;
mod parsers;
mod sdp;

pub use lifecycle::call_lifecycle;
pub use media::{media_payload, rtp_payload};
pub use parsers::{openai_event, signalwire_message};
pub use sdp::sdp_answer;
