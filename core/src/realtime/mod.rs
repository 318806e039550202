//! OpenAI Realtime (GA).

pub(crate) mod calls;
pub mod events;
pub(crate) mod leg;
pub(crate) mod session;
