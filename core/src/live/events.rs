//! Live API wire format (`/v1/live/sessions`): client events we send, server events we read.
//!
//! The Live protocol is not Realtime's: one `session.start` (everything in it immutable), one
//! audio format for both directions, no turns, no response ids, and tools run by a Responses
//! backend whose stream comes back wrapped in `response.event`. Session fields that do not exist
//! in Live (`type`, `turn_detection`, top-level `tools`, …) are never written: the server's
//! schema is strict and fails the whole start on an unknown field.
//!
//! `input_audio_append` and the `session.output_audio.delta` branch of [`parse_server_event`]
//! run about 50 times a second per call, so they skip `serde_json::Value`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::ToolSpec;

/// `session.audio.format`: one format for input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveAudioFormat {
    /// `{"type":"audio/pcmu","rate":8000}`.
    Pcmu,
    /// `{"type":"audio/pcma","rate":8000}`.
    Pcma,
    /// `{"type":"audio/pcm","rate":…}`, 16-bit little-endian, 16000 or 24000.
    Pcm {
        /// Sample rate.
        rate_hz: u32,
    },
}

impl LiveAudioFormat {
    fn to_json(self) -> Value {
        match self {
            LiveAudioFormat::Pcmu => json!({"type": "audio/pcmu", "rate": 8000}),
            LiveAudioFormat::Pcma => json!({"type": "audio/pcma", "rate": 8000}),
            LiveAudioFormat::Pcm { rate_hz } => json!({"type": "audio/pcm", "rate": rate_hz}),
        }
    }
}

/// What goes into `session.start.session` (or the WebRTC create body's `session`).
#[derive(Debug, Clone)]
pub struct LiveSettings<'a> {
    /// `gpt-live-1`.
    pub model: &'a str,
    /// The voice model's instructions.
    pub instructions: &'a str,
    /// Output voice.
    pub voice: &'a str,
    /// `None` over WebRTC, where the media path negotiates the codec.
    pub format: Option<LiveAudioFormat>,
    /// The Responses model that runs tools.
    pub delegation_model: &'a str,
    /// Its instructions.
    pub delegation_instructions: &'a str,
    /// Function tools for the Responses backend.
    pub tools: &'a [ToolSpec],
}

/// The `session` object.
pub fn session_object(s: &LiveSettings<'_>) -> Value {
    let mut audio = json!({"output": {"voice": s.voice}});
    if let Some(format) = s.format {
        audio["format"] = format.to_json();
    }
    let tools: Vec<Value> = s
        .tools
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            })
        })
        .collect();
    json!({
        "model": s.model,
        "instructions": s.instructions,
        "audio": audio,
        "delegation": {
            "type": "responses",
            "responses": {
                "model": s.delegation_model,
                "instructions": s.delegation_instructions,
                "tools": tools,
            },
        },
    })
}

/// `session.start`: the first frame on the WebSocket.
pub fn session_start(event_id: &str, s: &LiveSettings<'_>) -> String {
    json!({"type": "session.start", "event_id": event_id, "session": session_object(s)}).to_string()
}

/// Everything before the base64 in `session.input_audio.append`.
const APPEND_HEAD: &str = r#"{"type":"session.input_audio.append","audio":""#;
/// Everything after it.
const APPEND_TAIL: &str = r#""}"#;

/// `session.input_audio.append`: raw audio in the session format, base64, no acknowledgement.
pub fn input_audio_append(audio: &[u8]) -> String {
    let b64_len = base64::encoded_len(audio.len(), true).unwrap_or(0);
    let mut out = String::with_capacity(APPEND_HEAD.len() + b64_len + APPEND_TAIL.len());
    out.push_str(APPEND_HEAD);
    STANDARD.encode_string(audio, &mut out);
    out.push_str(APPEND_TAIL);
    out
}

/// `session.instructions.append` as general context (`delegation_id` is required and null).
pub fn instructions_append(event_id: &str, content: &str) -> String {
    json!({
        "type": "session.instructions.append",
        "event_id": event_id,
        "delegation_id": null,
        "content": content,
    })
    .to_string()
}

/// `response.item.create` carrying one tool's output to the Responses backend.
pub fn function_call_output(event_id: &str, call_id: &str, output: &str) -> String {
    json!({
        "type": "response.item.create",
        "event_id": event_id,
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    })
    .to_string()
}

/// `response.create`: continue the backend once every call of its response has an output.
pub fn response_create(event_id: &str) -> String {
    json!({"type": "response.create", "event_id": event_id}).to_string()
}

/// `session.close`: the server answers `session.closed`.
pub fn session_close(event_id: &str) -> String {
    json!({"type": "session.close", "event_id": event_id}).to_string()
}

/// A transcript fragment (`start_ms`/`end_ms` from the session's start).
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    /// The text, with its own spacing.
    pub delta: String,
    /// Start, in ms since the session started.
    pub start_ms: Option<u64>,
    /// End.
    pub end_ms: Option<u64>,
}

/// What a nested Responses event (inside `response.event`) means to the bridge.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendEvent {
    /// `response.output_item.done` with a completed function call.
    FunctionCall {
        /// Answer under this id.
        call_id: String,
        /// Function name.
        name: String,
        /// Arguments, a JSON string.
        arguments: String,
    },
    /// `response.completed`, `.incomplete` or `.failed`: the backend's response is over.
    Ended {
        /// `completed`, `incomplete` or `failed`.
        status: String,
    },
    /// Any other nested event (created, deltas, text).
    Other,
}

/// One server event, as far as the bridge cares.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// `session.started`: the session exists; audio and commands may flow.
    SessionStarted {
        /// `live_…`.
        id: String,
        /// When the server will end the session (Unix seconds).
        expires_at: Option<u64>,
    },
    /// `session.output_audio.delta`, decoded.
    OutputAudio(Vec<u8>),
    /// `session.input_transcript.delta`: the caller's words.
    InputTranscript(Fragment),
    /// `session.output_transcript.delta`: the model's words.
    OutputTranscript(Fragment),
    /// `session.delegation.created`.
    DelegationCreated {
        /// The delegation's id.
        id: String,
    },
    /// `response.event`.
    Backend {
        /// The delegation it belongs to.
        delegation_id: Option<String>,
        /// What it says.
        event: BackendEvent,
    },
    /// `session.usage.updated`: cumulative billed seconds.
    Usage {
        /// Seconds.
        seconds: Option<f64>,
    },
    /// `session.closed`: terminal.
    Closed {
        /// `close_requested`, `expired`, `content`, `remote_hangup`, `connection_lost`.
        reason: String,
        /// Final billed seconds.
        seconds: Option<f64>,
    },
    /// `error`.
    Error {
        /// Its code (nullable on the wire).
        code: Option<String>,
        /// Its message.
        message: String,
    },
    /// A documented event the bridge does not act on.
    Ignored,
}

/// A server event that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not JSON or not the documented shape.
    #[error("malformed server event: {0}")]
    Malformed(String),
    /// A `type` outside the Live protocol.
    #[error("unknown server event type {0:?}")]
    UnknownType(String),
    /// Audio that is not base64.
    #[error("audio delta is not base64")]
    BadBase64,
}

/// Documented server events with nothing for the bridge to do.
const IGNORED_TYPES: &[&str] = &[
    "session.updated",
    "session.input_audio.muted",
    "session.input_audio.unmuted",
    "session.output_audio.fixture.playing",
    "session.output_audio.fixture.played",
    "session.instructions.appended",
    "session.thinking.appended",
    "session.commentary.appended",
    "session.paused",
    "session.resumed",
    "decision.event",
    "decision.item.created",
    "decision.item.deleted",
    "info",
];

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct AudioWire<'a> {
    #[serde(borrow)]
    delta: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct StartedWire {
    session: StartedSession,
}

#[derive(Deserialize)]
struct StartedSession {
    id: String,
    expires_at: Option<u64>,
}

#[derive(Deserialize)]
struct FragmentWire {
    delta: String,
    start_ms: Option<u64>,
    end_ms: Option<u64>,
}

#[derive(Deserialize)]
struct DelegationWire {
    delegation: DelegationBody,
}

#[derive(Deserialize)]
struct DelegationBody {
    id: String,
}

#[derive(Deserialize)]
struct ResponseEventWire {
    delegation_id: Option<String>,
    event: Value,
}

#[derive(Deserialize)]
struct UsageWire {
    usage: Option<UsageBody>,
}

#[derive(Deserialize)]
struct UsageBody {
    seconds: Option<f64>,
}

#[derive(Deserialize)]
struct ClosedWire {
    reason: String,
    usage: Option<UsageBody>,
}

#[derive(Deserialize)]
struct ErrorWire {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
    #[serde(default)]
    message: String,
}

fn body<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, EventError> {
    serde_json::from_str(text).map_err(|e| EventError::Malformed(e.to_string()))
}

/// Parses one text frame from the Live API. Unknown fields are ignored.
///
/// # Errors
/// [`EventError::Malformed`] for a frame that is not the documented shape,
/// [`EventError::UnknownType`] for a type outside the protocol (Realtime names included), and
/// [`EventError::BadBase64`] for undecodable audio.
pub fn parse_server_event(text: &str) -> Result<ServerEvent, EventError> {
    let envelope: Envelope<'_> = body(text)?;
    match envelope.kind.as_ref() {
        "session.output_audio.delta" => {
            let w: AudioWire<'_> = body(text)?;
            let mut audio = Vec::new();
            STANDARD
                .decode_vec(w.delta.as_bytes(), &mut audio)
                .map_err(|_| EventError::BadBase64)?;
            Ok(ServerEvent::OutputAudio(audio))
        }
        "session.input_transcript.delta" => Ok(ServerEvent::InputTranscript(fragment(text)?)),
        "session.output_transcript.delta" => Ok(ServerEvent::OutputTranscript(fragment(text)?)),
        "session.started" => {
            let w: StartedWire = body(text)?;
            Ok(ServerEvent::SessionStarted {
                id: w.session.id,
                expires_at: w.session.expires_at,
            })
        }
        "session.delegation.created" => {
            let w: DelegationWire = body(text)?;
            Ok(ServerEvent::DelegationCreated {
                id: w.delegation.id,
            })
        }
        "response.event" => {
            let w: ResponseEventWire = body(text)?;
            Ok(ServerEvent::Backend {
                delegation_id: w.delegation_id,
                event: backend_event(&w.event)?,
            })
        }
        "session.usage.updated" => {
            let w: UsageWire = body(text)?;
            Ok(ServerEvent::Usage {
                seconds: w.usage.and_then(|u| u.seconds),
            })
        }
        "session.closed" => {
            let w: ClosedWire = body(text)?;
            Ok(ServerEvent::Closed {
                reason: w.reason,
                seconds: w.usage.and_then(|u| u.seconds),
            })
        }
        "error" => {
            let w: ErrorWire = body(text)?;
            Ok(ServerEvent::Error {
                code: w.error.code,
                message: w.error.message,
            })
        }
        other if IGNORED_TYPES.contains(&other) => Ok(ServerEvent::Ignored),
        other => Err(EventError::UnknownType(other.to_owned())),
    }
}

fn fragment(text: &str) -> Result<Fragment, EventError> {
    let w: FragmentWire = body(text)?;
    Ok(Fragment {
        delta: w.delta,
        start_ms: w.start_ms,
        end_ms: w.end_ms,
    })
}

/// Reads the nested Responses event. Calls are collected from `response.output_item.done` only
/// (an arguments-done event alone is not a finished call).
fn backend_event(event: &Value) -> Result<BackendEvent, EventError> {
    let Some(kind) = event.get("type").and_then(Value::as_str) else {
        return Err(EventError::Malformed(
            "response.event without a nested type".to_owned(),
        ));
    };
    match kind {
        "response.output_item.done" => {
            let item = &event["item"];
            let completed = item["status"].as_str().is_none_or(|s| s == "completed");
            if item["type"] != "function_call" || !completed {
                return Ok(BackendEvent::Other);
            }
            let field = |name: &str| {
                item[name].as_str().map(str::to_owned).ok_or_else(|| {
                    EventError::Malformed(format!("function_call item needs a string `{name}`"))
                })
            };
            Ok(BackendEvent::FunctionCall {
                call_id: field("call_id")?,
                name: field("name")?,
                arguments: field("arguments")?,
            })
        }
        "response.completed" | "response.incomplete" | "response.failed" => {
            Ok(BackendEvent::Ended {
                status: kind.trim_start_matches("response.").to_owned(),
            })
        }
        _ => Ok(BackendEvent::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn settings(tools: &[ToolSpec], format: Option<LiveAudioFormat>) -> LiveSettings<'_> {
        LiveSettings {
            model: "gpt-live-1",
            instructions: "Be brief.",
            voice: "marin",
            format,
            delegation_model: "gpt-5.6-terra",
            delegation_instructions: "Use the tools.",
            tools,
        }
    }

    #[test]
    fn session_start_carries_pcmu_rate_and_responses_delegation() {
        let tools = [ToolSpec {
            name: "lookup_order".to_owned(),
            description: "Finds an order".to_owned(),
            parameters: json!({"type":"object","properties":{"id":{"type":"string"}}}),
            timeout: std::time::Duration::from_secs(3),
            webhook: None,
            filler: None,
        }];
        let v = parsed(&session_start(
            "start-1",
            &settings(&tools, Some(LiveAudioFormat::Pcmu)),
        ));
        assert_eq!(v["type"], "session.start");
        assert_eq!(v["event_id"], "start-1");
        let s = &v["session"];
        assert_eq!(s["model"], "gpt-live-1");
        assert_eq!(
            s["audio"]["format"],
            json!({"type":"audio/pcmu","rate":8000})
        );
        assert_eq!(s["audio"]["output"]["voice"], "marin");
        assert_eq!(s["delegation"]["type"], "responses");
        assert_eq!(s["delegation"]["responses"]["model"], "gpt-5.6-terra");
        let tool = &s["delegation"]["responses"]["tools"][0];
        assert_eq!(tool["type"], "function");
        assert_eq!(tool["name"], "lookup_order");
        assert!(tool.get("timeout").is_none());
        // Fields Live does not have would fail the whole start.
        for absent in [
            "type",
            "tools",
            "turn_detection",
            "output_modalities",
            "voice",
        ] {
            assert!(s.get(absent).is_none(), "{absent} must not be sent");
        }
    }

    #[test]
    fn webrtc_session_leaves_out_the_audio_format() {
        let v = session_object(&settings(&[], None));
        assert!(v["audio"].get("format").is_none());
        assert_eq!(v["audio"]["output"]["voice"], "marin");
    }

    #[test]
    fn pcm_format_carries_its_rate() {
        let v = session_object(&settings(
            &[],
            Some(LiveAudioFormat::Pcm { rate_hz: 16_000 }),
        ));
        assert_eq!(
            v["audio"]["format"],
            json!({"type":"audio/pcm","rate":16000})
        );
    }

    #[test]
    fn appends_and_tool_outputs_have_the_documented_shape() {
        let v = parsed(&input_audio_append(&[0xFF, 0x7F]));
        assert_eq!(
            v,
            json!({"type":"session.input_audio.append","audio":"/38="})
        );
        let v = parsed(&instructions_append("d-1", "The caller pressed 4."));
        assert_eq!(v["type"], "session.instructions.append");
        assert!(v["delegation_id"].is_null());
        assert!(v.as_object().unwrap().contains_key("delegation_id"));
        let v = parsed(&function_call_output("o-1", "call_1", "{\"ok\":true}"));
        assert_eq!(v["type"], "response.item.create");
        assert_eq!(
            v["item"],
            json!({"type":"function_call_output","call_id":"call_1","output":"{\"ok\":true}"})
        );
        assert_eq!(parsed(&response_create("c-1"))["type"], "response.create");
        assert_eq!(parsed(&session_close("x-1"))["type"], "session.close");
    }

    #[test]
    fn started_audio_and_transcripts_parse() {
        let started = r#"{"type":"session.started","event_id":"evt_1","session":{"id":"live_abc","status":"active","expires_at":1795000000,"model":"gpt-live-1"}}"#;
        assert_eq!(
            parse_server_event(started).unwrap(),
            ServerEvent::SessionStarted {
                id: "live_abc".to_owned(),
                expires_at: Some(1_795_000_000)
            }
        );
        let audio = r#"{"type":"session.output_audio.delta","delta":"/38="}"#;
        assert_eq!(
            parse_server_event(audio).unwrap(),
            ServerEvent::OutputAudio(vec![0xFF, 0x7F])
        );
        let t = r#"{"type":"session.input_transcript.delta","event_id":"e","delta":" where is","start_ms":5200,"end_ms":6400}"#;
        assert_eq!(
            parse_server_event(t).unwrap(),
            ServerEvent::InputTranscript(Fragment {
                delta: " where is".to_owned(),
                start_ms: Some(5200),
                end_ms: Some(6400)
            })
        );
    }

    #[test]
    fn nested_function_call_and_completion_parse() {
        let done = r#"{"type":"response.event","event_id":"evt_20","delegation_id":"del_1","event":{"type":"response.output_item.done","output_index":0,"item":{"type":"function_call","id":"fc_1","status":"completed","call_id":"call_1","name":"lookup_order","arguments":"{\"order_id\":\"4417\"}"}}}"#;
        assert_eq!(
            parse_server_event(done).unwrap(),
            ServerEvent::Backend {
                delegation_id: Some("del_1".to_owned()),
                event: BackendEvent::FunctionCall {
                    call_id: "call_1".to_owned(),
                    name: "lookup_order".to_owned(),
                    arguments: "{\"order_id\":\"4417\"}".to_owned(),
                }
            }
        );
        let args_done = r#"{"type":"response.event","delegation_id":"del_1","event":{"type":"response.function_call_arguments.done","call_id":"call_1","arguments":"{}"}}"#;
        assert!(matches!(
            parse_server_event(args_done).unwrap(),
            ServerEvent::Backend {
                event: BackendEvent::Other,
                ..
            }
        ));
        let completed = r#"{"type":"response.event","delegation_id":"del_1","event":{"type":"response.completed","response":{"id":"resp_1","status":"completed","output":[]}}}"#;
        assert_eq!(
            parse_server_event(completed).unwrap(),
            ServerEvent::Backend {
                delegation_id: Some("del_1".to_owned()),
                event: BackendEvent::Ended {
                    status: "completed".to_owned()
                }
            }
        );
    }

    #[test]
    fn closed_usage_and_error_parse() {
        let closed = r#"{"type":"session.closed","event_id":"evt_99","reason":"close_requested","session":{"id":"live_abc"},"usage":{"seconds":83.0}}"#;
        assert_eq!(
            parse_server_event(closed).unwrap(),
            ServerEvent::Closed {
                reason: "close_requested".to_owned(),
                seconds: Some(83.0)
            }
        );
        let usage = r#"{"type":"session.usage.updated","event_id":"e","usage":{"seconds":60.5}}"#;
        assert_eq!(
            parse_server_event(usage).unwrap(),
            ServerEvent::Usage {
                seconds: Some(60.5)
            }
        );
        let error = r#"{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":null,"message":"nope"}}"#;
        assert_eq!(
            parse_server_event(error).unwrap(),
            ServerEvent::Error {
                code: None,
                message: "nope".to_owned()
            }
        );
    }

    #[test]
    fn realtime_names_and_garbage_are_refused() {
        assert!(matches!(
            parse_server_event(r#"{"type":"response.output_audio.delta","delta":""}"#),
            Err(EventError::UnknownType(_))
        ));
        assert!(matches!(
            parse_server_event("not json"),
            Err(EventError::Malformed(_))
        ));
        assert!(matches!(
            parse_server_event(r#"{"type":"session.output_audio.delta","delta":"!!"}"#),
            Err(EventError::BadBase64)
        ));
        assert!(matches!(
            parse_server_event(r#"{"type":"response.event","event":{}}"#),
            Err(EventError::Malformed(_))
        ));
        assert_eq!(
            parse_server_event(r#"{"type":"session.instructions.appended","start_ms":1}"#),
            Ok(ServerEvent::Ignored)
        );
    }
}
