//! Realtime GA wire format: client events we send, server events we read.
//!
//! Only the GA shapes exist here: the beta API is shut down, and GA rejects a whole
//! `session.update` that carries a beta field name, so none is ever written. Beta server
//! event names are reported as [`EventError::UnknownType`] rather than tolerated, so a
//! misrouted beta endpoint shows up at once instead of as a silent call.
//!
//! `input_audio_append` and the `response.output_audio.delta` branch of
//! [`parse_server_event`] run about 50 times per second per call in each direction, so
//! they skip `serde_json::Value` and copy the audio once.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

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

impl RealtimeAudioFormat {
    /// The GA format object.
    fn to_json(self) -> Value {
        match self {
            RealtimeAudioFormat::Pcmu => json!({"type": "audio/pcmu"}),
            RealtimeAudioFormat::Pcma => json!({"type": "audio/pcma"}),
            RealtimeAudioFormat::Pcm24k => json!({"type": "audio/pcm", "rate": 24000}),
        }
    }
}

/// The `session` object (shared by `session.update` and WebRTC call creation).
///
/// `tools` is always present (possibly empty) so that an update replaces the tool list.
/// `audio.input.transcription` is present only when a transcription model is set.
/// A non-finite VAD threshold is left out, so the server keeps its default.
pub fn session_object(s: &SessionSettings<'_>) -> Value {
    let mut input = serde_json::Map::new();
    input.insert("format".to_owned(), s.input_format.to_json());
    if let Some(model) = s.transcription_model {
        input.insert("transcription".to_owned(), json!({ "model": model }));
    }
    input.insert(
        "turn_detection".to_owned(),
        turn_detection(s.turn_detection),
    );
    let tools: Vec<Value> = s.tools.iter().map(tool).collect();
    json!({
        "type": "realtime",
        "model": s.model,
        "instructions": s.instructions,
        "output_modalities": ["audio"],
        "audio": {
            "input": input,
            "output": {
                "format": s.output_format.to_json(),
                "voice": s.voice,
            },
        },
        "tools": tools,
        "tool_choice": "auto",
    })
}

/// `audio.input.turn_detection`, always `server_vad`.
fn turn_detection(t: &TurnDetection) -> Value {
    let mut v = json!({
        "type": "server_vad",
        "prefix_padding_ms": t.prefix_padding_ms,
        "silence_duration_ms": t.silence_duration_ms,
        "create_response": t.create_response,
        "interrupt_response": t.interrupt_response,
    });
    if let (Some(n), Some(obj)) = (threshold_number(t.threshold), v.as_object_mut()) {
        obj.insert("threshold".to_owned(), Value::Number(n));
    }
    v
}

/// The threshold as the decimal the user wrote: a plain `f32 as f64` would send
/// 0.55 as 0.550000011920929. `None` for NaN or infinity, which JSON cannot carry.
fn threshold_number(x: f32) -> Option<serde_json::Number> {
    let shortest: f64 = x.to_string().parse().ok()?;
    serde_json::Number::from_f64(shortest)
}

/// One function tool (`ToolSpec::timeout` is ours and never sent).
fn tool(t: &ToolSpec) -> Value {
    json!({
        "type": "function",
        "name": t.name,
        "description": t.description,
        "parameters": t.parameters,
    })
}

/// `session.update`.
///
/// Send after `session.created`; the server answers `session.updated`.
pub fn session_update(event_id: &str, s: &SessionSettings<'_>) -> String {
    json!({
        "type": "session.update",
        "event_id": event_id,
        "session": session_object(s),
    })
    .to_string()
}

/// Everything before the base64 in `input_audio_buffer.append`.
const APPEND_HEAD: &str = r#"{"type":"input_audio_buffer.append","audio":""#;
/// Everything after it.
const APPEND_TAIL: &str = r#""}"#;

/// `input_audio_buffer.append` with the audio base64-encoded.
///
/// Carries no `event_id`: the server never acknowledges an append. One allocation,
/// sized exactly; base64 needs no JSON escaping, so it is written in place.
pub fn input_audio_append(audio: &[u8]) -> String {
    let b64_len = base64::encoded_len(audio.len(), true).unwrap_or(0);
    let mut out = String::with_capacity(APPEND_HEAD.len() + b64_len + APPEND_TAIL.len());
    out.push_str(APPEND_HEAD);
    STANDARD.encode_string(audio, &mut out);
    out.push_str(APPEND_TAIL);
    out
}

/// `response.create` with no overrides.
///
/// Send only when no response is active (after `response.done`), or the server
/// answers `conversation_already_has_active_response`.
pub fn response_create(event_id: &str) -> String {
    json!({"type": "response.create", "event_id": event_id}).to_string()
}

/// `response.cancel`.
///
/// Without `response_id` it cancels the active response; the server answers
/// `response.done` with status `cancelled`, or the harmless `response_cancel_not_active`.
pub fn response_cancel(event_id: &str) -> String {
    json!({"type": "response.cancel", "event_id": event_id}).to_string()
}

/// `conversation.item.truncate` (content index 0).
///
/// `audio_end_ms` is the assistant audio the caller actually heard; the server rejects
/// values past the end of its copy of the item.
pub fn item_truncate(event_id: &str, item_id: &str, audio_end_ms: u32) -> String {
    json!({
        "type": "conversation.item.truncate",
        "event_id": event_id,
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    })
    .to_string()
}

/// `conversation.item.create` with a user `input_text` message.
pub fn user_text_item(event_id: &str, text: &str) -> String {
    json!({
        "type": "conversation.item.create",
        "event_id": event_id,
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    })
    .to_string()
}

/// `conversation.item.create` with a `function_call_output`.
///
/// May be sent while a response is active; the `response.create` that makes the model
/// use it may not.
pub fn function_call_output(event_id: &str, call_id: &str, output: &str) -> String {
    json!({
        "type": "conversation.item.create",
        "event_id": event_id,
        "item": {
            "type": "function_call_output",
            "call_id": call_id,
            "output": output,
        },
    })
    .to_string()
}

/// `output_audio_buffer.clear` (WebRTC only).
///
/// Follows a `response.cancel`; the server answers `output_audio_buffer.cleared`.
pub fn output_audio_buffer_clear(event_id: &str) -> String {
    json!({"type": "output_audio_buffer.clear", "event_id": event_id}).to_string()
}

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
    /// `response.output_audio_transcript.delta`: the next piece of the spoken line.
    AudioTranscriptDelta {
        /// `response_id`.
        response_id: String,
        /// `item_id`.
        item_id: String,
        /// `delta`.
        delta: String,
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

/// GA server event types the bridge does not act on: they parse as
/// [`ServerEvent::Ignored`] so that only names outside the GA protocol are errors.
///
/// From the GA server-event union (openai-python `types/realtime/realtime_server_event.py`)
/// plus `transcription_session.*`, which transcription sessions still send.
const IGNORED_TYPES: &[&str] = &[
    "conversation.created",
    "conversation.item.added",
    "conversation.item.done",
    "conversation.item.created",
    "conversation.item.retrieved",
    "conversation.item.deleted",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.failed",
    "conversation.item.input_audio_transcription.segment",
    "input_audio_buffer.committed",
    "input_audio_buffer.cleared",
    "input_audio_buffer.timeout_triggered",
    "input_audio_buffer.dtmf_event_received",
    "response.output_item.added",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.delta",
    "response.output_text.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.done",
    "response.mcp_call.in_progress",
    "response.mcp_call.completed",
    "response.mcp_call.failed",
    "mcp_list_tools.in_progress",
    "mcp_list_tools.completed",
    "mcp_list_tools.failed",
    "rate_limits.updated",
    "transcription_session.created",
    "transcription_session.updated",
];

/// The first look at a frame: only `type`, everything else skipped unparsed.
/// `Cow` so that a `type` with JSON escapes still works.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

/// `response.output_audio.delta`; `delta` borrowed so the base64 is read in place.
#[derive(Deserialize)]
struct AudioDeltaWire<'a> {
    response_id: String,
    item_id: String,
    #[serde(borrow)]
    delta: Cow<'a, str>,
}

/// Events whose only field of interest is an optional `item_id`.
#[derive(Deserialize)]
struct OptItemIdWire {
    item_id: Option<String>,
}

/// Events whose only field of interest is an optional `response_id`.
#[derive(Deserialize)]
struct OptResponseIdWire {
    response_id: Option<String>,
}

/// `conversation.item.input_audio_transcription.completed`.
#[derive(Deserialize)]
struct InputTranscriptWire {
    item_id: String,
    transcript: String,
}

/// `response.created`.
#[derive(Deserialize)]
struct ResponseCreatedWire {
    response: ResponseIdWire,
}

/// The `response` object of `response.created`.
#[derive(Deserialize)]
struct ResponseIdWire {
    id: String,
}

/// `response.output_item.done`.
#[derive(Deserialize)]
struct OutputItemDoneWire {
    response_id: String,
    item: ItemWire,
}

/// An output item. The function-call fields are read loosely (any JSON) because other
/// item types (MCP calls, future ones) may use the same names with other shapes; they
/// must be strings only when `type` is `function_call`.
#[derive(Deserialize)]
struct ItemWire {
    #[serde(rename = "type")]
    kind: String,
    id: Option<Value>,
    call_id: Option<Value>,
    name: Option<Value>,
    arguments: Option<Value>,
    status: Option<Value>,
}

/// `response.output_audio.done`.
#[derive(Deserialize)]
struct AudioDoneWire {
    response_id: String,
    item_id: String,
}

/// `response.output_audio_transcript.delta`.
#[derive(Deserialize)]
struct TranscriptDeltaWire {
    response_id: String,
    item_id: String,
    delta: String,
}

/// `response.output_audio_transcript.done`.
#[derive(Deserialize)]
struct TranscriptDoneWire {
    response_id: String,
    item_id: String,
    transcript: String,
}

/// `response.done`.
#[derive(Deserialize)]
struct ResponseDoneWire {
    response: ResponseDoneBody,
}

/// The `response` object of `response.done`; `output` and the rest are skipped.
#[derive(Deserialize)]
struct ResponseDoneBody {
    id: Option<String>,
    status: String,
    status_details: Option<StatusDetailsWire>,
    usage: Option<UsageWire>,
}

/// `response.status_details`.
#[derive(Deserialize)]
struct StatusDetailsWire {
    error: Option<StatusErrorWire>,
}

/// `response.status_details.error`.
#[derive(Deserialize)]
struct StatusErrorWire {
    code: Option<String>,
}

/// `response.usage`; counts the server leaves out read as 0.
#[derive(Deserialize)]
struct UsageWire {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
}

/// `conversation.item.truncated`.
#[derive(Deserialize)]
struct TruncatedWire {
    item_id: String,
    audio_end_ms: u32,
}

/// `error`.
#[derive(Deserialize)]
struct ErrorWire {
    error: ErrorBody,
}

/// The `error` object; `param` is skipped.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    message: String,
    event_id: Option<String>,
}

/// Deserializes the whole frame as `T`; a shape mismatch is [`EventError::Malformed`].
fn body<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, EventError> {
    serde_json::from_str(text).map_err(|e| EventError::Malformed(e.to_string()))
}

/// Parses one text frame from OpenAI.
///
/// Unknown fields are ignored everywhere. Documented GA events the bridge does not use
/// come back as [`ServerEvent::Ignored`].
///
/// # Errors
///
/// - [`EventError::Malformed`]: not JSON, no string `type`, or a field the bridge needs
///   is missing or of the wrong type.
/// - [`EventError::UnknownType`]: a `type` outside the GA protocol, beta names included.
/// - [`EventError::BadBase64`]: an audio delta that is not standard padded base64.
pub fn parse_server_event(text: &str) -> Result<ServerEvent, EventError> {
    let envelope: Envelope<'_> = body(text)?;
    match envelope.kind.as_ref() {
        // The hot path first: audio arrives about 50 times per second.
        "response.output_audio.delta" => {
            let w: AudioDeltaWire<'_> = body(text)?;
            let mut audio = Vec::new();
            STANDARD
                .decode_vec(w.delta.as_bytes(), &mut audio)
                .map_err(|_| EventError::BadBase64)?;
            Ok(ServerEvent::AudioDelta {
                response_id: w.response_id,
                item_id: w.item_id,
                audio,
            })
        }
        "session.created" => Ok(ServerEvent::SessionCreated),
        "session.updated" => Ok(ServerEvent::SessionUpdated),
        "input_audio_buffer.speech_started" => {
            let w: OptItemIdWire = body(text)?;
            Ok(ServerEvent::SpeechStarted { item_id: w.item_id })
        }
        "input_audio_buffer.speech_stopped" => {
            let w: OptItemIdWire = body(text)?;
            Ok(ServerEvent::SpeechStopped { item_id: w.item_id })
        }
        "conversation.item.input_audio_transcription.completed" => {
            let w: InputTranscriptWire = body(text)?;
            Ok(ServerEvent::InputTranscript {
                item_id: w.item_id,
                transcript: w.transcript,
            })
        }
        "response.created" => {
            let w: ResponseCreatedWire = body(text)?;
            Ok(ServerEvent::ResponseCreated {
                response_id: w.response.id,
            })
        }
        "response.output_item.done" => {
            let w: OutputItemDoneWire = body(text)?;
            Ok(ServerEvent::OutputItemDone {
                response_id: w.response_id,
                item: output_item(w.item)?,
            })
        }
        "response.output_audio.done" => {
            let w: AudioDoneWire = body(text)?;
            Ok(ServerEvent::AudioDone {
                response_id: w.response_id,
                item_id: w.item_id,
            })
        }
        "response.output_audio_transcript.delta" => {
            let w: TranscriptDeltaWire = body(text)?;
            Ok(ServerEvent::AudioTranscriptDelta {
                response_id: w.response_id,
                item_id: w.item_id,
                delta: w.delta,
            })
        }
        "response.output_audio_transcript.done" => {
            let w: TranscriptDoneWire = body(text)?;
            Ok(ServerEvent::AudioTranscriptDone {
                response_id: w.response_id,
                item_id: w.item_id,
                transcript: w.transcript,
            })
        }
        "response.done" => {
            let w: ResponseDoneWire = body(text)?;
            let r = w.response;
            Ok(ServerEvent::ResponseDone {
                response_id: r.id,
                status: r.status,
                error_code: r.status_details.and_then(|d| d.error).and_then(|e| e.code),
                usage: r.usage.map(|u| Usage {
                    input_tokens: u.input_tokens,
                    output_tokens: u.output_tokens,
                    total_tokens: u.total_tokens,
                }),
            })
        }
        "conversation.item.truncated" => {
            let w: TruncatedWire = body(text)?;
            Ok(ServerEvent::Truncated {
                item_id: w.item_id,
                audio_end_ms: w.audio_end_ms,
            })
        }
        "output_audio_buffer.started" => {
            let w: OptResponseIdWire = body(text)?;
            Ok(ServerEvent::OutputAudioStarted {
                response_id: w.response_id,
            })
        }
        "output_audio_buffer.stopped" => {
            let w: OptResponseIdWire = body(text)?;
            Ok(ServerEvent::OutputAudioStopped {
                response_id: w.response_id,
            })
        }
        "output_audio_buffer.cleared" => {
            let w: OptResponseIdWire = body(text)?;
            Ok(ServerEvent::OutputAudioCleared {
                response_id: w.response_id,
            })
        }
        "error" => {
            let w: ErrorWire = body(text)?;
            Ok(ServerEvent::Error {
                kind: w.error.kind,
                code: w.error.code,
                message: w.error.message,
                event_id: w.error.event_id,
            })
        }
        other if IGNORED_TYPES.contains(&other) => Ok(ServerEvent::Ignored(other.to_owned())),
        other => Err(EventError::UnknownType(other.to_owned())),
    }
}

/// Turns a wire item into an [`OutputItem`], insisting on the function-call fields only
/// for function calls.
fn output_item(item: ItemWire) -> Result<OutputItem, EventError> {
    if item.kind != "function_call" {
        return Ok(OutputItem::Other {
            item_id: item.id.and_then(string_value),
        });
    }
    Ok(OutputItem::FunctionCall {
        item_id: required(item.id, "id")?,
        call_id: required(item.call_id, "call_id")?,
        name: required(item.name, "name")?,
        arguments: required(item.arguments, "arguments")?,
        status: required(item.status, "status")?,
    })
}

/// A loosely read field that must be a string.
fn required(v: Option<Value>, field: &str) -> Result<String, EventError> {
    v.and_then(string_value).ok_or_else(|| {
        EventError::Malformed(format!("function_call item needs a string `{field}`"))
    })
}

/// The string inside a JSON string, without copying it.
fn string_value(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_) => {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn vad() -> TurnDetection {
        TurnDetection::default()
    }

    fn lookup_tool() -> ToolSpec {
        ToolSpec {
            name: "lookup_order".to_owned(),
            description: "Find an order by id".to_owned(),
            parameters: json!({
                "type": "object",
                "properties": {"id": {"type": "string"}},
                "required": ["id"],
            }),
            timeout: Duration::from_secs(5),
            webhook: None,
            filler: None,
        }
    }

    fn settings<'a>(
        td: &'a TurnDetection,
        tools: &'a [ToolSpec],
        format: RealtimeAudioFormat,
        transcription: Option<&'a str>,
    ) -> SessionSettings<'a> {
        SessionSettings {
            model: "gpt-realtime-2.1",
            instructions: "You are Barbara.",
            voice: "marin",
            input_format: format,
            output_format: format,
            turn_detection: td,
            transcription_model: transcription,
            tools,
        }
    }

    fn vad_json() -> Value {
        json!({
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
            "create_response": true,
            "interrupt_response": true,
        })
    }

    // ---- client events ----

    #[test]
    fn session_object_pcmu_with_transcription_and_tools() {
        let td = vad();
        let tools = [lookup_tool()];
        let s = settings(
            &td,
            &tools,
            RealtimeAudioFormat::Pcmu,
            Some("gpt-4o-mini-transcribe"),
        );
        let expected = json!({
            "type": "realtime",
            "model": "gpt-realtime-2.1",
            "instructions": "You are Barbara.",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {"model": "gpt-4o-mini-transcribe"},
                    "turn_detection": vad_json(),
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
            },
            "tools": [{
                "type": "function",
                "name": "lookup_order",
                "description": "Find an order by id",
                "parameters": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}},
                    "required": ["id"],
                },
            }],
            "tool_choice": "auto",
        });
        assert_eq!(session_object(&s), expected);
    }

    #[test]
    fn session_object_pcma_without_transcription_or_tools() {
        let td = vad();
        let s = settings(&td, &[], RealtimeAudioFormat::Pcma, None);
        let expected = json!({
            "type": "realtime",
            "model": "gpt-realtime-2.1",
            "instructions": "You are Barbara.",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcma"},
                    "turn_detection": vad_json(),
                },
                "output": {"format": {"type": "audio/pcma"}, "voice": "marin"},
            },
            "tools": [],
            "tool_choice": "auto",
        });
        assert_eq!(session_object(&s), expected);
    }

    #[test]
    fn session_object_pcm24k_carries_rate() {
        let td = vad();
        let s = settings(&td, &[], RealtimeAudioFormat::Pcm24k, Some("whisper-1"));
        let v = session_object(&s);
        let pcm = json!({"type": "audio/pcm", "rate": 24000});
        assert_eq!(v["audio"]["input"]["format"], pcm);
        assert_eq!(v["audio"]["output"]["format"], pcm);
        assert_eq!(
            v["audio"]["input"]["transcription"],
            json!({"model": "whisper-1"})
        );
    }

    #[test]
    fn session_object_mixed_formats_are_independent() {
        let td = vad();
        let mut s = settings(&td, &[], RealtimeAudioFormat::Pcmu, None);
        s.output_format = RealtimeAudioFormat::Pcm24k;
        let v = session_object(&s);
        assert_eq!(v["audio"]["input"]["format"], json!({"type": "audio/pcmu"}));
        assert_eq!(
            v["audio"]["output"]["format"],
            json!({"type": "audio/pcm", "rate": 24000})
        );
    }

    #[test]
    fn session_object_has_no_beta_field_names() {
        let td = vad();
        let tools = [lookup_tool()];
        let s = settings(&td, &tools, RealtimeAudioFormat::Pcmu, Some("whisper-1"));
        let text = session_object(&s).to_string();
        for beta in [
            "\"modalities\"",
            "input_audio_format",
            "output_audio_format",
            "input_audio_transcription",
            "temperature",
            "max_response_output_tokens",
            "g711_ulaw",
            "pcm16",
        ] {
            assert!(!text.contains(beta), "{beta} in {text}");
        }
        let v = session_object(&s);
        let top = v.as_object().unwrap();
        assert!(!top.contains_key("voice"));
        assert!(!top.contains_key("turn_detection"));
    }

    #[test]
    fn session_object_sends_threshold_as_written_decimal() {
        let td = TurnDetection {
            threshold: 0.55,
            prefix_padding_ms: 200,
            silence_duration_ms: 700,
            create_response: false,
            interrupt_response: false,
        };
        let s = settings(&td, &[], RealtimeAudioFormat::Pcmu, None);
        let v = session_object(&s);
        assert_eq!(
            v["audio"]["input"]["turn_detection"],
            json!({
                "type": "server_vad",
                "threshold": 0.55,
                "prefix_padding_ms": 200,
                "silence_duration_ms": 700,
                "create_response": false,
                "interrupt_response": false,
            })
        );
        assert!(v.to_string().contains("\"threshold\":0.55"));
    }

    #[test]
    fn session_object_leaves_out_non_finite_threshold() {
        let td = TurnDetection {
            threshold: f32::NAN,
            ..TurnDetection::default()
        };
        let s = settings(&td, &[], RealtimeAudioFormat::Pcmu, None);
        let v = session_object(&s);
        let vad = v["audio"]["input"]["turn_detection"].as_object().unwrap();
        assert!(!vad.contains_key("threshold"));
        assert_eq!(vad["type"], "server_vad");
    }

    #[test]
    fn session_update_wraps_session_object_with_event_id() {
        let td = vad();
        let tools = [lookup_tool()];
        let s = settings(&td, &tools, RealtimeAudioFormat::Pcmu, None);
        assert_eq!(
            parsed(&session_update("evt_1", &s)),
            json!({
                "type": "session.update",
                "event_id": "evt_1",
                "session": session_object(&s),
            })
        );
    }

    #[test]
    fn input_audio_append_encodes_standard_base64_without_event_id() {
        let text = input_audio_append(&[0xff, 0x7f, 0x00, 0xfb, 0xef]);
        assert_eq!(
            parsed(&text),
            json!({"type": "input_audio_buffer.append", "audio": "/38A++8="})
        );
        assert_eq!(text.len(), text.capacity());
    }

    #[test]
    fn input_audio_append_of_nothing_is_valid_json() {
        assert_eq!(
            parsed(&input_audio_append(&[])),
            json!({"type": "input_audio_buffer.append", "audio": ""})
        );
    }

    #[test]
    fn input_audio_append_round_trips_a_20ms_frame() {
        let frame: Vec<u8> = (0..160u8).collect();
        let v = parsed(&input_audio_append(&frame));
        let audio = STANDARD.decode(v["audio"].as_str().unwrap()).unwrap();
        assert_eq!(audio, frame);
    }

    #[test]
    fn response_create_has_type_and_event_id_only() {
        assert_eq!(
            parsed(&response_create("evt_2")),
            json!({"type": "response.create", "event_id": "evt_2"})
        );
    }

    #[test]
    fn response_cancel_has_type_and_event_id_only() {
        assert_eq!(
            parsed(&response_cancel("evt_3")),
            json!({"type": "response.cancel", "event_id": "evt_3"})
        );
    }

    #[test]
    fn item_truncate_uses_content_index_zero_and_integer_ms() {
        assert_eq!(
            parsed(&item_truncate("evt_4", "item_abc", 1234)),
            json!({
                "type": "conversation.item.truncate",
                "event_id": "evt_4",
                "item_id": "item_abc",
                "content_index": 0,
                "audio_end_ms": 1234,
            })
        );
    }

    #[test]
    fn user_text_item_is_an_input_text_message() {
        assert_eq!(
            parsed(&user_text_item("evt_5", "The caller pressed \"1\".\n")),
            json!({
                "type": "conversation.item.create",
                "event_id": "evt_5",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "The caller pressed \"1\".\n"}],
                },
            })
        );
    }

    #[test]
    fn function_call_output_carries_call_id_and_string_output() {
        assert_eq!(
            parsed(&function_call_output(
                "evt_6",
                "call_9",
                r#"{"status":"shipped"}"#
            )),
            json!({
                "type": "conversation.item.create",
                "event_id": "evt_6",
                "item": {
                    "type": "function_call_output",
                    "call_id": "call_9",
                    "output": "{\"status\":\"shipped\"}",
                },
            })
        );
    }

    #[test]
    fn output_audio_buffer_clear_has_type_and_event_id_only() {
        assert_eq!(
            parsed(&output_audio_buffer_clear("evt_7")),
            json!({"type": "output_audio_buffer.clear", "event_id": "evt_7"})
        );
    }

    // ---- server events ----

    fn ok(text: &str) -> ServerEvent {
        match parse_server_event(text) {
            Ok(ev) => ev,
            Err(e) => panic!("{e} for {text}"),
        }
    }

    #[test]
    fn session_created_and_updated_parse() {
        let created = r#"{"type":"session.created","event_id":"event_C9G5RJeJ2gF77mV7f2B1j",
            "session":{"type":"realtime","object":"realtime.session","id":"sess_C9G5QPteg4UIbotdKLoYQ",
            "model":"gpt-realtime-2.1","output_modalities":["audio"],"instructions":"",
            "tools":[],"tool_choice":"auto","max_output_tokens":"inf","tracing":null,
            "prompt":null,"expires_at":1756324625,
            "audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"transcription":null,
            "noise_reduction":null,"turn_detection":{"type":"server_vad","threshold":0.5,
            "prefix_padding_ms":300,"silence_duration_ms":200,"idle_timeout_ms":null,
            "create_response":true,"interrupt_response":true}},
            "output":{"format":{"type":"audio/pcm","rate":24000},"voice":"marin","speed":1.0}},
            "include":null}}"#;
        assert_eq!(ok(created), ServerEvent::SessionCreated);
        let updated = created.replace("session.created", "session.updated");
        assert_eq!(ok(&updated), ServerEvent::SessionUpdated);
    }

    #[test]
    fn speech_started_and_stopped_parse_item_id() {
        assert_eq!(
            ok(
                r#"{"type":"input_audio_buffer.speech_started","event_id":"event_B1","audio_start_ms":1000,"item_id":"item_003"}"#
            ),
            ServerEvent::SpeechStarted {
                item_id: Some("item_003".to_owned())
            }
        );
        assert_eq!(
            ok(
                r#"{"type":"input_audio_buffer.speech_stopped","event_id":"event_B2","audio_end_ms":2000,"item_id":"item_003"}"#
            ),
            ServerEvent::SpeechStopped {
                item_id: Some("item_003".to_owned())
            }
        );
        assert_eq!(
            ok(r#"{"type":"input_audio_buffer.speech_started","event_id":"e","audio_start_ms":5}"#),
            ServerEvent::SpeechStarted { item_id: None }
        );
    }

    #[test]
    fn input_transcription_completed_parses() {
        let text = r#"{"type":"conversation.item.input_audio_transcription.completed",
            "event_id":"event_CCXGRvtUVrax5SJAnNOWZ","item_id":"item_CCXGQ4e1ht4cOraEYcuR2",
            "content_index":0,"transcript":"Hey, can you hear me?","logprobs":null,
            "usage":{"type":"tokens","total_tokens":22,"input_tokens":13,
            "input_token_details":{"text_tokens":0,"audio_tokens":13},"output_tokens":9}}"#;
        assert_eq!(
            ok(text),
            ServerEvent::InputTranscript {
                item_id: "item_CCXGQ4e1ht4cOraEYcuR2".to_owned(),
                transcript: "Hey, can you hear me?".to_owned(),
            }
        );
    }

    #[test]
    fn response_created_parses_response_id() {
        let text = r#"{"type":"response.created","event_id":"event_C9G8pqbTEddBSIxbBN6Os",
            "response":{"object":"realtime.response","id":"resp_C9G8p7IH2WxLbkgPNouYL",
            "status":"in_progress","status_details":null,"output":[],"conversation_id":"conv_C9G8mmBkLhQJwCon3hoJN",
            "output_modalities":["audio"],"max_output_tokens":"inf",
            "audio":{"output":{"format":{"type":"audio/pcmu"},"voice":"marin"}},
            "usage":null,"metadata":null}}"#;
        assert_eq!(
            ok(text),
            ServerEvent::ResponseCreated {
                response_id: "resp_C9G8p7IH2WxLbkgPNouYL".to_owned()
            }
        );
    }

    #[test]
    fn output_item_done_function_call_parses() {
        let text = r#"{"type":"response.output_item.done","event_id":"event_CCXHxcJ8b1ZyNMK4GtvOz",
            "response_id":"resp_CCXHw8rTZp1jSqwKmExGE","output_index":1,
            "item":{"id":"item_CCXHwGKI6QuCBpqDgrvl2","type":"function_call","status":"completed",
            "name":"lookup_order","call_id":"call_Kf3WqmYbDO6Hj2uU","arguments":"{\"id\":\"A-42\"}",
            "object":"realtime.item"}}"#;
        assert_eq!(
            ok(text),
            ServerEvent::OutputItemDone {
                response_id: "resp_CCXHw8rTZp1jSqwKmExGE".to_owned(),
                item: OutputItem::FunctionCall {
                    item_id: "item_CCXHwGKI6QuCBpqDgrvl2".to_owned(),
                    call_id: "call_Kf3WqmYbDO6Hj2uU".to_owned(),
                    name: "lookup_order".to_owned(),
                    arguments: r#"{"id":"A-42"}"#.to_owned(),
                    status: "completed".to_owned(),
                },
            }
        );
    }

    #[test]
    fn output_item_done_message_with_phase_is_other() {
        let text = r#"{"type":"response.output_item.done","event_id":"event_1",
            "response_id":"resp_1","output_index":0,
            "item":{"id":"item_msg_1","type":"message","status":"completed","role":"assistant",
            "phase":"commentary","object":"realtime.item",
            "content":[{"type":"output_audio","transcript":"Let me check that order."}]}}"#;
        assert_eq!(
            ok(text),
            ServerEvent::OutputItemDone {
                response_id: "resp_1".to_owned(),
                item: OutputItem::Other {
                    item_id: Some("item_msg_1".to_owned())
                },
            }
        );
    }

    #[test]
    fn output_item_done_tolerates_other_item_shapes() {
        // An MCP item reuses `name`/`arguments`; odd shapes there must not matter.
        let text = r#"{"type":"response.output_item.done","event_id":"e","response_id":"resp_2",
            "item":{"type":"mcp_list_tools","server_label":"s","tools":[{"name":"x"}],
            "name":{"not":"a string"},"status":7}}"#;
        assert_eq!(
            ok(text),
            ServerEvent::OutputItemDone {
                response_id: "resp_2".to_owned(),
                item: OutputItem::Other { item_id: None },
            }
        );
    }

    #[test]
    fn function_call_item_without_call_id_is_malformed() {
        let text = r#"{"type":"response.output_item.done","event_id":"e","response_id":"r",
            "item":{"id":"item_1","type":"function_call","status":"completed",
            "name":"lookup_order","arguments":"{}"}}"#;
        assert!(matches!(
            parse_server_event(text),
            Err(EventError::Malformed(m)) if m.contains("call_id")
        ));
    }

    #[test]
    fn audio_delta_decodes_base64() {
        let text = r#"{"type":"response.output_audio.delta","event_id":"event_CCXHxxDFfA3Q1yNPy3H6F",
            "response_id":"resp_CCXHw8rTZp1jSqwKmExGE","item_id":"item_CCXHwGKI6QuCBpqDgrvl2",
            "output_index":0,"content_index":0,"delta":"/38A++8="}"#;
        assert_eq!(
            ok(text),
            ServerEvent::AudioDelta {
                response_id: "resp_CCXHw8rTZp1jSqwKmExGE".to_owned(),
                item_id: "item_CCXHwGKI6QuCBpqDgrvl2".to_owned(),
                audio: vec![0xff, 0x7f, 0x00, 0xfb, 0xef],
            }
        );
    }

    #[test]
    fn audio_delta_with_escaped_slashes_decodes() {
        // JSON may escape `/`; the borrowed delta then falls back to an owned copy.
        let text = r#"{"type":"response.output_audio.delta","response_id":"r","item_id":"i","delta":"\/38A++8="}"#;
        assert!(matches!(
            ok(text),
            ServerEvent::AudioDelta { audio, .. } if audio == [0xff, 0x7f, 0x00, 0xfb, 0xef]
        ));
    }

    #[test]
    fn audio_delta_round_trips_our_own_append_encoding() {
        let frame: Vec<u8> = (0..=255u8).collect();
        let append = parsed(&input_audio_append(&frame));
        let text = json!({
            "type": "response.output_audio.delta",
            "response_id": "r",
            "item_id": "i",
            "delta": append["audio"],
        })
        .to_string();
        assert!(matches!(ok(&text), ServerEvent::AudioDelta { audio, .. } if audio == frame));
    }

    #[test]
    fn audio_delta_with_bad_base64_is_rejected() {
        for delta in ["not base64!", "AAA", "////*///", "AA==AA=="] {
            let text = format!(
                r#"{{"type":"response.output_audio.delta","response_id":"r","item_id":"i","delta":"{delta}"}}"#
            );
            assert_eq!(
                parse_server_event(&text),
                Err(EventError::BadBase64),
                "{delta}"
            );
        }
    }

    #[test]
    fn audio_delta_without_delta_is_malformed() {
        let text = r#"{"type":"response.output_audio.delta","response_id":"r","item_id":"i"}"#;
        assert!(matches!(
            parse_server_event(text),
            Err(EventError::Malformed(_))
        ));
    }

    #[test]
    fn audio_done_parses() {
        let text = r#"{"type":"response.output_audio.done","event_id":"event_D1",
            "response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0}"#;
        assert_eq!(
            ok(text),
            ServerEvent::AudioDone {
                response_id: "resp_1".to_owned(),
                item_id: "item_1".to_owned(),
            }
        );
    }

    #[test]
    fn audio_transcript_delta_parses() {
        let text = r#"{"type":"response.output_audio_transcript.delta","event_id":"e",
            "response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,
            "delta":"Your order"}"#;
        assert_eq!(
            ok(text),
            ServerEvent::AudioTranscriptDelta {
                response_id: "resp_1".to_owned(),
                item_id: "item_1".to_owned(),
                delta: "Your order".to_owned(),
            }
        );
        let missing = r#"{"type":"response.output_audio_transcript.delta","response_id":"r"}"#;
        assert!(matches!(
            parse_server_event(missing),
            Err(EventError::Malformed(_))
        ));
    }

    #[test]
    fn audio_transcript_done_parses() {
        let text = r#"{"type":"response.output_audio_transcript.done","event_id":"event_D2",
            "response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,
            "transcript":"Your order A-42 shipped yesterday."}"#;
        assert_eq!(
            ok(text),
            ServerEvent::AudioTranscriptDone {
                response_id: "resp_1".to_owned(),
                item_id: "item_1".to_owned(),
                transcript: "Your order A-42 shipped yesterday.".to_owned(),
            }
        );
    }

    #[test]
    fn response_done_completed_parses_usage() {
        let text = r#"{"type":"response.done","event_id":"event_CCXHxcpLNU9D1gWFmVHtT",
            "response":{"object":"realtime.response","id":"resp_CCXHw8rTZp1jSqwKmExGE",
            "status":"completed","status_details":null,
            "output":[{"id":"item_CCXHwGKI6QuCBpqDgrvl2","type":"message","status":"completed",
              "role":"assistant","content":[{"type":"output_audio","transcript":"Sure."}]}],
            "conversation_id":"conv_1","output_modalities":["audio"],"max_output_tokens":"inf",
            "audio":{"output":{"format":{"type":"audio/pcmu"},"voice":"marin"}},
            "usage":{"total_tokens":253,"input_tokens":132,"output_tokens":121,
              "input_token_details":{"text_tokens":119,"audio_tokens":13,"image_tokens":0,
                "cached_tokens":64,"cached_tokens_details":{"text_tokens":64,"audio_tokens":0}},
              "output_token_details":{"text_tokens":30,"audio_tokens":91}},
            "metadata":null}}"#;
        assert_eq!(
            ok(text),
            ServerEvent::ResponseDone {
                response_id: Some("resp_CCXHw8rTZp1jSqwKmExGE".to_owned()),
                status: "completed".to_owned(),
                error_code: None,
                usage: Some(Usage {
                    input_tokens: 132,
                    output_tokens: 121,
                    total_tokens: 253,
                }),
            }
        );
    }

    #[test]
    fn response_done_failed_parses_error_code() {
        let text = r#"{"type":"response.done","event_id":"e","response":{"id":"resp_2",
            "object":"realtime.response","status":"failed",
            "status_details":{"type":"failed","error":{"type":"invalid_request_error",
              "code":"inference_rate_limit_exceeded"}},"output":[],"usage":null}}"#;
        assert_eq!(
            ok(text),
            ServerEvent::ResponseDone {
                response_id: Some("resp_2".to_owned()),
                status: "failed".to_owned(),
                error_code: Some("inference_rate_limit_exceeded".to_owned()),
                usage: None,
            }
        );
    }

    #[test]
    fn response_done_cancelled_without_id_parses() {
        let text = r#"{"type":"response.done","event_id":"e","response":{"object":"realtime.response",
            "status":"cancelled","status_details":{"type":"cancelled","reason":"turn_detected"},
            "output":[],"usage":{"total_tokens":10,"input_tokens":10}}}"#;
        assert_eq!(
            ok(text),
            ServerEvent::ResponseDone {
                response_id: None,
                status: "cancelled".to_owned(),
                error_code: None,
                usage: Some(Usage {
                    input_tokens: 10,
                    output_tokens: 0,
                    total_tokens: 10,
                }),
            }
        );
    }

    #[test]
    fn response_done_without_status_is_malformed() {
        let text = r#"{"type":"response.done","response":{"id":"resp_1"}}"#;
        assert!(matches!(
            parse_server_event(text),
            Err(EventError::Malformed(_))
        ));
    }

    #[test]
    fn truncated_parses() {
        let text = r#"{"type":"conversation.item.truncated","event_id":"event_2526",
            "item_id":"item_CCXHwGKI6QuCBpqDgrvl2","content_index":0,"audio_end_ms":1500}"#;
        assert_eq!(
            ok(text),
            ServerEvent::Truncated {
                item_id: "item_CCXHwGKI6QuCBpqDgrvl2".to_owned(),
                audio_end_ms: 1500,
            }
        );
    }

    #[test]
    fn truncated_with_negative_ms_is_malformed() {
        let text = r#"{"type":"conversation.item.truncated","item_id":"i","audio_end_ms":-1}"#;
        assert!(matches!(
            parse_server_event(text),
            Err(EventError::Malformed(_))
        ));
    }

    #[test]
    fn output_audio_buffer_events_parse() {
        let cases = [
            (
                "output_audio_buffer.started",
                ServerEvent::OutputAudioStarted {
                    response_id: Some("resp_1".to_owned()),
                },
            ),
            (
                "output_audio_buffer.stopped",
                ServerEvent::OutputAudioStopped {
                    response_id: Some("resp_1".to_owned()),
                },
            ),
            (
                "output_audio_buffer.cleared",
                ServerEvent::OutputAudioCleared {
                    response_id: Some("resp_1".to_owned()),
                },
            ),
        ];
        for (kind, expected) in cases {
            let text =
                format!(r#"{{"event_id":"event_ob","type":"{kind}","response_id":"resp_1"}}"#);
            assert_eq!(ok(&text), expected);
        }
        assert_eq!(
            ok(r#"{"type":"output_audio_buffer.cleared","event_id":"e"}"#),
            ServerEvent::OutputAudioCleared { response_id: None }
        );
    }

    #[test]
    fn error_with_code_and_event_id_parses() {
        let text = r#"{"type":"error","event_id":"event_890","error":{"type":"invalid_request_error",
            "code":"conversation_already_has_active_response",
            "message":"Conversation already has an active response in progress: resp_1.",
            "param":null,"event_id":"evt_2"}}"#;
        assert_eq!(
            ok(text),
            ServerEvent::Error {
                kind: Some("invalid_request_error".to_owned()),
                code: Some("conversation_already_has_active_response".to_owned()),
                message: "Conversation already has an active response in progress: resp_1."
                    .to_owned(),
                event_id: Some("evt_2".to_owned()),
            }
        );
    }

    #[test]
    fn error_without_code_or_event_id_parses() {
        let null_fields = r#"{"type":"error","event_id":"event_891","error":{"type":"server_error",
            "code":null,"message":"The server had an error.","param":null,"event_id":null}}"#;
        let absent_fields = r#"{"type":"error","event_id":"event_892","error":{"type":"server_error",
            "message":"The server had an error."}}"#;
        let expected = ServerEvent::Error {
            kind: Some("server_error".to_owned()),
            code: None,
            message: "The server had an error.".to_owned(),
            event_id: None,
        };
        assert_eq!(ok(null_fields), expected);
        assert_eq!(ok(absent_fields), expected);
    }

    #[test]
    fn error_session_expired_parses() {
        let text = r#"{"type":"error","event_id":"event_9","error":{"type":"invalid_request_error",
            "code":"session_expired","message":"Your session hit the maximum duration of 60 minutes.",
            "param":null,"event_id":null}}"#;
        assert!(matches!(
            ok(text),
            ServerEvent::Error { code: Some(c), .. } if c == "session_expired"
        ));
    }

    #[test]
    fn error_without_message_is_malformed() {
        let text = r#"{"type":"error","error":{"type":"server_error","code":"x"}}"#;
        assert!(matches!(
            parse_server_event(text),
            Err(EventError::Malformed(_))
        ));
    }

    #[test]
    fn documented_unused_ga_events_are_ignored() {
        let samples = [
            r#"{"type":"conversation.item.added","event_id":"e","previous_item_id":null,
               "item":{"id":"item_1","type":"message","status":"completed","role":"user",
               "content":[{"type":"input_audio","transcript":null}]}}"#,
            r#"{"type":"conversation.item.done","event_id":"e","previous_item_id":"item_0",
               "item":{"id":"item_1","type":"message","status":"completed","role":"assistant",
               "phase":"final_answer","content":[{"type":"output_audio","transcript":"Hi"}]}}"#,
            r#"{"type":"input_audio_buffer.committed","event_id":"e","previous_item_id":null,"item_id":"item_1"}"#,
            r#"{"type":"rate_limits.updated","event_id":"e","rate_limits":[{"name":"requests",
               "limit":1000,"remaining":999,"reset_seconds":60},{"name":"tokens","limit":50000,
               "remaining":49000,"reset_seconds":60}]}"#,
            r#"{"type":"response.content_part.added","event_id":"e","response_id":"r","item_id":"i",
               "output_index":0,"content_index":0,"part":{"type":"audio","transcript":""}}"#,
            r#"{"type":"response.function_call_arguments.done","event_id":"e","response_id":"r",
               "item_id":"i","output_index":1,"call_id":"call_1","name":"lookup_order",
               "arguments":"{\"id\":\"A-42\"}"}"#,
            r#"{"type":"input_audio_buffer.dtmf_event_received","event":"5","received_at":1756324625}"#,
        ];
        for text in samples {
            let kind = parsed(text)["type"].as_str().unwrap().to_owned();
            assert_eq!(ok(text), ServerEvent::Ignored(kind));
        }
    }

    #[test]
    fn every_ignored_type_parses_from_a_bare_frame() {
        for kind in IGNORED_TYPES {
            let text = format!(r#"{{"type":"{kind}","event_id":"e"}}"#);
            assert_eq!(ok(&text), ServerEvent::Ignored((*kind).to_owned()));
        }
    }

    #[test]
    fn beta_event_names_are_unknown_types() {
        for kind in [
            "response.audio.delta",
            "response.audio.done",
            "response.audio_transcript.delta",
            "response.audio_transcript.done",
            "response.text.delta",
            "response.text.done",
        ] {
            let text =
                format!(r#"{{"type":"{kind}","response_id":"r","item_id":"i","delta":"AAAA"}}"#);
            assert_eq!(
                parse_server_event(&text),
                Err(EventError::UnknownType(kind.to_owned()))
            );
        }
    }

    #[test]
    fn unknown_type_is_reported_with_its_name() {
        assert_eq!(
            parse_server_event(r#"{"type":"session.exploded"}"#),
            Err(EventError::UnknownType("session.exploded".to_owned()))
        );
    }

    #[test]
    fn escaped_type_is_still_recognised() {
        let text = r#"{"type":"session.cr\u0065ated","event_id":"e"}"#;
        assert_eq!(ok(text), ServerEvent::SessionCreated);
    }

    #[test]
    fn frames_without_a_string_type_are_malformed() {
        for text in [
            "",
            "not json",
            "[]",
            "null",
            r#"{"event_id":"e"}"#,
            r#"{"type":7}"#,
            r#"{"type":null}"#,
            r#"{"type":"session.created"} trailing"#,
            r#"{"type":"session.created""#,
        ] {
            assert!(
                matches!(parse_server_event(text), Err(EventError::Malformed(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn missing_required_fields_are_malformed() {
        for text in [
            r#"{"type":"response.created","response":{}}"#,
            r#"{"type":"response.created"}"#,
            r#"{"type":"response.output_item.done","response_id":"r"}"#,
            r#"{"type":"response.output_item.done","item":{"type":"message"}}"#,
            r#"{"type":"response.output_audio.done","response_id":"r"}"#,
            r#"{"type":"response.output_audio_transcript.done","response_id":"r","item_id":"i"}"#,
            r#"{"type":"conversation.item.input_audio_transcription.completed","item_id":"i"}"#,
            r#"{"type":"conversation.item.truncated","item_id":"i"}"#,
            r#"{"type":"error"}"#,
            r#"{"type":"input_audio_buffer.speech_started","item_id":42}"#,
        ] {
            assert!(
                matches!(parse_server_event(text), Err(EventError::Malformed(_))),
                "{text}"
            );
        }
    }

    /// Every type the parser knows, GA and beta, to aim random frames at real branches.
    fn all_types() -> Vec<&'static str> {
        let mut v = vec![
            "session.created",
            "session.updated",
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "conversation.item.input_audio_transcription.completed",
            "response.created",
            "response.output_item.done",
            "response.output_audio.delta",
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.done",
            "conversation.item.truncated",
            "output_audio_buffer.started",
            "output_audio_buffer.stopped",
            "output_audio_buffer.cleared",
            "error",
            "response.audio.delta",
        ];
        v.extend_from_slice(IGNORED_TYPES);
        v
    }

    fn json_fragment() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("-1".to_owned()),
            Just("4294967296".to_owned()),
            Just("1.5".to_owned()),
            Just(r#""AAAA""#.to_owned()),
            Just(r#""function_call""#.to_owned()),
            "\"[a-zA-Z0-9+/=\\\\]{0,12}\"",
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            let keys = prop_oneof![
                Just("type"),
                Just("id"),
                Just("item_id"),
                Just("response_id"),
                Just("delta"),
                Just("item"),
                Just("response"),
                Just("error"),
                Just("status"),
                Just("call_id"),
                Just("name"),
                Just("arguments"),
                Just("message"),
                Just("usage"),
                Just("status_details"),
                Just("audio_end_ms"),
                Just("transcript"),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((keys, inner), 0..5).prop_map(|kv| {
                    let fields: Vec<String> =
                        kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn parse_server_event_never_panics_on_arbitrary_text(text in ".*") {
            let _ = parse_server_event(&text);
        }

        #[test]
        fn parse_server_event_never_panics_on_typed_frames(
            kind in prop::sample::select(all_types()),
            body in json_fragment(),
            cut in 0usize..200,
        ) {
            let text = format!(r#"{{"type":"{kind}","x":{body}}}"#);
            let _ = parse_server_event(&text);
            // Splice the random body in as each field too, and try truncations.
            let inner = body.trim_start_matches('{').trim_end_matches('}');
            let spliced = format!(r#"{{"type":"{kind}",{inner}}}"#);
            let _ = parse_server_event(&spliced);
            let end = spliced.len().min(cut);
            if let Some(prefix) = spliced.get(..end) {
                let _ = parse_server_event(prefix);
            }
        }

        #[test]
        fn audio_delta_round_trips_any_bytes(audio in prop::collection::vec(any::<u8>(), 0..400)) {
            let b64 = parsed(&input_audio_append(&audio))["audio"].clone();
            let text = json!({
                "type": "response.output_audio.delta",
                "response_id": "r",
                "item_id": "i",
                "delta": b64,
            }).to_string();
            let parsed_audio = match parse_server_event(&text) {
                Ok(ServerEvent::AudioDelta { audio, .. }) => audio,
                other => panic!("{other:?}"),
            };
            prop_assert_eq!(parsed_audio, audio);
        }
    }
}
