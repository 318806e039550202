//! OpenAI Realtime (GA).

pub mod events;
pub(crate) mod session;
