//! The one seam between the call and OpenAI: everything above it (the phone leg, the media path,
//! the tool runner, events) is the same whichever OpenAI API and transport carry the call.
//!
//! A backend turns the call's requests (caller audio, a user text, a tool output, "the caller
//! interrupted and heard this much") into its wire protocol, and its wire protocol into
//! [`ModelEvent`]s.

use std::time::Instant;

use crate::config::CallConfig;
use crate::media_path::ModelAudio;
use crate::output::{ConnectRequest, Role};
use crate::realtime::session::RealtimeSession;

/// What the model side reports to the call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ModelEvent {
    /// The session accepted our configuration: caller audio may flow.
    Ready,
    /// Model audio of an assistant item, in the model's audio format.
    Audio { item_id: String, audio: Vec<u8> },
    /// The item's audio is complete.
    AudioDone { item_id: String },
    /// The caller started speaking (server VAD).
    CallerSpeechStarted,
    /// The model wants a tool run.
    ToolCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    /// A finished transcript line.
    Transcript { role: Role, text: String },
    /// Tokens used by a response.
    Usage {
        input_tokens: u64,
        output_tokens: u64,
    },
    /// An error from OpenAI.
    Error {
        code: Option<String>,
        message: String,
        fatal: bool,
    },
    /// A message was dropped as malformed.
    BadMessage { unknown_type: bool },
}

/// The OpenAI leg of a call.
#[derive(Debug)]
pub(crate) enum ModelLeg {
    /// OpenAI Realtime (GA) over WebSocket.
    Realtime(RealtimeSession),
}

impl ModelLeg {
    pub(crate) fn new(config: &CallConfig) -> Self {
        ModelLeg::Realtime(RealtimeSession::new(config))
    }

    /// A short name for events and metrics.
    pub(crate) fn transport_name(&self) -> &'static str {
        match self {
            ModelLeg::Realtime(_) => "realtime/websocket",
        }
    }

    /// The audio format this backend will use for a phone codec.
    pub(crate) fn choose_audio(&self, phone: crate::audio::PhoneCodec) -> ModelAudio {
        match self {
            ModelLeg::Realtime(_) => RealtimeSession::choose_audio(phone),
        }
    }

    /// Fixes the audio format and the instructions, and returns where to connect.
    pub(crate) fn connect(&mut self, audio: ModelAudio, instructions: String) -> ConnectRequest {
        match self {
            ModelLeg::Realtime(s) => s.connect(audio, instructions),
        }
    }

    pub(crate) fn handle_opened(&mut self, now: Instant) {
        match self {
            ModelLeg::Realtime(s) => s.handle_opened(now),
        }
    }

    pub(crate) fn handle_text(&mut self, now: Instant, text: &str) {
        match self {
            ModelLeg::Realtime(s) => s.handle_text(now, text),
        }
    }

    pub(crate) fn send_audio(&mut self, audio: &[u8]) {
        match self {
            ModelLeg::Realtime(s) => s.send_audio(audio),
        }
    }

    /// Tells the model something the caller did (DTMF) and lets it answer.
    pub(crate) fn send_user_text(&mut self, text: &str) {
        match self {
            ModelLeg::Realtime(s) => s.send_user_text(text),
        }
    }

    /// Asks the model to speak (the greeting).
    pub(crate) fn request_response(&mut self) {
        match self {
            ModelLeg::Realtime(s) => s.request_response(),
        }
    }

    pub(crate) fn send_tool_output(&mut self, call_id: &str, output: &str) {
        match self {
            ModelLeg::Realtime(s) => s.send_tool_output(call_id, output),
        }
    }

    /// The caller interrupted; `heard` is the item that was playing and the ms the caller heard.
    pub(crate) fn interrupted(&mut self, heard: Option<(&str, u32)>) {
        match self {
            ModelLeg::Realtime(s) => s.interrupted(heard),
        }
    }

    /// No more responses will be asked for: the call is hanging up.
    pub(crate) fn stop_responding(&mut self) {
        match self {
            ModelLeg::Realtime(s) => s.stop_responding(),
        }
    }

    /// Whether the model is neither speaking nor about to.
    pub(crate) fn is_idle(&self) -> bool {
        match self {
            ModelLeg::Realtime(s) => s.is_idle(),
        }
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<String> {
        match self {
            ModelLeg::Realtime(s) => s.poll_transmit(),
        }
    }

    pub(crate) fn poll_event(&mut self) -> Option<ModelEvent> {
        match self {
            ModelLeg::Realtime(s) => s.poll_event(),
        }
    }
}
