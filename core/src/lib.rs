//! barbara-core (manual to come).
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod audio;
mod config;
pub mod media_stream;
mod output;
pub mod realtime;
#[cfg(feature = "sim")]
pub mod sim;
mod timer;

pub use config::*;
pub use output::*;
pub use timer::Timer;
