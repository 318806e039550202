//! Realtime GA wire format: client events we send, server events we read (STUB: helper fills in).

use crate::config::{ToolSpec, TurnDetection};

/// `audio.input.format` / `audio.output.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealtimeAudioFormat {
    /// `{"type":"audio/pcmu"}`.
    Pcmu,
    /// `{"type":"audio/pcma"}`.
    Pcma,
    /// `{"type":"audio/pcm","rate":24000}`.
    Pcm24k,
}

/// What goes into `session.update`'s `session`.
#[derive(Debug, Clone)]
pub struct SessionSettings<'a> {
    /// Model name.
    pub model: &'a str,
    /// Instructions.
    pub instructions: &'a str,
    /// Voice.
    pub voice: &'a str,
    /// Caller audio format.
    pub input_format: RealtimeAudioFormat,
    /// Model audio format.
    pub output_format: RealtimeAudioFormat,
    /// Server VAD.
    pub turn_detection: &'a TurnDetection,
    /// Caller transcription model, if any.
    pub transcription_model: Option<&'a str>,
    /// Function tools (application and built-in).
    pub tools: &'a [ToolSpec],
}

/// The `session` object (shared by `session.update` and WebRTC call creation).
pub fn session_object(_s: &SessionSettings<'_>) -> serde_json::Value { unimplemented!() }
/// `session.update`.
pub fn session_update(_event_id: &str, _s: &SessionSettings<'_>) -> String { unimplemented!() }
/// `input_audio_buffer.append` with the audio base64-encoded.
pub fn input_audio_append(_audio: &[u8]) -> String { unimplemented!() }
/// `response.create` with no overrides.
pub fn response_create(_event_id: &str) -> String { unimplemented!() }
/// `response.cancel`.
pub fn response_cancel(_event_id: &str) -> String { unimplemented!() }
/// `conversation.item.truncate` (content index 0).
pub fn item_truncate(_event_id: &str, _item_id: &str, _audio_end_ms: u32) -> String { unimplemented!() }
/// `conversation.item.create` with a user `input_text` message.
pub fn user_text_item(_event_id: &str, _text: &str) -> String { unimplemented!() }
/// `conversation.item.create` with a `function_call_output`.
pub fn function_call_output(_event_id: &str, _call_id: &str, _output: &str) -> String { unimplemented!() }
/// `output_audio_buffer.clear` (WebRTC only).
pub fn output_audio_buffer_clear(_event_id: &str) -> String { unimplemented!() }

/// Token usage from `response.done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// `usage.input_tokens`.
    pub input_tokens: u64,
    /// `usage.output_tokens`.
    pub output_tokens: u64,
    /// `usage.total_tokens`.
    pub total_tokens: u64,
}

/// An output item of a response.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputItem {
    /// `type: function_call`.
    FunctionCall {
        /// Item id.
        item_id: String,
        /// `call_id`.
        call_id: String,
        /// `name`.
        name: String,
        /// `arguments` (a JSON string).
        arguments: String,
        /// `status` (`completed`, `in_progress`, `incomplete`).
        status: String,
    },
    /// `type: message`, or anything else.
    Other {
        /// Item id, when present.
        item_id: Option<String>,
    },
}

/// A server event the bridge acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// `session.created`.
    SessionCreated,
    /// `session.updated`.
    SessionUpdated,
    /// `input_audio_buffer.speech_started`.
    SpeechStarted {
        /// `item_id`.
        item_id: Option<String>,
    },
    /// `input_audio_buffer.speech_stopped`.
    SpeechStopped {
        /// `item_id`.
        item_id: Option<String>,
    },
    /// `conversation.item.input_audio_transcription.completed`.
    InputTranscript {
        /// `item_id`.
        item_id: String,
        /// `transcript`.
        transcript: String,
    },
    /// `response.created`.
    ResponseCreated {
        /// `response.id`.
        response_id: String,
    },
    /// `response.output_item.done`.
    OutputItemDone {
        /// `response_id`.
        response_id: String,
        /// `item`.
        item: OutputItem,
    },
    /// `response.output_audio.delta`, audio base64-decoded.
    AudioDelta {
        /// `response_id`.
        response_id: String,
        /// `item_id`.
        item_id: String,
        /// Decoded audio.
        audio: Vec<u8>,
    },
    /// `response.output_audio.done`.
    AudioDone {
        /// `response_id`.
        response_id: String,
        /// `item_id`.
        item_id: String,
    },
    /// `response.output_audio_transcript.done`.
    AudioTranscriptDone {
        /// `response_id`.
        response_id: String,
        /// `item_id`.
        item_id: String,
        /// `transcript`.
        transcript: String,
    },
    /// `response.done`.
    ResponseDone {
        /// `response.id` (may be absent in races).
        response_id: Option<String>,
        /// `response.status`.
        status: String,
        /// `response.status_details.error.code`, on failure.
        error_code: Option<String>,
        /// `response.usage`.
        usage: Option<Usage>,
    },
    /// `conversation.item.truncated`.
    Truncated {
        /// `item_id`.
        item_id: String,
        /// `audio_end_ms`.
        audio_end_ms: u32,
    },
    /// `output_audio_buffer.started`.
    OutputAudioStarted {
        /// `response_id`.
        response_id: Option<String>,
    },
    /// `output_audio_buffer.stopped`.
    OutputAudioStopped {
        /// `response_id`.
        response_id: Option<String>,
    },
    /// `output_audio_buffer.cleared`.
    OutputAudioCleared {
        /// `response_id`.
        response_id: Option<String>,
    },
    /// `error`.
    Error {
        /// `error.type`.
        kind: Option<String>,
        /// `error.code`.
        code: Option<String>,
        /// `error.message`.
        message: String,
        /// `error.event_id`: the client event that caused it.
        event_id: Option<String>,
    },
    /// A documented event the bridge does not act on (its `type`).
    Ignored(String),
}

/// A server event that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not JSON or not the documented shape.
    #[error("malformed server event: {0}")]
    Malformed(String),
    /// A `type` that is not in the GA protocol.
    #[error("unknown server event type {0:?}")]
    UnknownType(String),
    /// Audio that is not base64.
    #[error("audio delta is not base64")]
    BadBase64,
}

/// Parses one text frame from OpenAI.
pub fn parse_server_event(_text: &str) -> Result<ServerEvent, EventError> { unimplemented!() }
