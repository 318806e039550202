//! OpenAI Realtime (GA).

pub mod events;
