//! # barbara-core
//!
//! The pure heart of Barbara: one [`Call`] bridges a SignalWire (Twilio-compatible) media stream
//! to OpenAI's voice models. It has no clock, no sockets, no threads and no unseeded randomness:
//! the world enters as arguments and leaves as [`Output`] values, so a whole call can run in a
//! test on a virtual clock, repeatably, far faster than real time (see the `sim` feature).
//!
//! ## Run loop
//!
//! A runtime owns one `Call` per phone call and, on every wake-up:
//!
//! 1. reads its clock once (`now`);
//! 2. feeds exactly one input: [`Call::handle_ws_message`], [`Call::handle_ws_opened`],
//!    [`Call::handle_ws_closed`], [`Call::handle_udp`], [`Call::handle_http_response`],
//!    [`Call::handle_tool_result`], [`Call::handle_timeout`] or the command [`Call::hang_up`];
//! 3. drains [`Call::poll_output`] until it returns `None`, carrying out each [`Output`]
//!    (send or close a WebSocket message, connect to OpenAI, make an HTTP request, run a tool,
//!    record an event);
//! 4. sleeps until [`Call::poll_timeout`] (or the next socket event).
//!
//! ```no_run
//! # use std::time::{Duration, Instant};
//! # use barbara_core::{Call, CallConfig, Leg, Output, WsMessage};
//! # fn next_frame() -> String { String::new() }
//! let start = Instant::now();
//! let mut call = Call::new(CallConfig::new("sk-…"), [7; 32], start, Duration::ZERO)?;
//! loop {
//!     let now = Instant::now();
//!     call.handle_ws_message(now, Leg::Phone, WsMessage::Text(&next_frame()));
//!     while let Some(output) = call.poll_output() {
//!         match output {
//!             Output::Send { leg, text } => { /* write a text frame on `leg` */ }
//!             Output::Close { leg } => { /* close `leg` */ }
//!             Output::Connect(request) => { /* open the OpenAI WebSocket */ }
//!             Output::Http { id, request } => { /* perform it, then handle_http_response */ }
//!             Output::ToolCall(call) => { /* run it, then handle_tool_result */ }
//!             Output::Transmit(datagram) => { /* send it from datagram.source */ }
//!             Output::Event(event) => { /* log, metrics, call record */ }
//!         }
//!     }
//!     if call.end_reason().is_some() { break; }
//! }
//! # Ok::<(), barbara_core::ConfigError>(())
//! ```
//!
//! ## Time
//!
//! Time enters only as `now: Instant`, always the first argument after `&mut self`. A `now`
//! older than one already seen is clamped, never trusted. [`Call::handle_timeout`] before the
//! deadline does nothing; after it, every due deadline is cleared or moved forward, so the
//! runtime never spins. Deadlines live in one table keyed by [`Timer`].
//!
//! ## Errors and panics
//!
//! Peer input is data: a malformed, oversized or out-of-place message from SignalWire or OpenAI
//! is counted ([`CallStats`]), reported as [`Event::BadInput`] and dropped. It never panics and
//! never ends the call unless the stream is unusable. Protocol failures that do end the call
//! surface as [`Event::CallEnded`]; after that every input is a no-op. `Result` is only for what
//! the caller controls ([`ConfigError`]). A panic is a bug in this crate.
//!
//! ## Bounded memory
//!
//! Every queue a peer can feed has a cap in [`Limits`]: caller audio held before the model is
//! ready (oldest dropped, [`Event::Overloaded`] once per episode), pending marks, running tools,
//! collected DTMF digits, message sizes.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]
#![warn(clippy::wildcard_enum_match_arm)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::wildcard_enum_match_arm))]

pub mod audio;
pub mod auth;
mod call;
mod config;
pub mod driver;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod input;
pub mod live;
mod media_path;
pub mod media_stream;
mod model;
mod output;
mod playout;
mod prompt;
pub mod realtime;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(test)]
mod tests;
mod timer;
mod tools;
mod webrtc;

pub use call::{Call, CallStats, WsMessage};
pub use config::*;
pub use driver::{Action, CallDriver};
pub use error::ConfigError;
pub use input::Input;
pub use output::*;
pub use timer::Timer;
