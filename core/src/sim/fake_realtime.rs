//! A sans-IO fake of the OpenAI Realtime GA WebSocket server, for whole-call simulations.
//!
//! The fake speaks the documented GA wire format. It builds and reads JSON with
//! `serde_json::Value` and never uses `crate::realtime`, so a bug in the bridge's event code
//! cannot hide behind the same bug here. It is strict about what it receives: malformed or
//! beta-shaped client events get the `error` event the real server would send, and the
//! [`RealtimeReport`] records them as violations for the test to assert on.
//!
//! Time comes only from the `now` arguments. Ids are counters, so the same inputs at the same
//! instants always give the same outputs. One instance serves one WebSocket connection.
//!
//! # WebRTC mode
//!
//! [`FakeRealtime::new_webrtc`] makes the same brain serve one WebRTC call instead (the peer
//! connection itself lives in [`crate::sim::fake_webrtc`]). The differences, as documented for
//! GA WebRTC sessions:
//! - The session comes with the call creation, is validated like a `session.update`'s, and
//!   `session.created` is the first event once the data channel opens
//!   ([`handle_channel_open`](FakeRealtime::handle_channel_open)); nothing goes out before.
//! - Caller audio arrives decoded from RTP through
//!   [`handle_input_samples`](FakeRealtime::handle_input_samples) and feeds the same VAD;
//!   `input_audio_buffer.append` is a violation.
//! - Model audio is not sent as `response.output_audio.delta`. The response generates it into
//!   an output audio buffer (as fast as [`RealtimeScript::chunk_interval`] says) and the buffer
//!   plays out in real time: one 20 ms frame per 20 ms, pulled with
//!   [`poll_audio_frame`](FakeRealtime::poll_audio_frame). `output_audio_buffer.started` goes out
//!   with a response's first frame, `output_audio_buffer.stopped` one frame after its last (so
//!   after `response.done`), and `output_audio_buffer.cleared` when server VAD barge-in
//!   (`interrupt_response`) or a client `output_audio_buffer.clear` empties the buffer. A clear
//!   shortens the item's audio to what was played; audio a still-running response generates
//!   after a client clear is dropped. `response.cancel` alone stops generation but lets what is
//!   buffered play out.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::audio::g711;
use crate::sim::speech::{SpeechSpan, rms, speech_like};

/// The documented cap on one `input_audio_buffer.append` (15 MiB of decoded audio).
const MAX_APPEND_BYTES: usize = 15 * 1024 * 1024;
/// Server VAD works on windows of this length.
const VAD_WINDOW_MS: u32 = 20;
/// Loud audio must last this long before the fake calls it speech.
const VAD_START_MS: u32 = 60;
/// The smallest buffer a manual `input_audio_buffer.commit` accepts.
const MIN_COMMIT_MS: f64 = 100.0;
/// Delay between a committed caller turn and its transcript.
const TRANSCRIPT_DELAY: Duration = Duration::from_millis(250);
/// The voice `speech_like` uses for the assistant, so it differs from a caller's voice.
const ASSISTANT_VOICE: u32 = 2;
/// The message the real server sends to a beta-shaped connection.
const BETA_MESSAGE: &str =
    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.";

/// Top-level `session` fields of the GA API. Anything else (notably the beta names
/// `modalities`, `voice`, `input_audio_format`, `turn_detection`, `temperature`, …) makes the
/// real server reject the whole update.
const SESSION_FIELDS: &[&str] = &[
    "type",
    "model",
    "instructions",
    "output_modalities",
    "audio",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "tracing",
    "truncation",
    "prompt",
    "include",
    "reasoning",
    "parallel_tool_calls",
];
const AUDIO_INPUT_FIELDS: &[&str] = &[
    "format",
    "transcription",
    "noise_reduction",
    "turn_detection",
];
const AUDIO_OUTPUT_FIELDS: &[&str] = &["format", "voice", "speed"];
/// Fields of the optional `response` object of `response.create`.
const RESPONSE_FIELDS: &[&str] = &[
    "instructions",
    "tools",
    "tool_choice",
    "output_modalities",
    "audio",
    "max_output_tokens",
    "conversation",
    "input",
    "metadata",
    "prompt",
    "reasoning",
    "parallel_tool_calls",
];

/// What the fake server does during one connection.
#[derive(Debug, Clone, PartialEq)]
pub struct RealtimeScript {
    /// One per response the fake makes, whatever triggered it, consumed in order; when they
    /// run out, each response is [`ScriptedResponse::default`].
    pub responses: Vec<ScriptedResponse>,
    /// Transcript of the k-th committed caller turn; `"(caller speech)"` past the end.
    pub caller_transcripts: Vec<String>,
    /// Milliseconds of audio in each `response.output_audio.delta`.
    pub audio_chunk_ms: u32,
    /// Time between two audio deltas (20 ms for 100 ms chunks is 5x faster than real time, as the
    /// real server is).
    pub chunk_interval: Duration,
    /// Time from `response.created` to the first audio delta.
    pub first_audio_delay: Duration,
    /// Server VAD threshold: RMS on the i16 scale. The session's own `threshold` is ignored.
    pub vad_threshold_rms: f32,
    /// Session length limit: then `error` `session_expired` and `Close { 1001 }`.
    pub session_max: Duration,
    /// Refuse the WebSocket handshake with this HTTP status.
    pub reject_handshake: Option<u16>,
    /// Time after connect at which the socket drops without a close frame (`Close { 1006 }`).
    pub drop_socket_at: Option<Duration>,
    /// `error` events to send at times after connect: `(when, code, type)`. The session stays
    /// open; deciding what is fatal is the bridge's job.
    pub inject_errors: Vec<(Duration, String, String)>,
    /// Keep every appended input audio byte in [`RealtimeReport::input_audio`].
    pub record_input_audio: bool,
    /// This many responses, from the first, fail at once with `response.done` `failed` and
    /// `inference_rate_limit_exceeded` (a throttled account); the scripted reply is kept for
    /// the next one.
    pub rate_limited: u32,
}

impl Default for RealtimeScript {
    fn default() -> Self {
        Self {
            responses: Vec::new(),
            caller_transcripts: Vec::new(),
            audio_chunk_ms: 100,
            chunk_interval: Duration::from_millis(20),
            first_audio_delay: Duration::from_millis(300),
            vad_threshold_rms: 400.0,
            session_max: Duration::from_secs(60 * 60),
            reject_handshake: None,
            drop_socket_at: None,
            inject_errors: Vec::new(),
            record_input_audio: false,
            rate_limited: 0,
        }
    }
}

/// One response of the fake model.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedResponse {
    /// The spoken text, sent as the audio transcript.
    pub text: String,
    /// Milliseconds of audio; 0 gives a response without a message item.
    pub audio_ms: u32,
    /// Function calls after the message: `(name, arguments object)`.
    pub tool_calls: Vec<(String, Value)>,
}

impl Default for ScriptedResponse {
    /// The reply used once the script runs out: "I see.", 600 ms of audio, no tools.
    fn default() -> Self {
        Self {
            text: "I see.".to_owned(),
            audio_ms: 600,
            tool_calls: Vec::new(),
        }
    }
}

/// Something the fake server sends on the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeServerOutput {
    /// A text frame holding one server event.
    Text(String),
    /// The server closes the socket (1006 stands for a drop without a close frame).
    Close {
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// What started a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Server VAD committed a caller turn with `create_response` on.
    Vad,
    /// The client sent `response.create`.
    Client,
}

/// A `conversation.item.truncate` the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    /// Since connect.
    pub at: Duration,
    /// The item named by the client.
    pub item_id: String,
    /// The client's `audio_end_ms`.
    pub audio_end_ms: u64,
    /// Whether the fake answered `conversation.item.truncated` (else an `error`).
    pub accepted: bool,
}

/// One response the fake made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseRecord {
    /// `resp_…`.
    pub id: String,
    /// What started it.
    pub trigger: Trigger,
    /// `in_progress`, `completed` or `cancelled`.
    pub status: String,
    /// Audio sent in deltas, in milliseconds.
    pub audio_ms_sent: u32,
    /// The assistant message item, if the response had audio.
    pub item_id: Option<String>,
    /// WebRTC mode: audio played out as 20 ms frames, in milliseconds.
    pub audio_ms_played: u32,
    /// `call_id`s of the function calls it issued.
    pub tool_call_ids: Vec<String>,
    /// When `response.created` went out.
    pub created_at: Duration,
    /// When `response.done` went out.
    pub done_at: Option<Duration>,
}

/// Everything the fake saw and did; `Duration`s are since `handle_connect`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RealtimeReport {
    /// Every `session` object received in `session.update`, accepted or not.
    pub session_updates: Vec<Value>,
    /// Decoded bytes of input audio appended.
    pub input_audio_bytes: u64,
    /// Milliseconds of input audio appended, in the input format current at each append.
    pub input_audio_ms: f64,
    /// The appended bytes, if [`RealtimeScript::record_input_audio`].
    pub input_audio: Vec<u8>,
    /// Every `conversation.item.truncate`.
    pub truncates: Vec<Truncate>,
    /// `response.create` events received (refused ones included).
    pub response_creates: u32,
    /// `response.cancel` events received.
    pub cancels: u32,
    /// Accepted `function_call_output` items: `(when, call_id, output)`.
    pub function_outputs: Vec<(Duration, String, String)>,
    /// User `input_text` messages.
    pub user_texts: Vec<(Duration, String)>,
    /// Every `error` event sent: `(when, code)`.
    pub errors_sent: Vec<(Duration, String)>,
    /// Every response, in order.
    pub responses: Vec<ResponseRecord>,
    /// When `input_audio_buffer.speech_started` was sent.
    pub speech_started: Vec<Duration>,
    /// When `input_audio_buffer.speech_stopped` was sent.
    pub speech_stopped: Vec<Duration>,
    /// The `type` of every client event, in order.
    pub received_types: Vec<String>,
    /// Client behaviour the real server would reject or that breaks the protocol.
    pub violations: Vec<String>,
    /// The client closed the socket.
    pub closed_by_client: bool,
    /// WebRTC mode: every `output_audio_buffer.*` event sent, in order.
    pub output_buffer: Vec<OutputBufferRecord>,
    /// WebRTC mode: milliseconds of model audio played out (all responses).
    pub audio_played_ms: u64,
    /// WebRTC mode: frames dropped because nobody pulled them (the frame queue is bounded).
    pub audio_frames_dropped: u64,
}

/// An `output_audio_buffer.*` event of WebRTC mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferEvent {
    /// A response's first frame played (`output_audio_buffer.started`).
    Started,
    /// A response's audio played to its end (`output_audio_buffer.stopped`).
    Stopped,
    /// Server VAD barge-in emptied the buffer (`output_audio_buffer.cleared`).
    ClearedByVad,
    /// The client's `output_audio_buffer.clear` emptied it (`output_audio_buffer.cleared`).
    ClearedByClient,
}

/// One `output_audio_buffer.*` event the fake sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputBufferRecord {
    /// Since connect (or the origin).
    pub at: Duration,
    /// Which event.
    pub event: BufferEvent,
    /// The `response_id` it carried.
    pub response_id: Option<String>,
    /// Audio of that response played so far, in milliseconds.
    pub played_ms: u32,
}

/// One 20 ms frame of model audio in WebRTC mode, due to go out as RTP at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// When the frame plays out (a multiple of 20 ms after its response's first frame).
    pub at: Instant,
    /// Exactly 20 ms of mono samples at [`FakeRealtime::output_rate_hz`]; a response's last
    /// frame is padded with silence.
    pub samples: Vec<i16>,
    /// What `samples` are, when they are the speech signal (or silence): the WebRTC fake then
    /// sends the Opus packet it encoded before for the same frame. `None`: anything else.
    pub speech: Option<SpeechSpan>,
}

/// Why a WebRTC call's `session` was refused: the fields of the `error` JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRefusal {
    /// `error.code`.
    pub code: String,
    /// `error.param`.
    pub param: Option<String>,
    /// `error.message`.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AudioFormat {
    Pcmu,
    Pcma,
    Pcm24k,
}

impl AudioFormat {
    /// Reads a GA `format` object; `audio/pcm` allows only rate 24000 (the default).
    fn parse(v: &Value) -> Option<Self> {
        match v.get("type")?.as_str()? {
            "audio/pcmu" => Some(Self::Pcmu),
            "audio/pcma" => Some(Self::Pcma),
            "audio/pcm" => match v.get("rate") {
                None => Some(Self::Pcm24k),
                Some(r) if r.as_f64() == Some(24000.0) => Some(Self::Pcm24k),
                Some(_) => None,
            },
            _ => None,
        }
    }

    fn to_json(self) -> Value {
        match self {
            Self::Pcmu => json!({"type": "audio/pcmu"}),
            Self::Pcma => json!({"type": "audio/pcma"}),
            Self::Pcm24k => json!({"type": "audio/pcm", "rate": 24000}),
        }
    }

    fn rate(self) -> u32 {
        match self {
            Self::Pcmu | Self::Pcma => 8000,
            Self::Pcm24k => 24000,
        }
    }

    fn bytes_per_ms(self) -> f64 {
        match self {
            Self::Pcmu | Self::Pcma => 8.0,
            Self::Pcm24k => 48.0,
        }
    }

    fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Self::Pcmu => samples.iter().map(|&s| g711::ulaw_encode(s)).collect(),
            Self::Pcma => samples.iter().map(|&s| g711::alaw_encode(s)).collect(),
            Self::Pcm24k => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
        }
    }
}

/// The effective server VAD settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Vad {
    silence_ms: u32,
    prefix_padding_ms: u32,
    create_response: bool,
    interrupt_response: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum VadState {
    Idle { loud_ms: u32, loud_start_ms: u64 },
    Speaking { item_id: String, quiet_ms: u32 },
}

const VAD_IDLE: VadState = VadState::Idle {
    loud_ms: 0,
    loud_start_ms: 0,
};

/// Settings read from an accepted session.
struct SessionConfig {
    input: AudioFormat,
    output: AudioFormat,
    vad: Option<Vad>,
    transcription: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    NotConnected,
    Open,
    Closed,
}

#[derive(Debug)]
enum TimerKind {
    ResponseStep,
    /// WebRTC mode: the next 20 ms output frame.
    Playout,
    Transcript {
        item_id: String,
        transcript: String,
    },
    InjectError(usize),
    DropSocket,
    Expire,
}

#[derive(Debug)]
struct Timer {
    at: Instant,
    seq: u64,
    kind: TimerKind,
}

/// The response being streamed.
#[derive(Debug)]
struct Active {
    id: String,
    record: usize,
    script: ScriptedResponse,
    format: AudioFormat,
    item_id: Option<String>,
    sent_ms: u32,
    samples: u64,
    chunks_sent: u32,
    transcript_sent: String,
    output: Vec<Value>,
}

/// WebRTC mode: one response's audio in the output audio buffer.
#[derive(Debug)]
struct Segment {
    response_id: String,
    record: usize,
    item_id: Option<String>,
    /// Samples generated and not played yet.
    queued: u64,
    /// Samples played.
    played: u64,
    started: bool,
}

/// WebRTC mode state: the channel gate and the output audio buffer.
#[derive(Debug)]
struct WebRtcMode {
    output_rate: u32,
    channel_open: bool,
    segments: VecDeque<Segment>,
    /// The pending `Playout` timer, if any.
    tick_at: Option<Instant>,
    frames: VecDeque<AudioFrame>,
    /// Position in the assistant's `speech_like` signal.
    pos: u64,
    /// A response whose further audio is dropped (after a client clear).
    discard: Option<String>,
    /// Sample rate of the VAD window being filled.
    window_rate: u32,
}

/// Frames kept for [`FakeRealtime::poll_audio_frame`]: 5 s.
const MAX_QUEUED_FRAMES: usize = 250;

/// An `invalid_request_error` answering one client event.
struct Refusal {
    code: &'static str,
    param: Option<String>,
    message: String,
    /// A client bug, recorded as a violation; otherwise a race a correct client can lose.
    bug: bool,
}

impl Refusal {
    /// A client bug; an empty `param` is sent as `null`.
    fn bug(code: &'static str, param: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            param: (!param.is_empty()).then(|| param.to_owned()),
            message: message.into(),
            bug: true,
        }
    }

    /// An error a correct client can still provoke, by timing or rounding.
    fn race(code: &'static str, param: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            code,
            param: param.map(str::to_owned),
            message: message.into(),
            bug: false,
        }
    }
}

/// What a client event handler returns.
type Handled = Result<(), Refusal>;

/// The fake Realtime server. See the module docs.
#[derive(Debug)]
pub struct FakeRealtime {
    script: RealtimeScript,
    report: RealtimeReport,
    out: VecDeque<FakeServerOutput>,
    timers: Vec<Timer>,
    timer_seq: u64,
    conn: Conn,
    connected_at: Option<Instant>,
    origin: Option<Instant>,
    last_now: Option<Instant>,
    model: String,
    session: Value,
    input_format: AudioFormat,
    output_format: AudioFormat,
    vad: Option<Vad>,
    transcription: bool,
    vad_state: VadState,
    vad_pos_ms: u64,
    window: Vec<i16>,
    odd_byte: Option<u8>,
    uncommitted_ms: f64,
    next_id: u64,
    next_event: u64,
    next_response: usize,
    caller_turns: usize,
    active: Option<Active>,
    /// Assistant audio items the fake sent, with the milliseconds sent so far.
    assistant_audio: BTreeMap<String, u32>,
    /// Issued call ids and whether an output arrived.
    calls: BTreeMap<String, bool>,
    items: BTreeMap<String, Value>,
    last_item_id: Option<String>,
    /// `Some` in WebRTC mode.
    webrtc: Option<WebRtcMode>,
    /// Responses failed as throttled so far.
    throttled: u32,
}

impl FakeRealtime {
    /// A fake server waiting for [`handle_connect`](Self::handle_connect).
    pub fn new(script: RealtimeScript) -> Self {
        Self {
            script,
            throttled: 0,
            report: RealtimeReport::default(),
            out: VecDeque::new(),
            timers: Vec::new(),
            timer_seq: 0,
            conn: Conn::NotConnected,
            connected_at: None,
            origin: None,
            last_now: None,
            model: String::new(),
            session: Value::Null,
            input_format: AudioFormat::Pcm24k,
            output_format: AudioFormat::Pcm24k,
            vad: Some(Vad {
                silence_ms: 500,
                prefix_padding_ms: 300,
                create_response: true,
                interrupt_response: true,
            }),
            transcription: false,
            vad_state: VAD_IDLE,
            vad_pos_ms: 0,
            window: Vec::new(),
            odd_byte: None,
            uncommitted_ms: 0.0,
            next_id: 0,
            next_event: 0,
            next_response: 0,
            caller_turns: 0,
            active: None,
            assistant_audio: BTreeMap::new(),
            calls: BTreeMap::new(),
            items: BTreeMap::new(),
            last_item_id: None,
            webrtc: None,
        }
    }

    /// The WebSocket handshake: checks the URL (`ws(s)://host/…/v1/realtime?model=…`) and the
    /// `Authorization: Bearer …` header, then sends `session.created`.
    ///
    /// An `OpenAI-Beta` header is accepted at the HTTP level and then answered with `error`
    /// `beta_api_shape_disabled` and `Close { 4000 }`, as the real server does.
    ///
    /// # Errors
    /// The HTTP status of a refused handshake: the scripted one, 404 for a wrong URL, 400 for a
    /// missing model, 401 for missing credentials, 409 for a second connect on one instance.
    pub fn handle_connect(
        &mut self,
        now: Instant,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<(), u16> {
        if self.conn != Conn::NotConnected {
            self.violate("handle_connect called twice; one fake serves one connection".into());
            return Err(409);
        }
        if let Some(code) = self.script.reject_handshake {
            return Err(code);
        }
        let model = match parse_url(url) {
            Ok(model) => model,
            Err(status) => {
                self.violate(format!("handshake refused with {status}: bad URL {url:?}"));
                return Err(status);
            }
        };
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let authorized = header("authorization")
            .and_then(|v| {
                v.get(..7)
                    .filter(|p| p.eq_ignore_ascii_case("bearer "))
                    .and(v.get(7..))
            })
            .is_some_and(|key| !key.trim().is_empty());
        if !authorized {
            self.violate("handshake refused with 401: no `Authorization: Bearer <key>`".into());
            return Err(401);
        }
        self.conn = Conn::Open;
        self.connected_at = Some(now);
        self.last_now = Some(now);
        self.model = model;
        if header("openai-beta").is_some() {
            self.violate("the OpenAI-Beta header selects the dead beta API".into());
            self.send_error(
                now,
                "invalid_request_error",
                "beta_api_shape_disabled",
                BETA_MESSAGE,
                None,
                None,
            );
            self.close(4000, BETA_MESSAGE);
            return Ok(());
        }
        self.session = default_session(&self.model);
        let session = self.session.clone();
        self.send("session.created", json!({ "session": session }));
        self.schedule(now, self.script.session_max, TimerKind::Expire);
        if let Some(at) = self.script.drop_socket_at {
            self.schedule(now, at, TimerKind::DropSocket);
        }
        for (i, (at, _, _)) in self.script.inject_errors.clone().into_iter().enumerate() {
            self.schedule(now, at, TimerKind::InjectError(i));
        }
        Ok(())
    }

    /// A brain for one WebRTC call created at `now` with the call creation's `session` part (the
    /// shape of `session.update`'s `session`; `Value::Null` when the request had none). Model
    /// audio comes out as 20 ms frames at `output_rate_hz` (8000 to 48000; 24000 when outside).
    ///
    /// `session.created` is queued now and goes out first once the data channel opens.
    ///
    /// # Errors
    /// The `error` fields of a 400 answer when the session is invalid (unknown or beta fields,
    /// a wrong `type`, bad formats, VAD or tools), exactly as `session.update` would refuse it.
    pub fn new_webrtc(
        now: Instant,
        script: RealtimeScript,
        session: &Value,
        output_rate_hz: u32,
    ) -> Result<Self, SessionRefusal> {
        let mut fake = Self::new(script);
        let output_rate =
            if (8000..=48000).contains(&output_rate_hz) && output_rate_hz.is_multiple_of(50) {
                output_rate_hz
            } else {
                24000
            };
        fake.webrtc = Some(WebRtcMode {
            output_rate,
            channel_open: false,
            segments: VecDeque::new(),
            tick_at: None,
            frames: VecDeque::new(),
            pos: 0,
            discard: None,
            window_rate: 0,
        });
        fake.model = session
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("gpt-realtime")
            .to_owned();
        fake.session = default_session(&fake.model);
        if !session.is_null() {
            let refusal = |r: Refusal| SessionRefusal {
                code: r.code.to_owned(),
                param: r.param,
                message: r.message,
            };
            let Some(update) = session.as_object() else {
                let msg = "Invalid type for 'session': expected an object.";
                return Err(refusal(Refusal::bug("invalid_type", "session", msg)));
            };
            let (merged, config) = fake.check_session(update).map_err(refusal)?;
            fake.apply_session(merged, config);
        }
        fake.conn = Conn::Open;
        fake.connected_at = Some(now);
        fake.last_now = Some(now);
        let created = fake.session.clone();
        fake.send("session.created", json!({ "session": created }));
        fake.schedule(now, fake.script.session_max, TimerKind::Expire);
        if let Some(at) = fake.script.drop_socket_at {
            fake.schedule(now, at, TimerKind::DropSocket);
        }
        for (i, (at, _, _)) in fake.script.inject_errors.clone().into_iter().enumerate() {
            fake.schedule(now, at, TimerKind::InjectError(i));
        }
        Ok(fake)
    }

    /// WebRTC mode: the data channel opened; queued server events (`session.created` first)
    /// become available from [`poll_output`](Self::poll_output). No-op in WebSocket mode.
    pub fn handle_channel_open(&mut self, now: Instant) {
        let now = self.clamp(now);
        if let Some(w) = &mut self.webrtc {
            w.channel_open = true;
        }
        self.run_due(now);
    }

    /// WebRTC mode: caller audio decoded from RTP, mono at `rate_hz`. It counts as input audio
    /// (2 bytes a sample in [`RealtimeReport::input_audio_bytes`]) and feeds server VAD in 20 ms
    /// windows. Ignored with a violation in WebSocket mode, silently for a rate of 0.
    pub fn handle_input_samples(&mut self, now: Instant, samples: &[i16], rate_hz: u32) {
        let now = self.clamp(now);
        if self.webrtc.is_none() {
            self.violate("handle_input_samples outside WebRTC mode".into());
            return;
        }
        self.run_due(now);
        if self.conn != Conn::Open || rate_hz < 1000 || samples.is_empty() {
            return;
        }
        let ms = samples.len() as f64 * 1000.0 / f64::from(rate_hz);
        self.report.input_audio_bytes += 2 * samples.len() as u64;
        self.report.input_audio_ms += ms;
        self.uncommitted_ms += ms;
        if self.script.record_input_audio {
            let bytes = samples.iter().flat_map(|s| s.to_le_bytes());
            self.report.input_audio.extend(bytes);
        }
        if self.vad.is_none() {
            return;
        }
        let window_len = (rate_hz * VAD_WINDOW_MS / 1000) as usize;
        if let Some(w) = &mut self.webrtc
            && w.window_rate != rate_hz
        {
            w.window_rate = rate_hz;
            self.window.clear();
        }
        for &sample in samples {
            self.window.push(sample);
            if self.window.len() >= window_len {
                self.vad_window(now);
                self.window.clear();
            }
        }
    }

    /// WebRTC mode: the next played-out 20 ms frame of model audio, in time order; `None` when
    /// none is waiting (always in WebSocket mode). Frames appear at [`handle_timeout`]
    /// (Self::handle_timeout) as they fall due; at most 5 s of them wait, older ones are dropped.
    #[must_use]
    pub fn poll_audio_frame(&mut self) -> Option<AudioFrame> {
        self.webrtc.as_mut()?.frames.pop_front()
    }

    /// WebRTC mode: the sample rate of [`poll_audio_frame`](Self::poll_audio_frame)'s frames.
    pub fn output_rate_hz(&self) -> Option<u32> {
        self.webrtc.as_ref().map(|w| w.output_rate)
    }

    /// Whether this fake serves a WebRTC call ([`new_webrtc`](Self::new_webrtc)).
    pub fn is_webrtc(&self) -> bool {
        self.webrtc.is_some()
    }

    /// Whether this fake has served its connection (it serves one).
    pub fn has_connected(&self) -> bool {
        self.conn != Conn::NotConnected
    }

    /// The fake for the client's next connection, as the real server would be: a new session
    /// that goes on with the rest of the script (the replies and caller transcripts not yet
    /// used). A scripted drop or refusal happens on the first connection only.
    pub fn successor(&self) -> FakeRealtime {
        let mut script = self.script.clone();
        script.responses = script
            .responses
            .iter()
            .skip(self.next_response)
            .cloned()
            .collect();
        script.caller_transcripts = script
            .caller_transcripts
            .iter()
            .skip(self.caller_turns)
            .cloned()
            .collect();
        script.drop_socket_at = None;
        script.reject_handshake = None;
        script.rate_limited = script.rate_limited.saturating_sub(self.throttled);
        let mut next = FakeRealtime::new(script);
        next.origin = self.origin;
        next
    }

    /// Whether the session is still open (not closed by either side or expired).
    pub fn is_open(&self) -> bool {
        self.conn == Conn::Open
    }

    /// One text frame from the client: a JSON client event.
    ///
    /// Scheduled sends due at or before `now` go out first, so outputs stay in time order.
    pub fn handle_text(&mut self, now: Instant, text: &str) {
        let now = self.clamp(now);
        if self.conn == Conn::NotConnected {
            self.violate("text frame before the handshake".into());
            return;
        }
        self.run_due(now);
        if self.conn != Conn::Open {
            return;
        }
        // Appends are most of a call's events: read them typed, not as a `Value` (anything
        // that does not fit, such as a missing `audio`, takes the general path below).
        if self.webrtc.is_none()
            && let Ok(append) = serde_json::from_str::<AppendEvent<'_>>(text)
            && append.kind == "input_audio_buffer.append"
        {
            self.report.received_types.push(append.kind.into_owned());
            if let Err(refusal) = self.append_audio(now, &append.audio) {
                self.refuse(now, refusal, append.event_id.as_deref());
            }
            return;
        }
        let event: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let msg = format!("We could not parse the JSON body of your request. ({e})");
                return self.refuse(now, Refusal::bug("invalid_value", "", msg), None);
            }
        };
        if let Err(refusal) = self.dispatch(now, &event) {
            let eid = event.get("event_id").and_then(Value::as_str);
            self.refuse(now, refusal, eid);
        }
    }

    /// The client closed the socket: the fake stops.
    pub fn handle_closed(&mut self, now: Instant) {
        self.clamp(now);
        self.report.closed_by_client = true;
        self.conn = Conn::Closed;
        self.timers.clear();
        self.out.clear();
        self.active = None;
        self.stop_playout();
    }

    /// Sends whatever is scheduled at or before `now`; earlier than the deadline it does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clamp(now);
        self.run_due(now);
    }

    /// When the next scheduled send is due; `None` when nothing is scheduled or the socket closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.conn != Conn::Open {
            return None;
        }
        self.timers.iter().map(|t| t.at).min()
    }

    /// The next frame to deliver to the client, in order; `None` when drained (and, in WebRTC
    /// mode, until the data channel opened).
    #[must_use]
    pub fn poll_output(&mut self) -> Option<FakeServerOutput> {
        if self.webrtc.as_ref().is_some_and(|w| !w.channel_open) {
            return None;
        }
        self.out.pop_front()
    }

    /// What the fake saw and did so far.
    pub fn report(&self) -> &RealtimeReport {
        &self.report
    }

    // ---- time and plumbing ----

    /// A `now` older than the last one is clamped, never trusted.
    fn clamp(&mut self, now: Instant) -> Instant {
        let now = self.last_now.map_or(now, |last| now.max(last));
        self.last_now = Some(now);
        now
    }

    fn since(&self, t: Instant) -> Duration {
        self.origin
            .or(self.connected_at)
            .map_or(Duration::ZERO, |c| t.saturating_duration_since(c))
    }

    /// Measures the report's times from `origin` instead of from the connection, so that a
    /// simulation can compare them with its own clock.
    pub fn set_origin(&mut self, origin: Instant) {
        self.origin = Some(origin);
    }

    /// Schedules `kind` at `from + delay`; a delay too large for `Instant` means never.
    fn schedule(&mut self, from: Instant, delay: Duration, kind: TimerKind) {
        let Some(at) = from.checked_add(delay) else {
            return;
        };
        self.timer_seq += 1;
        self.timers.push(Timer {
            at,
            seq: self.timer_seq,
            kind,
        });
    }

    fn run_due(&mut self, now: Instant) {
        while self.conn == Conn::Open {
            let next = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, t)| t.at <= now)
                .min_by_key(|(_, t)| (t.at, t.seq))
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let timer = self.timers.remove(i);
            self.fire(timer);
        }
    }

    fn fire(&mut self, timer: Timer) {
        let at = timer.at;
        match timer.kind {
            TimerKind::ResponseStep => self.response_step(at),
            TimerKind::Playout => self.playout_tick(at),
            TimerKind::Transcript {
                item_id,
                transcript,
            } => {
                let seconds = self.report.input_audio_ms / 1000.0;
                self.send(
                    "conversation.item.input_audio_transcription.completed",
                    json!({
                        "item_id": item_id,
                        "content_index": 0,
                        "transcript": transcript,
                        "usage": {"type": "duration", "seconds": seconds.ceil()},
                    }),
                );
            }
            TimerKind::InjectError(i) => {
                if let Some((_, code, kind)) = self.script.inject_errors.get(i).cloned() {
                    let msg = format!("Injected error: {code}.");
                    self.send_error(at, &kind, &code, &msg, None, None);
                }
            }
            TimerKind::DropSocket => self.close(1006, ""),
            TimerKind::Expire => {
                let secs = self.script.session_max.as_secs();
                let limit = if secs >= 60 && secs.is_multiple_of(60) {
                    format!("{} minutes", secs / 60)
                } else {
                    format!("{secs} seconds")
                };
                let msg = format!("Your session hit the maximum duration of {limit}.");
                self.send_error(
                    at,
                    "invalid_request_error",
                    "session_expired",
                    &msg,
                    None,
                    None,
                );
                self.close(1001, &msg);
            }
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{:04}", self.next_id)
    }

    /// Queues one server event: `type` and a fresh `event_id` plus `fields`.
    fn send(&mut self, ty: &str, fields: Value) {
        if self.conn != Conn::Open {
            return;
        }
        self.next_event += 1;
        let mut map = Map::new();
        map.insert(
            "event_id".into(),
            json!(format!("event_{:04}", self.next_event)),
        );
        map.insert("type".into(), json!(ty));
        if let Value::Object(fields) = fields {
            map.extend(fields);
        }
        self.out
            .push_back(FakeServerOutput::Text(Value::Object(map).to_string()));
    }

    fn send_error(
        &mut self,
        now: Instant,
        kind: &str,
        code: &str,
        message: &str,
        param: Option<&str>,
        client_event_id: Option<&str>,
    ) {
        if self.conn != Conn::Open {
            return;
        }
        let at = self.since(now);
        self.report.errors_sent.push((at, code.to_owned()));
        self.send(
            "error",
            json!({"error": {
                "type": kind,
                "code": code,
                "message": message,
                "param": param,
                "event_id": client_event_id,
            }}),
        );
    }

    /// Answers a refused client event, echoing its `event_id`.
    fn refuse(&mut self, now: Instant, r: Refusal, eid: Option<&str>) {
        if r.bug {
            let param = r.param.as_deref().unwrap_or("-");
            self.violate(format!("{} ({param}): {}", r.code, r.message));
        }
        let kind = "invalid_request_error";
        self.send_error(now, kind, r.code, &r.message, r.param.as_deref(), eid);
    }

    fn violate(&mut self, what: String) {
        self.report.violations.push(what);
    }

    fn close(&mut self, code: u16, reason: &str) {
        if self.conn != Conn::Open {
            return;
        }
        self.out.push_back(FakeServerOutput::Close {
            code,
            reason: reason.to_owned(),
        });
        self.conn = Conn::Closed;
        self.timers.clear();
        self.active = None;
        self.stop_playout();
    }

    fn add_item(&mut self, item: Value) -> Option<String> {
        let previous = self.last_item_id.clone();
        if let Some(id) = item.get("id").and_then(Value::as_str) {
            self.last_item_id = Some(id.to_owned());
            self.items.insert(id.to_owned(), item);
        }
        previous
    }

    // ---- session ----

    fn dispatch(&mut self, now: Instant, event: &Value) -> Handled {
        let Some(ty) = event.get("type").and_then(Value::as_str) else {
            return Err(Refusal::bug(
                "invalid_value",
                "type",
                "Missing or invalid 'type'.",
            ));
        };
        self.report.received_types.push(ty.to_owned());
        match ty {
            "session.update" => self.on_session_update(event),
            "input_audio_buffer.append" if self.webrtc.is_some() => Err(Refusal::bug(
                "invalid_value",
                "type",
                "input_audio_buffer.append is not supported for WebRTC sessions: audio comes over RTP.",
            )),
            "input_audio_buffer.append" => self.on_append(now, event),
            "input_audio_buffer.commit" => self.on_commit(now),
            "input_audio_buffer.clear" => {
                self.reset_input();
                self.send("input_audio_buffer.cleared", json!({}));
                Ok(())
            }
            "conversation.item.create" => self.on_item_create(now, event),
            "conversation.item.truncate" => self.on_truncate(now, event),
            "conversation.item.retrieve" => self.on_item_lookup(false, event),
            "conversation.item.delete" => self.on_item_lookup(true, event),
            "response.create" => self.on_response_create(now, event),
            "response.cancel" => self.on_response_cancel(event),
            "output_audio_buffer.clear" if self.webrtc.is_some() => {
                self.on_output_clear(now);
                Ok(())
            }
            "output_audio_buffer.clear" => Err(Refusal::bug(
                "invalid_value",
                "type",
                "output_audio_buffer.clear is only supported for WebRTC and SIP sessions.",
            )),
            other => Err(Refusal::bug(
                "invalid_value",
                "type",
                format!("Invalid value: '{other}'. Supported values are the GA client events."),
            )),
        }
    }

    fn on_session_update(&mut self, event: &Value) -> Handled {
        let Some(update) = event.get("session") else {
            let msg = "Missing required parameter: 'session'.";
            return Err(Refusal::bug("missing_required_parameter", "session", msg));
        };
        self.report.session_updates.push(update.clone());
        let Some(update) = update.as_object() else {
            let msg = "Invalid type for 'session': expected an object.";
            return Err(Refusal::bug("invalid_type", "session", msg));
        };
        let (session, config) = self.check_session(update)?;
        self.apply_session(session, config);
        let session = self.session.clone();
        self.send("session.updated", json!({ "session": session }));
        Ok(())
    }

    /// Validates a `session` object against the current session; returns the merged session.
    fn check_session(
        &self,
        update: &Map<String, Value>,
    ) -> Result<(Value, SessionConfig), Refusal> {
        if let Some(param) = unknown_session_field(update) {
            let msg = format!("Unknown parameter: '{param}'.");
            return Err(Refusal::bug("unknown_parameter", &param, msg));
        }
        match update.get("type").and_then(Value::as_str) {
            Some("realtime") => {}
            Some(other) => {
                let msg = format!("Invalid value: '{other}'. Supported values are: 'realtime'.");
                return Err(Refusal::bug("invalid_value", "session.type", msg));
            }
            None => {
                let msg = "Missing required parameter: 'session.type'.";
                return Err(Refusal::bug(
                    "missing_required_parameter",
                    "session.type",
                    msg,
                ));
            }
        }
        if update
            .get("model")
            .is_some_and(|m| m.as_str() != Some(self.model.as_str()))
        {
            let msg = "The session's model cannot be changed.";
            return Err(Refusal::bug("invalid_value", "session.model", msg));
        }
        let mut session = self.session.clone();
        merge_session(&mut session, update);
        let config = session_config(&session)?;
        Ok((session, config))
    }

    fn apply_session(&mut self, session: Value, config: SessionConfig) {
        if config.input != self.input_format || config.vad.is_none() {
            self.reset_input();
        }
        self.session = session;
        self.input_format = config.input;
        self.output_format = config.output;
        self.vad = config.vad;
        self.transcription = config.transcription;
    }

    // ---- input audio and VAD ----

    /// Drops partial VAD state, as when the buffer is cleared or its format changes.
    fn reset_input(&mut self) {
        self.window.clear();
        self.odd_byte = None;
        self.vad_state = VAD_IDLE;
        self.uncommitted_ms = 0.0;
        self.vad_pos_ms = self.report.input_audio_ms as u64;
    }

    fn on_append(&mut self, now: Instant, event: &Value) -> Handled {
        let Some(audio) = event.get("audio").and_then(Value::as_str) else {
            let msg = "Missing required parameter: 'audio'.";
            return Err(Refusal::bug("missing_required_parameter", "audio", msg));
        };
        self.append_audio(now, audio)
    }

    fn append_audio(&mut self, now: Instant, audio: &str) -> Handled {
        let Ok(bytes) = BASE64.decode(audio) else {
            let msg = "Invalid 'audio'. Expected base64-encoded audio.";
            return Err(Refusal::bug("invalid_value", "audio", msg));
        };
        if bytes.len() > MAX_APPEND_BYTES {
            let msg = "Audio chunk exceeds the 15 MiB limit.";
            return Err(Refusal::bug("invalid_value", "audio", msg));
        }
        let ms = bytes.len() as f64 / self.input_format.bytes_per_ms();
        self.report.input_audio_bytes += bytes.len() as u64;
        self.report.input_audio_ms += ms;
        self.uncommitted_ms += ms;
        if self.script.record_input_audio {
            self.report.input_audio.extend_from_slice(&bytes);
        }
        if self.vad.is_some() {
            self.feed_vad(now, &bytes);
        }
        Ok(())
    }

    /// Decodes input audio into 20 ms windows for the VAD.
    fn feed_vad(&mut self, now: Instant, bytes: &[u8]) {
        let format = self.input_format;
        let window_len = (format.rate() * VAD_WINDOW_MS / 1000) as usize;
        let push = |this: &mut Self, sample: i16| {
            this.window.push(sample);
            if this.window.len() >= window_len {
                this.vad_window(now);
                this.window.clear();
            }
        };
        for &b in bytes {
            match format {
                AudioFormat::Pcmu => push(self, g711::ulaw_decode(b)),
                AudioFormat::Pcma => push(self, g711::alaw_decode(b)),
                AudioFormat::Pcm24k => match self.odd_byte.take() {
                    Some(lo) => push(self, i16::from_le_bytes([lo, b])),
                    None => self.odd_byte = Some(b),
                },
            }
        }
    }

    /// Judges one full 20 ms window.
    fn vad_window(&mut self, now: Instant) {
        let Some(vad) = self.vad else { return };
        let loud = rms(&self.window) > self.script.vad_threshold_rms;
        let start_ms = self.vad_pos_ms;
        self.vad_pos_ms += u64::from(VAD_WINDOW_MS);
        match &mut self.vad_state {
            VadState::Idle {
                loud_ms,
                loud_start_ms,
            } => {
                if !loud {
                    *loud_ms = 0;
                    return;
                }
                if *loud_ms == 0 {
                    *loud_start_ms = start_ms;
                }
                *loud_ms += VAD_WINDOW_MS;
                if *loud_ms >= VAD_START_MS {
                    let audio_start_ms =
                        loud_start_ms.saturating_sub(u64::from(vad.prefix_padding_ms));
                    self.speech_started(now, vad, audio_start_ms);
                }
            }
            VadState::Speaking { item_id, quiet_ms } => {
                if loud {
                    *quiet_ms = 0;
                    return;
                }
                *quiet_ms += VAD_WINDOW_MS;
                if *quiet_ms >= vad.silence_ms {
                    let item_id = std::mem::take(item_id);
                    self.vad_state = VAD_IDLE;
                    self.speech_stopped(now, vad, item_id);
                }
            }
        }
    }

    fn speech_started(&mut self, now: Instant, vad: Vad, audio_start_ms: u64) {
        let item_id = self.id("item");
        self.vad_state = VadState::Speaking {
            item_id: item_id.clone(),
            quiet_ms: 0,
        };
        let at = self.since(now);
        self.report.speech_started.push(at);
        self.send(
            "input_audio_buffer.speech_started",
            json!({"audio_start_ms": audio_start_ms, "item_id": item_id}),
        );
        if vad.interrupt_response && self.active.is_some() {
            self.cancel("turn_detected");
        }
        if vad.interrupt_response && self.webrtc.as_ref().is_some_and(|w| !w.segments.is_empty()) {
            self.clear_playout(now, BufferEvent::ClearedByVad);
        }
    }

    fn speech_stopped(&mut self, now: Instant, vad: Vad, item_id: String) {
        let at = self.since(now);
        self.report.speech_stopped.push(at);
        let audio_end_ms = self.vad_pos_ms;
        self.send(
            "input_audio_buffer.speech_stopped",
            json!({"audio_end_ms": audio_end_ms, "item_id": item_id}),
        );
        self.commit(now, item_id);
        // With a response still running (interrupt_response off) the turn waits for the client.
        if vad.create_response && self.active.is_none() {
            self.start_response(now, Trigger::Vad);
        }
    }

    fn on_commit(&mut self, now: Instant) -> Handled {
        if self.uncommitted_ms < MIN_COMMIT_MS {
            let msg = format!(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has {:.2}ms of audio.",
                self.uncommitted_ms
            );
            return Err(Refusal::race("input_audio_buffer_commit_empty", None, msg));
        }
        let item_id = match std::mem::replace(&mut self.vad_state, VAD_IDLE) {
            VadState::Speaking { item_id, .. } => item_id,
            VadState::Idle { .. } => self.id("item"),
        };
        self.commit(now, item_id);
        Ok(())
    }

    /// Turns the buffered caller audio into a user item.
    fn commit(&mut self, now: Instant, item_id: String) {
        self.uncommitted_ms = 0.0;
        let item = json!({
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": null}],
        });
        let previous = self.add_item(item.clone());
        self.send(
            "input_audio_buffer.committed",
            json!({"previous_item_id": previous, "item_id": item_id}),
        );
        self.send(
            "conversation.item.added",
            json!({"previous_item_id": previous, "item": item}),
        );
        self.send(
            "conversation.item.done",
            json!({"previous_item_id": previous, "item": item}),
        );
        let transcript = self
            .script
            .caller_transcripts
            .get(self.caller_turns)
            .cloned()
            .unwrap_or_else(|| "(caller speech)".to_owned());
        self.caller_turns += 1;
        if self.transcription {
            self.schedule(
                now,
                TRANSCRIPT_DELAY,
                TimerKind::Transcript {
                    item_id,
                    transcript,
                },
            );
        }
    }

    // ---- conversation items ----

    fn on_item_create(&mut self, now: Instant, event: &Value) -> Handled {
        let Some(item) = event.get("item").and_then(Value::as_object) else {
            let msg = "Missing required parameter: 'item'.";
            return Err(Refusal::bug("missing_required_parameter", "item", msg));
        };
        let mut item = item.clone();
        match item.get("type").and_then(Value::as_str) {
            Some("function_call_output") => self.take_call_output(now, &item)?,
            Some("message") => self.take_message(now, &item)?,
            Some("function_call") => {}
            other => {
                let msg = format!("Invalid value: '{}' for 'item.type'.", other.unwrap_or(""));
                return Err(Refusal::bug("invalid_value", "item.type", msg));
            }
        }
        if !item.get("id").is_some_and(Value::is_string) {
            let id = self.id("item");
            item.insert("id".into(), json!(id));
        }
        item.insert("object".into(), json!("realtime.item"));
        item.entry("status").or_insert(json!("completed"));
        let item = Value::Object(item);
        let previous = self.add_item(item.clone());
        let fields = json!({"previous_item_id": previous, "item": item});
        self.send("conversation.item.added", fields.clone());
        self.send("conversation.item.done", fields);
        Ok(())
    }

    /// A tool result must answer a call the fake issued, once.
    fn take_call_output(&mut self, now: Instant, item: &Map<String, Value>) -> Handled {
        let call_id = item.get("call_id").and_then(Value::as_str).unwrap_or("");
        let Some(output) = item.get("output").and_then(Value::as_str) else {
            let msg = "Invalid 'item.output': expected a string.";
            return Err(Refusal::bug("invalid_type", "item.output", msg));
        };
        let msg = match self.calls.get(call_id) {
            Some(false) => None,
            Some(true) => Some(format!("Tool call '{call_id}' already has an output.")),
            None => Some(format!("No tool call found with call_id '{call_id}'.")),
        };
        if let Some(msg) = msg {
            return Err(Refusal::bug("invalid_value", "item.call_id", msg));
        }
        self.calls.insert(call_id.to_owned(), true);
        let at = self.since(now);
        let record = (at, call_id.to_owned(), output.to_owned());
        self.report.function_outputs.push(record);
        Ok(())
    }

    /// Checks a message's role and content types; records user text.
    fn take_message(&mut self, now: Instant, item: &Map<String, Value>) -> Handled {
        let role = item.get("role").and_then(Value::as_str).unwrap_or("");
        let allowed: &[&str] = match role {
            "user" => &["input_text", "input_audio", "input_image"],
            "system" => &["input_text"],
            "assistant" => &["output_text", "output_audio"],
            _ => {
                let msg = format!("Invalid value: '{role}' for 'item.role'.");
                return Err(Refusal::bug("invalid_value", "item.role", msg));
            }
        };
        let Some(content) = item.get("content").and_then(Value::as_array) else {
            let msg = "Missing required parameter: 'item.content'.";
            return Err(Refusal::bug(
                "missing_required_parameter",
                "item.content",
                msg,
            ));
        };
        let mut text = String::new();
        for part in content {
            let ty = part.get("type").and_then(Value::as_str).unwrap_or("");
            if !allowed.contains(&ty) {
                let msg = format!("Invalid content type '{ty}' for a {role} message.");
                return Err(Refusal::bug("invalid_value", "item.content.type", msg));
            }
            if ty == "input_text" {
                text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
            }
        }
        if role == "user" && !text.is_empty() {
            let at = self.since(now);
            self.report.user_texts.push((at, text));
        }
        Ok(())
    }

    fn on_item_lookup(&mut self, delete: bool, event: &Value) -> Handled {
        let item_id = event.get("item_id").and_then(Value::as_str).unwrap_or("");
        let Some(item) = self.items.get(item_id).cloned() else {
            let (code, verb) = if delete {
                ("item_delete_invalid_item_id", "delete")
            } else {
                ("item_retrieve_invalid_item_id", "retrieve")
            };
            let msg = format!("Cannot {verb} item: item with id '{item_id}' not found.");
            return Err(Refusal::race(code, Some("item_id"), msg));
        };
        if delete {
            self.items.remove(item_id);
            self.send("conversation.item.deleted", json!({"item_id": item_id}));
        } else {
            self.send("conversation.item.retrieved", json!({"item": item}));
        }
        Ok(())
    }

    fn on_truncate(&mut self, now: Instant, event: &Value) -> Handled {
        let Some(item_id) = event.get("item_id").and_then(Value::as_str) else {
            let msg = "Missing required parameter: 'item_id'.";
            return Err(Refusal::bug("missing_required_parameter", "item_id", msg));
        };
        if event.get("content_index").and_then(Value::as_u64) != Some(0) {
            let msg = "Invalid 'content_index': the audio content of an item is at index 0.";
            return Err(Refusal::bug("invalid_value", "content_index", msg));
        }
        let Some(end) = event.get("audio_end_ms").and_then(Value::as_u64) else {
            let msg = "Invalid 'audio_end_ms': expected a non-negative integer.";
            return Err(Refusal::bug("invalid_type", "audio_end_ms", msg));
        };
        let sent = self.assistant_audio.get(item_id).copied();
        let accepted = sent.is_some_and(|sent| end <= u64::from(sent));
        self.report.truncates.push(Truncate {
            at: self.since(now),
            item_id: item_id.to_owned(),
            audio_end_ms: end,
            accepted,
        });
        match sent {
            None => {
                let msg = format!("Item '{item_id}' is not an assistant audio item.");
                Err(Refusal::bug("invalid_value", "item_id", msg))
            }
            // A bridge can overshoot by rounding: an error, not a violation.
            Some(sent) if !accepted => {
                let msg = format!("Audio content of {sent}ms is already shorter than {end}ms");
                Err(Refusal::race("invalid_value", Some("audio_end_ms"), msg))
            }
            Some(_) => {
                let fields = json!({"item_id": item_id, "content_index": 0, "audio_end_ms": end});
                self.send("conversation.item.truncated", fields);
                Ok(())
            }
        }
    }

    // ---- responses ----

    fn on_response_create(&mut self, now: Instant, event: &Value) -> Handled {
        self.report.response_creates += 1;
        if let Some(response) = event.get("response").filter(|r| !r.is_null()) {
            let Some(response) = response.as_object() else {
                let msg = "Invalid type for 'response': expected an object.";
                return Err(Refusal::bug("invalid_type", "response", msg));
            };
            if let Some(k) = response
                .keys()
                .find(|k| !RESPONSE_FIELDS.contains(&k.as_str()))
            {
                let param = format!("response.{k}");
                let msg = format!("Unknown parameter: '{param}'.");
                return Err(Refusal::bug("unknown_parameter", &param, msg));
            }
        }
        if let Some(active) = &self.active {
            let msg = format!(
                "Conversation already has an active response in progress: {}. Wait until the response is finished before creating a new one.",
                active.id
            );
            return Err(Refusal::race(
                "conversation_already_has_active_response",
                None,
                msg,
            ));
        }
        self.start_response(now, Trigger::Client);
        Ok(())
    }

    fn on_response_cancel(&mut self, event: &Value) -> Handled {
        self.report.cancels += 1;
        let wanted = event.get("response_id").and_then(Value::as_str);
        let active = self.active.as_ref().map(|a| a.id.as_str());
        if active.is_none() || wanted.is_some_and(|w| Some(w) != active) {
            let msg = "Cancellation failed: no active response found";
            return Err(Refusal::race("response_cancel_not_active", None, msg));
        }
        self.cancel("client_cancelled");
        Ok(())
    }

    fn response_object(
        &self,
        id: &str,
        status: &str,
        details: Value,
        output: Vec<Value>,
        usage: Value,
    ) -> Value {
        let voice = self
            .session
            .pointer("/audio/output/voice")
            .cloned()
            .unwrap_or(Value::Null);
        json!({
            "object": "realtime.response",
            "id": id,
            "status": status,
            "status_details": details,
            "output": output,
            "conversation_id": "conv_0001",
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": self.output_format.to_json(), "voice": voice}},
            "usage": usage,
            "metadata": null,
        })
    }

    fn start_response(&mut self, now: Instant, trigger: Trigger) {
        let script = self
            .script
            .responses
            .get(self.next_response)
            .cloned()
            .unwrap_or_default();
        self.next_response += 1;
        let id = self.id("resp");
        self.report.responses.push(ResponseRecord {
            id: id.clone(),
            trigger,
            status: "in_progress".into(),
            audio_ms_sent: 0,
            item_id: None,
            audio_ms_played: 0,
            tool_call_ids: Vec::new(),
            created_at: self.since(now),
            done_at: None,
        });
        let created =
            self.response_object(&id, "in_progress", Value::Null, Vec::new(), Value::Null);
        self.send("response.created", json!({ "response": created }));
        let reserved = 4096 + script.text.len() as u64;
        self.send(
            "rate_limits.updated",
            json!({"rate_limits": [
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {"name": "tokens", "limit": 400000, "remaining": 400_000u64.saturating_sub(reserved), "reset_seconds": 0.6},
            ]}),
        );
        let mut active = Active {
            id: id.clone(),
            record: self.report.responses.len() - 1,
            format: self.output_format,
            item_id: None,
            sent_ms: 0,
            samples: 0,
            chunks_sent: 0,
            transcript_sent: String::new(),
            output: Vec::new(),
            script,
        };
        if self.throttled < self.script.rate_limited {
            self.throttled += 1;
            self.next_response -= 1;
            let record = active.record;
            self.report.responses[record].status = "failed".into();
            self.report.responses[record].done_at = Some(self.since(now));
            let details = json!({"type": "failed", "error": {
                "type": "rate_limit_error", "code": "inference_rate_limit_exceeded",
                "message": "Rate limit reached for inference."}});
            self.send_done(active, "failed", details);
            return;
        }
        if active.script.audio_ms > 0 {
            let item_id = self.id("item");
            let item = json!({
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            });
            let previous = self.add_item(item.clone());
            self.send(
                "response.output_item.added",
                json!({"response_id": id, "output_index": 0, "item": item}),
            );
            self.send(
                "conversation.item.added",
                json!({"previous_item_id": previous, "item": item}),
            );
            self.send(
                "response.content_part.added",
                json!({
                    "response_id": id, "item_id": item_id, "output_index": 0, "content_index": 0,
                    "part": {"type": "audio", "transcript": ""},
                }),
            );
            self.assistant_audio.insert(item_id.clone(), 0);
            self.report.responses[active.record].item_id = Some(item_id.clone());
            active.item_id = Some(item_id);
        }
        self.active = Some(active);
        self.schedule(now, self.script.first_audio_delay, TimerKind::ResponseStep);
    }

    /// Sends the next audio chunk, or finishes the response after the last one.
    fn response_step(&mut self, at: Instant) {
        let Some(mut r) = self.active.take() else {
            return;
        };
        let chunk_ms = self.script.audio_chunk_ms.max(1);
        if let Some(item_id) = r.item_id.clone()
            && r.sent_ms < r.script.audio_ms
        {
            let ms = chunk_ms.min(r.script.audio_ms - r.sent_ms);
            if self.webrtc.is_some() {
                self.queue_playout(at, &r, ms);
            } else {
                let rate = r.format.rate();
                let mut samples = vec![0i16; (rate / 1000 * ms) as usize];
                speech_like(rate, ASSISTANT_VOICE, r.samples, &mut samples);
                r.samples += samples.len() as u64;
                let delta = BASE64.encode(r.format.encode(&samples));
                self.send(
                    "response.output_audio.delta",
                    json!({
                        "response_id": r.id, "item_id": item_id, "output_index": 0,
                        "content_index": 0, "delta": delta,
                    }),
                );
            }
            r.sent_ms += ms;
            self.report.responses[r.record].audio_ms_sent = r.sent_ms;
            self.assistant_audio.insert(item_id.clone(), r.sent_ms);
            // The transcript is spread evenly over the chunks.
            let chunks = r.script.audio_ms.div_ceil(chunk_ms) as usize;
            let chars: Vec<char> = r.script.text.chars().collect();
            let k = r.chunks_sent as usize;
            let piece: String = chars
                .get(k * chars.len() / chunks..(k + 1) * chars.len() / chunks)
                .unwrap_or_default()
                .iter()
                .collect();
            r.chunks_sent += 1;
            if !piece.is_empty() {
                r.transcript_sent.push_str(&piece);
                self.send(
                    "response.output_audio_transcript.delta",
                    json!({
                        "response_id": r.id, "item_id": item_id, "output_index": 0,
                        "content_index": 0, "delta": piece,
                    }),
                );
            }
            if r.sent_ms < r.script.audio_ms {
                self.active = Some(r);
                self.schedule(at, self.script.chunk_interval, TimerKind::ResponseStep);
                return;
            }
        }
        self.finish_message(&mut r, "completed");
        for (name, arguments) in r.script.tool_calls.clone() {
            self.issue_call(&mut r, &name, &arguments);
        }
        self.report.responses[r.record].status = "completed".into();
        self.report.responses[r.record].done_at = self.last_now.map(|t| self.since(t));
        self.send_done(r, "completed", Value::Null);
        // An underrun waits for audio that will not come: let the buffer finish.
        self.kick_playout(at);
    }

    /// Closes the message item, if any: the full transcript when completed, the part sent when
    /// cut short.
    fn finish_message(&mut self, r: &mut Active, status: &str) {
        let Some(item_id) = r.item_id.clone() else {
            return;
        };
        let transcript = if status == "completed" {
            r.script.text.clone()
        } else {
            r.transcript_sent.clone()
        };
        let ids =
            json!({"response_id": r.id, "item_id": item_id, "output_index": 0, "content_index": 0});
        self.send("response.output_audio.done", ids.clone());
        let mut fields = ids.clone();
        fields["transcript"] = json!(transcript);
        self.send("response.output_audio_transcript.done", fields);
        let mut fields = ids;
        fields["part"] = json!({"type": "audio", "transcript": transcript});
        self.send("response.content_part.done", fields);
        let item = json!({
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": [{"type": "output_audio", "transcript": transcript}],
        });
        self.items.insert(item_id, item.clone());
        self.send(
            "response.output_item.done",
            json!({"response_id": r.id, "output_index": 0, "item": item}),
        );
        r.output.push(item);
    }

    fn issue_call(&mut self, r: &mut Active, name: &str, arguments: &Value) {
        let output_index = r.output.len();
        let item_id = self.id("item");
        let call_id = self.id("call");
        let args = arguments.to_string();
        let mut item = json!({
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        });
        self.add_item(item.clone());
        self.send(
            "response.output_item.added",
            json!({"response_id": r.id, "output_index": output_index, "item": item}),
        );
        self.send(
            "response.function_call_arguments.delta",
            json!({
                "response_id": r.id, "item_id": item_id, "output_index": output_index,
                "call_id": call_id, "delta": args,
            }),
        );
        self.send(
            "response.function_call_arguments.done",
            json!({
                "response_id": r.id, "item_id": item_id, "output_index": output_index,
                "call_id": call_id, "name": name, "arguments": args,
            }),
        );
        item["status"] = json!("completed");
        item["arguments"] = json!(args);
        self.items.insert(item_id, item.clone());
        self.send(
            "response.output_item.done",
            json!({"response_id": r.id, "output_index": output_index, "item": item}),
        );
        r.output.push(item);
        self.calls.insert(call_id.clone(), false);
        self.report.responses[r.record].tool_call_ids.push(call_id);
    }

    fn send_done(&mut self, r: Active, status: &str, details: Value) {
        let audio_tokens = u64::from(r.sent_ms / 50);
        let text_tokens = (r.transcript_sent.len() as u64).div_ceil(4);
        let input_audio = (self.report.input_audio_ms / 100.0) as u64;
        let usage = json!({
            "total_tokens": 120 + input_audio + audio_tokens + text_tokens,
            "input_tokens": 120 + input_audio,
            "output_tokens": audio_tokens + text_tokens,
            "input_token_details": {
                "text_tokens": 120, "audio_tokens": input_audio, "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0},
            },
            "output_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_tokens},
        });
        let response = self.response_object(&r.id, status, details, r.output, usage);
        self.send("response.done", json!({ "response": response }));
    }

    /// Stops the active response: its audio stops and `response.done` says `cancelled`.
    fn cancel(&mut self, reason: &str) {
        let Some(mut r) = self.active.take() else {
            return;
        };
        self.timers
            .retain(|t| !matches!(t.kind, TimerKind::ResponseStep));
        self.finish_message(&mut r, "incomplete");
        self.report.responses[r.record].status = "cancelled".into();
        self.report.responses[r.record].done_at = self.last_now.map(|t| self.since(t));
        self.send_done(
            r,
            "cancelled",
            json!({"type": "cancelled", "reason": reason}),
        );
        if let Some(now) = self.last_now {
            self.kick_playout(now);
        }
    }

    // ---- WebRTC output audio buffer ----

    /// Adds `ms` of a response's freshly generated audio to the output buffer.
    fn queue_playout(&mut self, at: Instant, r: &Active, ms: u32) {
        let Some(w) = &mut self.webrtc else { return };
        if w.discard.as_deref() == Some(r.id.as_str()) {
            return;
        }
        let samples = u64::from(w.output_rate / 1000 * ms);
        match w.segments.back_mut() {
            Some(seg) if seg.response_id == r.id => seg.queued += samples,
            _ => w.segments.push_back(Segment {
                response_id: r.id.clone(),
                record: r.record,
                item_id: r.item_id.clone(),
                queued: samples,
                played: 0,
                started: false,
            }),
        }
        self.kick_playout(at);
    }

    /// Starts the 20 ms playout clock at `at` if audio waits and the clock is stopped.
    fn kick_playout(&mut self, at: Instant) {
        let Some(w) = &mut self.webrtc else { return };
        if w.tick_at.is_some() || w.segments.is_empty() || self.conn != Conn::Open {
            return;
        }
        w.tick_at = Some(at);
        self.schedule(at, Duration::ZERO, TimerKind::Playout);
    }

    /// Plays one 20 ms frame at `at`, or ends finished responses' audio.
    fn playout_tick(&mut self, at: Instant) {
        let active = self.active.as_ref().map(|a| a.id.clone());
        let Some(w) = &mut self.webrtc else { return };
        w.tick_at = None;
        let rate = w.output_rate;
        let mut events = Vec::new();
        let mut frame = None;
        while let Some(seg) = w.segments.front_mut() {
            if seg.queued == 0 {
                if active.as_deref() == Some(seg.response_id.as_str()) {
                    break; // underrun: the next chunk restarts the clock
                }
                let played = ms_of(seg.played, rate);
                events.push((BufferEvent::Stopped, seg.response_id.clone(), played));
                w.segments.pop_front();
                continue;
            }
            if !seg.started {
                seg.started = true;
                events.push((BufferEvent::Started, seg.response_id.clone(), 0));
            }
            let frame_len = u64::from(rate * FRAME_MS / 1000);
            let n = seg.queued.min(frame_len);
            let mut samples = vec![0i16; frame_len as usize];
            speech_like(rate, ASSISTANT_VOICE, w.pos, &mut samples[..n as usize]);
            let speech = SpeechSpan {
                voice: ASSISTANT_VOICE,
                start: w.pos,
                len: n as usize,
            };
            w.pos += n;
            seg.queued -= n;
            seg.played += n;
            frame = Some((seg.record, seg.played, n, samples, speech));
            break;
        }
        for (event, response_id, played_ms) in events {
            self.buffer_event(at, event, Some(response_id), played_ms);
        }
        let Some((record, played, n, samples, speech)) = frame else {
            return;
        };
        let Some(w) = &mut self.webrtc else { return };
        if w.frames.len() >= MAX_QUEUED_FRAMES {
            w.frames.pop_front();
            self.report.audio_frames_dropped += 1;
        }
        w.frames.push_back(AudioFrame {
            at,
            samples,
            speech: Some(speech),
        });
        w.tick_at = at.checked_add(FRAME);
        self.report.audio_played_ms += u64::from(ms_of(n, rate));
        if let Some(rec) = self.report.responses.get_mut(record) {
            rec.audio_ms_played = ms_of(played, rate);
        }
        self.schedule(at, FRAME, TimerKind::Playout);
    }

    /// Sends one `output_audio_buffer.*` event and records it.
    fn buffer_event(
        &mut self,
        now: Instant,
        event: BufferEvent,
        response_id: Option<String>,
        played_ms: u32,
    ) {
        let ty = match event {
            BufferEvent::Started => "output_audio_buffer.started",
            BufferEvent::Stopped => "output_audio_buffer.stopped",
            BufferEvent::ClearedByVad | BufferEvent::ClearedByClient => {
                "output_audio_buffer.cleared"
            }
        };
        self.send(ty, json!({ "response_id": response_id }));
        let at = self.since(now);
        self.report.output_buffer.push(OutputBufferRecord {
            at,
            event,
            response_id,
            played_ms,
        });
    }

    /// Empties the output buffer: what was played is all the items' audio now.
    fn clear_playout(&mut self, now: Instant, cause: BufferEvent) {
        let active = self.active.as_ref().map(|a| a.id.clone());
        let Some(w) = &mut self.webrtc else { return };
        let rate = w.output_rate;
        let segments: Vec<Segment> = w.segments.drain(..).collect();
        // Frames already in `frames` were due at or before now: they have played.
        w.tick_at = None;
        // A client clear while the response still generates: drop the rest of its audio.
        if active.is_some() {
            w.discard.clone_from(&active);
        }
        self.timers
            .retain(|t| !matches!(t.kind, TimerKind::Playout));
        for seg in &segments {
            if let Some(item_id) = &seg.item_id
                && let Some(ms) = self.assistant_audio.get_mut(item_id)
            {
                *ms = (*ms).min(ms_of(seg.played, rate));
            }
        }
        let (response_id, played) = match segments.first() {
            Some(seg) => (Some(seg.response_id.clone()), ms_of(seg.played, rate)),
            None => (active, 0),
        };
        self.buffer_event(now, cause, response_id, played);
    }

    fn on_output_clear(&mut self, now: Instant) {
        self.clear_playout(now, BufferEvent::ClearedByClient);
    }

    /// Drops the buffer without events, when the session ends.
    fn stop_playout(&mut self) {
        if let Some(w) = &mut self.webrtc {
            w.segments.clear();
            w.frames.clear();
            w.tick_at = None;
        }
    }
}

/// One output frame's length.
const FRAME: Duration = Duration::from_millis(FRAME_MS as u64);
/// Output frames are 20 ms.
const FRAME_MS: u32 = 20;

/// Milliseconds in `samples` at `rate`, saturating.
fn ms_of(samples: u64, rate: u32) -> u32 {
    u32::try_from(samples * 1000 / u64::from(rate.max(1))).unwrap_or(u32::MAX)
}

/// Checks a handshake URL and returns its model; the error is an HTTP status.
fn parse_url(url: &str) -> Result<String, u16> {
    let rest = url
        .strip_prefix("wss://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or(404u16)?;
    let (host, path_query) = rest.split_once('/').ok_or(404u16)?;
    if host.is_empty() {
        return Err(404);
    }
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    if path != "v1/realtime" && !path.ends_with("/v1/realtime") {
        return Err(404);
    }
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("model="))
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .ok_or(400)
}

/// The session the real server starts with: PCM 24 kHz both ways, server VAD, no tools.
fn default_session(model: &str) -> Value {
    json!({
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_0001",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": null,
        "truncation": "auto",
        "prompt": null,
        "expires_at": 0,
        "include": null,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": null,
                "noise_reduction": null,
                "turn_detection": server_vad_defaults(),
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "alloy",
                "speed": 1.0,
            },
        },
    })
}

fn server_vad_defaults() -> Value {
    json!({
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "idle_timeout_ms": null,
        "create_response": true,
        "interrupt_response": true,
    })
}

/// The first session field the GA API does not know, as a `param` path.
fn unknown_session_field(update: &Map<String, Value>) -> Option<String> {
    if let Some(k) = update
        .keys()
        .find(|k| !SESSION_FIELDS.contains(&k.as_str()))
    {
        return Some(format!("session.{k}"));
    }
    let audio = update.get("audio").and_then(Value::as_object)?;
    for (side, fields) in [
        ("input", AUDIO_INPUT_FIELDS),
        ("output", AUDIO_OUTPUT_FIELDS),
    ] {
        if let Some(obj) = audio.get(side).and_then(Value::as_object)
            && let Some(k) = obj.keys().find(|k| !fields.contains(&k.as_str()))
        {
            return Some(format!("session.audio.{side}.{k}"));
        }
    }
    let k = audio.keys().find(|k| *k != "input" && *k != "output")?;
    Some(format!("session.audio.{k}"))
}

/// Applies an update: `audio.input`/`audio.output` merge field by field; every other field
/// (including whole `format` and `turn_detection` objects) replaces the old value.
fn merge_session(session: &mut Value, update: &Map<String, Value>) {
    for (k, v) in update {
        if k == "audio"
            && let Some(audio) = v.as_object()
        {
            for (side, fields) in audio {
                let slot = &mut session["audio"][side.as_str()];
                match fields.as_object() {
                    Some(fields) if slot.is_object() => {
                        for (f, fv) in fields {
                            slot[f.as_str()] = fv.clone();
                        }
                    }
                    _ => *slot = fields.clone(),
                }
            }
        } else {
            session[k.as_str()] = v.clone();
        }
    }
    // The effective session shows every default, as the real server's does.
    let input = &mut session["audio"]["input"];
    if let Some(td) = input.get("turn_detection").and_then(Value::as_object)
        && td.get("type").and_then(Value::as_str) == Some("server_vad")
    {
        let mut full = server_vad_defaults();
        for (f, fv) in td {
            full[f.as_str()] = fv.clone();
        }
        input["turn_detection"] = full;
    }
    for side in ["input", "output"] {
        let format = &mut session["audio"][side]["format"];
        if format.get("type").and_then(Value::as_str) == Some("audio/pcm")
            && format.get("rate").is_none()
        {
            format["rate"] = json!(24000);
        }
    }
}

/// Validates the merged session and reads what the fake acts on.
fn session_config(s: &Value) -> Result<SessionConfig, Refusal> {
    let bad = |param: &str, what: &str| {
        let msg = format!("Invalid '{param}': {what}.");
        Err(Refusal::bug("invalid_value", param, msg))
    };
    let formats = "expected audio/pcm (rate 24000), audio/pcmu or audio/pcma";
    let format = |side: &str| AudioFormat::parse(&s["audio"][side]["format"]);
    let Some(input) = format("input") else {
        return bad("session.audio.input.format", formats);
    };
    let Some(output) = format("output") else {
        return bad("session.audio.output.format", formats);
    };
    let modalities = &s["output_modalities"];
    if *modalities != json!(["audio"]) && *modalities != json!(["text"]) {
        return bad(
            "session.output_modalities",
            "expected [\"audio\"] or [\"text\"]",
        );
    }
    let td = &s["audio"]["input"]["turn_detection"];
    let vad = if td.is_null() {
        None
    } else {
        let kind = td.get("type").and_then(Value::as_str);
        if !matches!(kind, Some("server_vad" | "semantic_vad")) {
            let param = "session.audio.input.turn_detection.type";
            return bad(param, "expected server_vad or semantic_vad");
        }
        let ms = |f: &str, default: u32| match td.get(f) {
            None | Some(Value::Null) => Some(default),
            Some(v) => v.as_u64().and_then(|v| u32::try_from(v).ok()),
        };
        let flag = |f: &str| match td.get(f) {
            None | Some(Value::Null) => Some(true),
            Some(v) => v.as_bool(),
        };
        // semantic_vad has no silence setting; 500 ms stands in for its end-of-turn guess.
        let silence = match kind {
            Some("server_vad") => ms("silence_duration_ms", 500),
            _ => Some(500),
        };
        let padding = ms("prefix_padding_ms", 300);
        let create = flag("create_response");
        let interrupt = flag("interrupt_response");
        let (Some(silence), Some(padding), Some(create), Some(interrupt)) =
            (silence, padding, create, interrupt)
        else {
            return bad("session.audio.input.turn_detection", "bad field type");
        };
        Some(Vad {
            silence_ms: silence.max(VAD_WINDOW_MS),
            prefix_padding_ms: padding,
            create_response: create,
            interrupt_response: interrupt,
        })
    };
    let transcription = &s["audio"]["input"]["transcription"];
    if !transcription.is_null() && !transcription.is_object() {
        return bad(
            "session.audio.input.transcription",
            "expected an object or null",
        );
    }
    let tools_ok = s["tools"].as_array().is_some_and(|tools| {
        tools.iter().all(|t| {
            t.get("type").and_then(Value::as_str) == Some("function")
                && t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty())
        })
    });
    if !tools_ok {
        return bad("session.tools", "expected function tools with a name");
    }
    Ok(SessionConfig {
        input,
        output,
        vad,
        transcription: transcription.is_object(),
    })
}

/// An `input_audio_buffer.append`, read without building a `Value`.
#[derive(serde::Deserialize)]
struct AppendEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    audio: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    event_id: Option<std::borrow::Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "wss://api.openai.com/v1/realtime?model=gpt-realtime-2.1";

    fn auth() -> Vec<(String, String)> {
        vec![("Authorization".to_owned(), "Bearer sk-test".to_owned())]
    }

    use crate::tests::origin;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drives one fake on a virtual clock and keeps every event it sent, with its time.
    struct Harness {
        fake: FakeRealtime,
        base: Instant,
        now: Instant,
        log: Vec<(Duration, Value)>,
        closes: Vec<(Duration, u16, String)>,
        caller_sample: u64,
    }

    impl Harness {
        fn connect(script: RealtimeScript) -> Self {
            let base = origin();
            let mut h = Self {
                fake: FakeRealtime::new(script),
                base,
                now: base,
                log: Vec::new(),
                closes: Vec::new(),
                caller_sample: 0,
            };
            h.fake.handle_connect(base, URL, &auth()).unwrap();
            let evs = h.drain();
            assert_eq!(types(&evs), ["session.created"]);
            h
        }

        fn drain(&mut self) -> Vec<Value> {
            let at = self.now - self.base;
            let mut evs = Vec::new();
            while let Some(out) = self.fake.poll_output() {
                match out {
                    FakeServerOutput::Text(t) => {
                        let v: Value = serde_json::from_str(&t).unwrap();
                        self.log.push((at, v.clone()));
                        evs.push(v);
                    }
                    FakeServerOutput::Close { code, reason } => {
                        self.closes.push((at, code, reason))
                    }
                }
            }
            evs
        }

        fn send(&mut self, event: Value) -> Vec<Value> {
            self.fake.handle_text(self.now, &event.to_string());
            self.drain()
        }

        /// Runs every deadline up to `now + d`, each at its own instant.
        fn advance(&mut self, d: Duration) -> Vec<Value> {
            let target = self.now + d;
            let mut evs = Vec::new();
            while let Some(t) = self.fake.poll_timeout().filter(|t| *t <= target) {
                self.now = t;
                self.fake.handle_timeout(t);
                evs.extend(self.drain());
            }
            self.now = target;
            evs
        }

        /// Appends μ-law audio in 20 ms frames, one frame every 20 ms.
        fn talk(&mut self, loud: bool, total_ms: u64) -> Vec<Value> {
            let mut evs = Vec::new();
            for _ in 0..total_ms / 20 {
                let mut samples = [0i16; 160];
                if loud {
                    speech_like(8000, 0, self.caller_sample, &mut samples);
                }
                self.caller_sample += 160;
                let bytes: Vec<u8> = samples.iter().map(|&s| g711::ulaw_encode(s)).collect();
                let append =
                    json!({"type": "input_audio_buffer.append", "audio": BASE64.encode(bytes)});
                evs.extend(self.send(append));
                evs.extend(self.advance(ms(20)));
            }
            evs
        }

        fn setup_pcmu(&mut self, turn_detection: Value) {
            let evs = self.send(session_update(turn_detection));
            assert_eq!(types(&evs), ["session.updated"], "{evs:?}");
        }
    }

    fn session_update(turn_detection: Value) -> Value {
        json!({"type": "session.update", "event_id": "evt_s1", "session": {
            "type": "realtime",
            "model": "gpt-realtime-2.1",
            "instructions": "Be brief.",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {"model": "gpt-4o-mini-transcribe"},
                    "turn_detection": turn_detection,
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
            },
            "tools": [{"type": "function", "name": "lookup_order", "description": "Find an order",
                       "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}],
            "tool_choice": "auto",
        }})
    }

    fn types(evs: &[Value]) -> Vec<&str> {
        evs.iter().map(|e| e["type"].as_str().unwrap()).collect()
    }

    fn find<'a>(evs: &'a [Value], ty: &str) -> &'a Value {
        evs.iter()
            .find(|e| e["type"] == ty)
            .unwrap_or_else(|| panic!("no {ty} in {evs:?}"))
    }

    fn one_response(text: &str, audio_ms: u32) -> RealtimeScript {
        RealtimeScript {
            responses: vec![ScriptedResponse {
                text: text.to_owned(),
                audio_ms,
                tool_calls: Vec::new(),
            }],
            ..RealtimeScript::default()
        }
    }

    #[test]
    fn greeting_via_response_create_follows_documented_order() {
        let text = "Hello, thanks for calling. How can I help?";
        let mut h = Harness::connect(one_response(text, 1050));
        h.setup_pcmu(json!({"type": "server_vad"}));
        let session = &h.log.last().unwrap().1["session"];
        assert_eq!(
            session["audio"]["input"]["turn_detection"]["silence_duration_ms"],
            500
        );
        assert_eq!(session["audio"]["output"]["voice"], "marin");

        let start = h.send(json!({"type": "response.create", "event_id": "evt_r1"}));
        assert_eq!(
            types(&start),
            [
                "response.created",
                "rate_limits.updated",
                "response.output_item.added",
                "conversation.item.added",
                "response.content_part.added"
            ]
        );
        assert_eq!(start[0]["response"]["status"], "in_progress");
        assert_eq!(start[2]["item"]["role"], "assistant");
        assert_eq!(start[4]["part"]["type"], "audio");
        assert_eq!(h.fake.poll_timeout(), Some(h.now + ms(300)));

        let rest = h.advance(Duration::from_secs(10));
        let tail = &types(&rest)[rest.len() - 5..];
        assert_eq!(
            tail,
            [
                "response.output_audio.done",
                "response.output_audio_transcript.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.done"
            ]
        );
        let deltas: Vec<&Value> = rest
            .iter()
            .filter(|e| e["type"] == "response.output_audio.delta")
            .collect();
        assert_eq!(deltas.len(), 11);
        let bytes: usize = deltas
            .iter()
            .map(|d| BASE64.decode(d["delta"].as_str().unwrap()).unwrap().len())
            .sum();
        assert_eq!(bytes / 8, 1050);
        let item_id = &start[2]["item"]["id"];
        for d in &deltas {
            assert_eq!(&d["item_id"], item_id);
            assert_eq!(d["response_id"], start[0]["response"]["id"]);
            assert_eq!(
                (d["output_index"].as_u64(), d["content_index"].as_u64()),
                (Some(0), Some(0))
            );
        }
        let transcript: String = rest
            .iter()
            .filter(|e| e["type"] == "response.output_audio_transcript.delta")
            .map(|e| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(transcript, text);
        assert_eq!(
            find(&rest, "response.output_audio_transcript.done")["transcript"],
            text
        );
        assert_eq!(
            find(&rest, "response.output_item.done")["item"]["status"],
            "completed"
        );
        let done = &find(&rest, "response.done")["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"][0]["content"][0]["type"], "output_audio");
        assert!(done["usage"]["output_token_details"]["audio_tokens"].is_u64());

        // Deltas every 20 ms from 300 ms after response.create.
        let times: Vec<Duration> = h
            .log
            .iter()
            .filter(|(_, e)| e["type"] == "response.output_audio.delta")
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(times.first(), Some(&ms(300)));
        assert_eq!(times.last(), Some(&ms(500)));
        let ids: std::collections::BTreeSet<&str> = h
            .log
            .iter()
            .map(|(_, e)| e["event_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), h.log.len(), "event ids are unique");
        let r = &h.fake.report().responses[0];
        assert_eq!(
            (r.trigger, r.status.as_str(), r.audio_ms_sent),
            (Trigger::Client, "completed", 1050)
        );
        assert!(h.fake.report().violations.is_empty());
        assert_eq!(
            h.fake.poll_timeout(),
            Some(h.base + Duration::from_secs(3600))
        );
    }

    #[test]
    fn vad_turns_loud_then_quiet_audio_into_a_turn_and_a_response() {
        let script = RealtimeScript {
            caller_transcripts: vec!["Where is my order?".into()],
            ..RealtimeScript::default()
        };
        let mut h = Harness::connect(script);
        h.setup_pcmu(
            json!({"type": "server_vad", "silence_duration_ms": 500, "prefix_padding_ms": 300}),
        );
        let evs = h.talk(true, 1000);
        assert_eq!(types(&evs), ["input_audio_buffer.speech_started"]);
        assert_eq!(evs[0]["audio_start_ms"], 0);
        let evs = h.talk(false, 1000);
        let t = types(&evs);
        assert_eq!(
            &t[..6],
            [
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed",
                "conversation.item.added",
                "conversation.item.done",
                "response.created",
                "rate_limits.updated"
            ]
        );
        assert_eq!(evs[0]["audio_end_ms"], 1500);
        let user_item = &evs[2]["item"];
        assert_eq!(
            (user_item["role"].as_str(), user_item["type"].as_str()),
            (Some("user"), Some("message"))
        );
        assert_eq!(user_item["id"], evs[1]["item_id"]);
        let transcript = find(
            &evs,
            "conversation.item.input_audio_transcription.completed",
        );
        assert_eq!(transcript["transcript"], "Where is my order?");
        assert_eq!(transcript["item_id"], user_item["id"]);
        let report = h.fake.report();
        assert_eq!(
            (report.speech_started.len(), report.speech_stopped.len()),
            (1, 1)
        );
        assert_eq!(report.speech_started[0], ms(40));
        assert_eq!(report.input_audio_bytes, 2000 * 8);
        assert_eq!(report.responses[0].trigger, Trigger::Vad);
        assert!(report.violations.is_empty());
    }

    #[test]
    fn caller_speech_cancels_the_active_response() {
        let mut h = Harness::connect(RealtimeScript::default());
        h.setup_pcmu(json!({"type": "server_vad"}));
        h.talk(true, 300);
        let evs = h.talk(false, 800);
        assert!(types(&evs).contains(&"response.output_audio.delta"));
        let evs = h.talk(true, 100);
        let t = types(&evs);
        let started = t
            .iter()
            .position(|&x| x == "input_audio_buffer.speech_started")
            .unwrap();
        assert_eq!(
            &t[started + 1..],
            [
                "response.output_audio.done",
                "response.output_audio_transcript.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.done"
            ]
        );
        assert_eq!(
            find(&evs, "response.output_item.done")["item"]["status"],
            "incomplete"
        );
        let done = &find(&evs, "response.done")["response"];
        assert_eq!(done["status"], "cancelled");
        assert_eq!(done["status_details"]["reason"], "turn_detected");
        assert!(
            !types(&h.advance(Duration::from_secs(2))).contains(&"response.output_audio.delta")
        );
        let r = &h.fake.report().responses[0];
        assert_eq!(r.status, "cancelled");
        assert!(r.audio_ms_sent > 0 && r.audio_ms_sent < 600, "{r:?}");
    }

    #[test]
    fn appends_are_counted_and_bad_ones_refused_with_their_event_id() {
        let mut h = Harness::connect(RealtimeScript::default());
        h.setup_pcmu(Value::Null);
        let good = json!({"type": "input_audio_buffer.append", "event_id": "evt_a1",
                          "audio": BASE64.encode([0xFFu8; 160])});
        assert!(h.send(good).is_empty());
        assert_eq!(h.fake.report().input_audio_bytes, 160);
        let refusals = [
            (
                json!({"type": "input_audio_buffer.append", "event_id": "evt_a2",
                    "audio": "not base64!"}),
                "invalid_value",
            ),
            (
                json!({"type": "input_audio_buffer.append", "event_id": "evt_a3"}),
                "missing_required_parameter",
            ),
            (
                json!({"type": "input_audio_buffer.append", "event_id": "evt_a4", "audio": 5}),
                "missing_required_parameter",
            ),
        ];
        for (event, code) in refusals {
            let eid = event["event_id"].clone();
            let evs = h.send(event);
            assert_eq!(types(&evs), ["error"], "{eid}");
            assert_eq!(evs[0]["error"]["code"], code, "{eid}");
            assert_eq!(evs[0]["error"]["param"], "audio", "{eid}");
            assert_eq!(evs[0]["error"]["event_id"], eid);
        }
        assert_eq!(h.fake.report().input_audio_bytes, 160);
        assert_eq!(h.fake.report().violations.len(), 3);
        let appends = h.fake.report().received_types.iter();
        assert_eq!(
            appends
                .filter(|t| *t == "input_audio_buffer.append")
                .count(),
            4
        );
    }

    #[test]
    fn response_create_while_active_is_refused() {
        let mut h = Harness::connect(RealtimeScript::default());
        h.setup_pcmu(Value::Null);
        h.send(json!({"type": "response.create", "event_id": "evt_r1"}));
        let evs = h.send(json!({"type": "response.create", "event_id": "evt_r2"}));
        assert_eq!(types(&evs), ["error"]);
        assert_eq!(
            evs[0]["error"]["code"],
            "conversation_already_has_active_response"
        );
        assert_eq!(evs[0]["error"]["type"], "invalid_request_error");
        assert_eq!(evs[0]["error"]["event_id"], "evt_r2");
        h.advance(Duration::from_secs(2));
        let evs = h.send(json!({"type": "response.create"}));
        assert_eq!(types(&evs)[0], "response.created");
        let evs = h.send(json!({"type": "response.cancel"}));
        assert_eq!(
            find(&evs, "response.done")["response"]["status_details"]["reason"],
            "client_cancelled"
        );
        let evs = h.send(json!({"type": "response.cancel", "event_id": "evt_c2"}));
        assert_eq!(evs[0]["error"]["code"], "response_cancel_not_active");
        let report = h.fake.report();
        assert_eq!(
            (
                report.response_creates,
                report.cancels,
                report.responses.len()
            ),
            (3, 2, 2)
        );
    }

    #[test]
    fn truncate_beyond_sent_audio_is_refused_within_is_accepted() {
        let mut h = Harness::connect(one_response("A long answer.", 1000));
        h.setup_pcmu(Value::Null);
        let start = h.send(json!({"type": "response.create"}));
        let item_id = start[2]["item"]["id"].as_str().unwrap().to_owned();
        h.advance(ms(340)); // three 100 ms deltas so far
        assert_eq!(h.fake.report().responses[0].audio_ms_sent, 300);
        let truncate = |end: u64, id: &str| {
            json!({"type": "conversation.item.truncate", "event_id": "evt_t", "item_id": id,
                   "content_index": 0, "audio_end_ms": end})
        };
        let evs = h.send(truncate(800, &item_id));
        assert_eq!(evs[0]["type"], "error");
        assert_eq!(evs[0]["error"]["type"], "invalid_request_error");
        assert_eq!(evs[0]["error"]["event_id"], "evt_t");
        let evs = h.send(truncate(250, &item_id));
        assert_eq!(types(&evs), ["conversation.item.truncated"]);
        assert_eq!(
            (evs[0]["item_id"].as_str(), evs[0]["audio_end_ms"].as_u64()),
            (Some(item_id.as_str()), Some(250))
        );
        let evs = h.send(truncate(10, "item_nope"));
        assert_eq!(evs[0]["type"], "error");
        let report = h.fake.report();
        let accepted: Vec<bool> = report.truncates.iter().map(|t| t.accepted).collect();
        assert_eq!(accepted, [false, true, false]);
        assert_eq!(
            report.violations.len(),
            1,
            "only the unknown item is a client bug"
        );
    }

    #[test]
    fn tool_call_response_has_the_documented_shape() {
        let script = RealtimeScript {
            responses: vec![ScriptedResponse {
                text: "Let me check.".into(),
                audio_ms: 200,
                tool_calls: vec![("lookup_order".into(), json!({"id": "A1"}))],
            }],
            ..RealtimeScript::default()
        };
        let mut h = Harness::connect(script);
        h.setup_pcmu(Value::Null);
        h.send(json!({"type": "response.create"}));
        let evs = h.advance(Duration::from_secs(2));
        let t = types(&evs);
        let first = t
            .iter()
            .position(|&x| x == "response.output_item.added")
            .unwrap();
        assert_eq!(
            &t[first..],
            [
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.done"
            ]
        );
        let added = &evs[first];
        assert_eq!(
            (
                added["item"]["type"].as_str(),
                added["item"]["status"].as_str()
            ),
            (Some("function_call"), Some("in_progress"))
        );
        assert_eq!(added["output_index"], 1);
        let args_done = &evs[first + 2];
        let call_id = args_done["call_id"].as_str().unwrap().to_owned();
        assert!(call_id.starts_with("call_"));
        assert_eq!(args_done["name"], "lookup_order");
        let args: Value = serde_json::from_str(args_done["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"id": "A1"}));
        let item = &evs[first + 3]["item"];
        assert_eq!(
            (item["status"].as_str(), item["call_id"].as_str()),
            (Some("completed"), Some(call_id.as_str()))
        );
        assert!(item["arguments"].is_string());
        let output = &evs[first + 4]["response"]["output"];
        assert_eq!(
            (output[0]["type"].as_str(), output[1]["type"].as_str()),
            (Some("message"), Some("function_call"))
        );

        let reply = |id: &str| {
            json!({"type": "conversation.item.create", "event_id": "evt_f",
                   "item": {"type": "function_call_output", "call_id": id, "output": "{\"status\":\"shipped\"}"}})
        };
        let evs = h.send(reply(&call_id));
        assert_eq!(
            types(&evs),
            ["conversation.item.added", "conversation.item.done"]
        );
        assert_eq!(evs[0]["item"]["call_id"], call_id.as_str());
        assert_eq!(h.send(reply(&call_id))[0]["type"], "error");
        assert_eq!(h.send(reply("call_unknown"))[0]["type"], "error");
        let report = h.fake.report();
        assert_eq!(
            report.responses[0].tool_call_ids,
            std::slice::from_ref(&call_id)
        );
        assert_eq!(report.function_outputs.len(), 1);
        assert_eq!(report.function_outputs[0].1, call_id);
        assert_eq!(report.violations.len(), 2);
    }

    #[test]
    fn session_expires_at_session_max() {
        let mut h = Harness::connect(RealtimeScript {
            session_max: Duration::from_secs(120),
            ..RealtimeScript::default()
        });
        h.fake.handle_timeout(h.base + Duration::from_secs(119));
        assert!(h.drain().is_empty(), "nothing before the deadline");
        let evs = h.advance(Duration::from_secs(200));
        assert_eq!(types(&evs), ["error"]);
        assert_eq!(evs[0]["error"]["code"], "session_expired");
        assert_eq!(
            evs[0]["error"]["message"],
            "Your session hit the maximum duration of 2 minutes."
        );
        assert_eq!(h.closes.len(), 1);
        assert_eq!(
            (h.closes[0].0, h.closes[0].1),
            (Duration::from_secs(120), 1001)
        );
        assert_eq!(h.fake.poll_timeout(), None);
        assert!(
            h.send(json!({"type": "response.create"})).is_empty(),
            "nothing after close"
        );
    }

    #[test]
    fn beta_shapes_are_refused() {
        let base = origin();
        let mut fake = FakeRealtime::new(RealtimeScript::default());
        let mut headers = auth();
        headers.push(("OpenAI-Beta".into(), "realtime=v1".into()));
        assert_eq!(fake.handle_connect(base, URL, &headers), Ok(()));
        let Some(FakeServerOutput::Text(t)) = fake.poll_output() else {
            panic!()
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["error"]["code"], "beta_api_shape_disabled");
        assert!(matches!(
            fake.poll_output(),
            Some(FakeServerOutput::Close { code: 4000, .. })
        ));
        assert_eq!(fake.poll_output(), None);

        let connect = |url: &str, headers: &[(String, String)], script: RealtimeScript| {
            FakeRealtime::new(script).handle_connect(base, url, headers)
        };
        let lower = vec![("authorization".to_owned(), "Bearer ek_123".to_owned())];
        assert_eq!(
            connect(
                "ws://127.0.0.1:9000/proxy/v1/realtime?model=m",
                &lower,
                RealtimeScript::default()
            ),
            Ok(())
        );
        assert_eq!(connect(URL, &[], RealtimeScript::default()), Err(401));
        assert_eq!(
            connect(
                "wss://api.openai.com/v1/realtime?model=",
                &auth(),
                RealtimeScript::default()
            ),
            Err(400)
        );
        assert_eq!(
            connect(
                "wss://api.openai.com/v1/realtime/calls?model=m",
                &auth(),
                RealtimeScript::default()
            ),
            Err(404)
        );
        let refusing = RealtimeScript {
            reject_handshake: Some(503),
            ..RealtimeScript::default()
        };
        assert_eq!(connect(URL, &auth(), refusing), Err(503));

        let mut h = Harness::connect(RealtimeScript::default());
        let beta = json!({"type": "session.update", "session": {"type": "realtime", "modalities": ["audio"], "voice": "alloy"}});
        let evs = h.send(beta);
        assert_eq!(types(&evs), ["error"]);
        assert_eq!(evs[0]["error"]["code"], "unknown_parameter");
        let evs = h.send(
            json!({"type": "session.update", "session": {"input_audio_format": "g711_ulaw"}}),
        );
        assert_eq!(evs[0]["error"]["code"], "unknown_parameter");
        let evs = h.send(json!({"type": "session.update", "session": {"instructions": "hi"}}));
        assert_eq!(evs[0]["error"]["code"], "missing_required_parameter");
        let report = h.fake.report();
        assert_eq!(
            (report.session_updates.len(), report.violations.len()),
            (3, 3)
        );
        // The rejected updates changed nothing: input is still PCM at 24 kHz.
        h.send(json!({"type": "input_audio_buffer.append", "audio": BASE64.encode([0u8; 480])}));
        assert_eq!(h.fake.report().input_audio_ms, 10.0);
    }

    #[test]
    fn garbage_from_the_client_is_answered_with_errors() {
        let mut h = Harness::connect(RealtimeScript::default());
        let garbage = [
            "not json",
            "[]",
            "null",
            "{\"type\": 5}",
            "{\"type\": \"response.audio.delta\", \"event_id\": \"evt_u\"}",
            "{\"type\": \"output_audio_buffer.clear\"}",
            "{\"type\": \"input_audio_buffer.append\", \"audio\": \"!!!\"}",
            "{\"type\": \"input_audio_buffer.append\"}",
            "{\"type\": \"conversation.item.truncate\", \"item_id\": 5}",
            "{\"type\": \"conversation.item.create\", \"item\": {\"type\": \"message\", \"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"hi\"}]}}",
            "{\"type\": \"response.create\", \"response\": 7}",
            "{\"type\": \"response.create\", \"response\": {\"modalities\": [\"audio\"]}}",
            "{\"type\": \"session.update\", \"session\": {\"type\": \"realtime\", \"audio\": {\"input\": {\"format\": {\"type\": \"audio/pcm\", \"rate\": 16000}}}}}",
        ];
        for g in garbage {
            h.fake.handle_text(h.now, g);
            let evs = h.drain();
            assert_eq!(types(&evs), ["error"], "{g}");
        }
        let unknown = &h.log[5].1["error"];
        assert_eq!(
            (unknown["code"].as_str(), unknown["event_id"].as_str()),
            (Some("invalid_value"), Some("evt_u"))
        );
        let report = h.fake.report();
        assert_eq!(report.violations.len(), garbage.len());
        assert_eq!(report.responses.len(), 0);
        // Valid user text still works afterwards.
        let evs = h.send(
            json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Hello"}]}}),
        );
        assert_eq!(
            types(&evs),
            ["conversation.item.added", "conversation.item.done"]
        );
        assert_eq!(
            h.fake.report().user_texts,
            [(Duration::ZERO, "Hello".to_owned())]
        );
    }

    #[test]
    fn injected_errors_then_socket_drop() {
        let mut h = Harness::connect(RealtimeScript {
            inject_errors: vec![(
                ms(1000),
                "insufficient_quota".into(),
                "insufficient_quota".into(),
            )],
            drop_socket_at: Some(ms(2500)),
            ..RealtimeScript::default()
        });
        let evs = h.advance(Duration::from_secs(5));
        assert_eq!(types(&evs), ["error"]);
        assert_eq!(evs[0]["error"]["code"], "insufficient_quota");
        assert_eq!(
            h.fake.report().errors_sent,
            [(ms(1000), "insufficient_quota".to_owned())]
        );
        assert_eq!(h.closes, [(ms(2500), 1006, String::new())]);
        assert_eq!(h.fake.poll_timeout(), None);
    }

    #[test]
    fn client_close_stops_everything() {
        let mut h = Harness::connect(RealtimeScript::default());
        h.send(json!({"type": "response.create"}));
        h.fake.handle_closed(h.now);
        assert_eq!(h.fake.poll_timeout(), None);
        assert!(h.advance(Duration::from_secs(5)).is_empty());
        assert!(h.fake.report().closed_by_client);
    }

    /// A whole exchange: greeting, a caller turn, barge-in, a tool call and its output.
    fn scenario() -> (Vec<(Duration, Value)>, RealtimeReport) {
        let script = RealtimeScript {
            responses: vec![
                ScriptedResponse {
                    text: "Hi!".into(),
                    audio_ms: 400,
                    tool_calls: Vec::new(),
                },
                ScriptedResponse {
                    text: "Checking.".into(),
                    audio_ms: 300,
                    tool_calls: vec![("lookup_order".into(), json!({"id": "7"}))],
                },
            ],
            record_input_audio: true,
            ..RealtimeScript::default()
        };
        let mut h = Harness::connect(script);
        h.setup_pcmu(json!({"type": "server_vad", "silence_duration_ms": 300}));
        h.send(json!({"type": "response.create"}));
        h.talk(false, 200);
        h.talk(true, 400);
        h.talk(false, 2000);
        let call_id = h.fake.report().responses[1].tool_call_ids[0].clone();
        h.send(json!({"type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call_id, "output": "ok"}}));
        h.send(json!({"type": "response.create"}));
        h.advance(Duration::from_secs(3));
        (h.log, h.fake.report().clone())
    }

    /// A WebRTC-mode brain with its channel open, on a virtual clock.
    fn webrtc_brain(script: RealtimeScript) -> (FakeRealtime, Instant) {
        let base = origin();
        let session = json!({"type": "realtime", "instructions": "Be brief.",
            "audio": {"input": {"turn_detection": {"type": "server_vad"}}}});
        let mut fake = FakeRealtime::new_webrtc(base, script, &session, 8000).unwrap();
        assert_eq!(fake.poll_output(), None, "nothing before the channel opens");
        fake.handle_channel_open(base);
        (fake, base)
    }

    fn texts(fake: &mut FakeRealtime) -> Vec<Value> {
        std::iter::from_fn(|| fake.poll_output())
            .filter_map(|o| match o {
                FakeServerOutput::Text(t) => serde_json::from_str(&t).ok(),
                FakeServerOutput::Close { .. } => None,
            })
            .collect()
    }

    #[test]
    fn webrtc_session_comes_from_the_call_and_is_validated() {
        let (mut fake, _) = webrtc_brain(RealtimeScript::default());
        let evs = texts(&mut fake);
        assert_eq!(types(&evs), ["session.created"]);
        assert_eq!(evs[0]["session"]["instructions"], "Be brief.");
        assert_eq!(evs[0]["session"]["model"], "gpt-realtime");
        assert!(fake.is_webrtc() && fake.is_open());
        assert_eq!(fake.output_rate_hz(), Some(8000));
        let beta = json!({"type": "realtime", "voice": "alloy"});
        let err = FakeRealtime::new_webrtc(origin(), RealtimeScript::default(), &beta, 24000)
            .unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.param.as_deref()),
            ("unknown_parameter", Some("session.voice"))
        );
        let err = FakeRealtime::new_webrtc(origin(), RealtimeScript::default(), &json!(5), 24000)
            .unwrap_err();
        assert_eq!(err.code, "invalid_type");
    }

    #[test]
    fn webrtc_playout_is_paced_and_cut_by_vad() {
        let (mut fake, base) = webrtc_brain(one_response("Hello there.", 1000));
        texts(&mut fake);
        fake.handle_text(base, r#"{"type":"response.create"}"#);
        let mut frames = Vec::new();
        let mut log = Vec::new();
        let mut now = base;
        let mut caller = 0u64;
        for tick in 0..100u64 {
            now = base + ms(10 * tick);
            if (60..80).contains(&tick) && tick % 2 == 0 {
                // 200 ms of loud caller audio from 600 ms on, in 20 ms frames.
                let mut pcm = [0i16; 160];
                speech_like(8000, 0, caller, &mut pcm);
                caller += 160;
                fake.handle_input_samples(now, &pcm, 8000);
            }
            fake.handle_timeout(now);
            while let Some(f) = fake.poll_audio_frame() {
                assert_eq!(f.samples.len(), 160);
                frames.push(f.at - base);
            }
            log.extend(texts(&mut fake).into_iter().map(|e| (now - base, e)));
        }
        assert_eq!(frames.first(), Some(&ms(300)));
        for w in frames.windows(2) {
            assert_eq!(w[1] - w[0], ms(20));
        }
        let evs: Vec<Value> = log.iter().map(|(_, e)| e.clone()).collect();
        assert!(!types(&evs).contains(&"response.output_audio.delta"));
        let t = types(&evs);
        let pos = |ty: &str| t.iter().position(|&x| x == ty).unwrap();
        assert!(pos("output_audio_buffer.started") < pos("input_audio_buffer.speech_started"));
        // Generation was done long before: the clear cuts the playout, there is no cancel.
        assert!(pos("response.done") < pos("input_audio_buffer.speech_started"));
        assert_eq!(
            pos("output_audio_buffer.cleared"),
            pos("input_audio_buffer.speech_started") + 1
        );
        assert!(!t.contains(&"output_audio_buffer.stopped"));
        let report = fake.report().clone();
        let played = report.responses[0].audio_ms_played;
        assert_eq!(u64::from(played), report.audio_played_ms);
        assert_eq!(frames.len() as u32 * 20, played);
        assert!((300..700).contains(&played), "{played}");
        let item = report.responses[0].item_id.clone().unwrap();
        // The item's audio is now what was played: truncating beyond it is refused.
        let truncate = json!({"type": "conversation.item.truncate", "item_id": item,
            "content_index": 0, "audio_end_ms": played + 100});
        fake.handle_text(now, &truncate.to_string());
        assert_eq!(texts(&mut fake)[0]["type"], "error");
        assert!(report.violations.is_empty(), "{:?}", report.violations);
    }

    #[test]
    fn same_inputs_give_same_outputs() {
        let (log_a, report_a) = scenario();
        let (log_b, report_b) = scenario();
        assert_eq!(log_a, log_b);
        assert_eq!(report_a, report_b);
        let statuses: Vec<&str> = report_a
            .responses
            .iter()
            .map(|r| r.status.as_str())
            .collect();
        assert_eq!(statuses, ["cancelled", "completed", "completed"]);
        assert_eq!(
            report_a.input_audio.len() as u64,
            report_a.input_audio_bytes
        );
        assert!(report_a.violations.is_empty(), "{:?}", report_a.violations);
    }
}
