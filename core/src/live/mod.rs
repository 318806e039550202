//! OpenAI Live (`gpt-live-1`, `/v1/live/sessions`): full duplex, tools through Responses
//! delegation. The second backend behind the [`crate::model`] seam.

pub mod events;
pub(crate) mod leg;
pub(crate) mod session;
pub(crate) mod sessions;
#[cfg(test)]
mod tests;
