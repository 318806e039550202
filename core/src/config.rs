//! Per-call configuration: everything the core needs, given once at construction.

use std::time::Duration;

use crate::audio::ByteOrder;

/// Configuration of one call. Built by the runtime from its own settings.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// The OpenAI side.
    pub openai: OpenAiConfig,
    /// Tools the model may call, run by the application through [`crate::Output::ToolCall`].
    pub tools: Vec<ToolSpec>,
    /// Built-in tools the core runs itself.
    pub builtins: Builtins,
    /// SignalWire REST credentials; without them hang-up closes the media stream instead.
    pub signalwire: Option<SignalWireRest>,
    /// The bridge's public base URL (`https://bridge.example.com`), for SignalWire to fetch
    /// the transfer cXML from `{public_url}/transfer`.
    pub public_url: Option<String>,
    /// Instructions templates by called number (`To`), overriding `openai.instructions`.
    pub instructions_by_number: std::collections::BTreeMap<String, String>,
    /// Which OpenAI API answers calls, unless the called number has its own.
    pub backend: Backend,
    /// Backends by called number (`To`), overriding `backend`.
    pub backend_by_number: std::collections::BTreeMap<String, Backend>,
    /// Settings of the Live backend.
    pub live: LiveConfig,
    /// Which transport carries the OpenAI leg.
    pub transport: TransportChoice,
    /// WebRTC settings (used unless the transport is WebSocket only).
    pub webrtc: WebRtcConfig,
    /// Byte order of L16 audio on the phone leg.
    pub l16_byte_order: ByteOrder,
    /// Caps and deadlines.
    pub limits: Limits,
}

/// Which OpenAI API carries a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The Realtime API (`/v1/realtime`): turn-based, server VAD, tools on the model.
    #[default]
    Realtime,
    /// The Live API (`/v1/live/sessions`): full duplex, tools through Responses delegation.
    Live,
}

impl Backend {
    /// Reads `realtime` or `live` (any case).
    pub fn parse(text: &str) -> Option<Backend> {
        match text.trim().to_ascii_lowercase().as_str() {
            "realtime" => Some(Backend::Realtime),
            "live" => Some(Backend::Live),
            _ => None,
        }
    }

    /// `realtime` or `live`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Realtime => "realtime",
            Backend::Live => "live",
        }
    }
}

/// Settings of the Live backend (the voice, key and base URL are shared with Realtime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// The Live voice model, e.g. `gpt-live-1`.
    pub model: String,
    /// The Responses model that runs delegated tool calls.
    pub delegation_model: String,
    /// Instructions for that backend model; tool fillers are added to them.
    pub delegation_instructions: String,
    /// What the model is told when the call connects, so that it greets the caller.
    pub greeting: String,
    /// How long to wait for `session.closed` after `session.close`.
    pub close_timeout: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            model: DEFAULT_LIVE_MODEL.to_owned(),
            delegation_model: DEFAULT_LIVE_DELEGATION_MODEL.to_owned(),
            delegation_instructions:
                "Run the caller's request with the tools; answer briefly for a phone call."
                    .to_owned(),
            greeting: "The call just connected. Greet the caller and ask how you can help."
                .to_owned(),
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// Which transport carries the OpenAI leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportChoice {
    /// WebRTC, falling back to WebSocket if it cannot be set up or fails mid-call.
    #[default]
    Auto,
    /// WebRTC only.
    WebRtc,
    /// WebSocket only.
    WebSocket,
}

impl TransportChoice {
    /// The seed's `USE_WEBRTC`: `true` means [`TransportChoice::Auto`], `false` WebSocket.
    pub fn from_use_webrtc(use_webrtc: bool) -> Self {
        if use_webrtc {
            TransportChoice::Auto
        } else {
            TransportChoice::WebSocket
        }
    }
}

/// WebRTC settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcConfig {
    /// The call's local UDP addresses, offered as host candidates; datagrams for the call
    /// arrive on them and [`crate::Transmit`]s leave from them. Without any, WebRTC is skipped.
    pub local_addrs: Vec<core::net::SocketAddr>,
    /// How long ICE, DTLS and the data channel may take before falling back.
    pub connect_timeout: Duration,
    /// How long the connection may go without any packet from OpenAI before it counts as lost.
    pub liveness_timeout: Duration,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            local_addrs: Vec::new(),
            connect_timeout: Duration::from_secs(3),
            liveness_timeout: Duration::from_secs(3),
        }
    }
}

/// How to reach OpenAI and what to tell the model.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// API key sent as `Authorization: Bearer`; never logged.
    pub api_key: String,
    /// Base URL of the REST API, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Realtime model name.
    pub model: String,
    /// Voice of the model.
    pub voice: String,
    /// System instructions: a template where `{{From}}`, `{{To}}`, `{{CallSid}}`, `{{date}}`,
    /// `{{time}}` and `{{param.NAME}}` (a `customParameters` entry) are filled in from the call.
    pub instructions: String,
    /// Server VAD settings.
    pub turn_detection: TurnDetection,
    /// Model that transcribes the caller, or `None` for no caller transcripts.
    pub transcription_model: Option<String>,
    /// Whether the model speaks first, as soon as the session is ready.
    pub greet_first: bool,
}

/// Server voice activity detection (`audio.input.turn_detection`, type `server_vad`).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnDetection {
    /// Activation threshold, 0.0 to 1.0.
    pub threshold: f32,
    /// Audio kept before speech starts.
    pub prefix_padding_ms: u32,
    /// Silence that ends a turn.
    pub silence_duration_ms: u32,
    /// The server starts a response when the caller's turn ends.
    pub create_response: bool,
    /// The server cancels its response when the caller starts speaking.
    pub interrupt_response: bool,
}

impl Default for TurnDetection {
    fn default() -> Self {
        TurnDetection {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            create_response: true,
            interrupt_response: true,
        }
    }
}

/// A function tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Function name.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
    /// How long the tool may run before the model is told it failed (zero: the default).
    pub timeout: Duration,
    /// Where the core POSTs the call (`{call_sid, tool, arguments, idempotency_key}`), expecting
    /// `{"output": …, "action": …}`; `None`: the application runs it ([`crate::Output::ToolCall`]).
    pub webhook: Option<String>,
    /// A phrase the model may say while the tool runs.
    pub filler: Option<String>,
}

/// Which built-in tools are offered to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtins {
    /// `end_call`: say goodbye, then hang up.
    pub end_call: bool,
    /// `send_dtmf`: play DTMF digits to the caller's line.
    pub send_dtmf: bool,
    /// `transfer_call`: hand the caller to a number through SignalWire's REST API (needs
    /// [`CallConfig::signalwire`] and [`CallConfig::public_url`]).
    pub transfer_call: bool,
}

impl Default for Builtins {
    fn default() -> Self {
        Builtins {
            end_call: true,
            send_dtmf: true,
            transfer_call: true,
        }
    }
}

/// SignalWire Compatibility REST API credentials, used to hang up.
#[derive(Clone)]
pub struct SignalWireRest {
    /// e.g. `https://example.signalwire.com`.
    pub space_url: String,
    /// Project id, the Basic-auth user and the `Accounts/{id}` path segment.
    pub project_id: String,
    /// API token, the Basic-auth password; never logged.
    pub api_token: String,
}

impl std::fmt::Debug for OpenAiConfig {
    // The key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("voice", &self.voice)
            .field("instructions", &self.instructions)
            .field("turn_detection", &self.turn_detection)
            .field("transcription_model", &self.transcription_model)
            .field("greet_first", &self.greet_first)
            .finish()
    }
}

impl std::fmt::Debug for SignalWireRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalWireRest")
            .field("space_url", &self.space_url)
            .field("project_id", &self.project_id)
            .field("api_token", &"<redacted>")
            .finish()
    }
}

/// Caps on every peer-fed queue, and the core's deadlines.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest WebSocket message accepted from SignalWire.
    pub max_phone_message_bytes: usize,
    /// Largest WebSocket message accepted from OpenAI.
    pub max_model_message_bytes: usize,
    /// Caller audio held while the model session is not ready; the oldest is dropped past it.
    pub held_audio: Duration,
    /// Marks outstanding on the phone leg; past it marks are merged.
    pub max_outstanding_marks: usize,
    /// Tool calls running at once; more are answered with an error at once.
    pub max_running_tools: usize,
    /// Deadline for tools that do not set their own.
    pub default_tool_timeout: Duration,
    /// Pause after which collected caller DTMF digits go to the model.
    pub dtmf_pause: Duration,
    /// Most digits collected before they go to the model.
    pub max_dtmf_digits: usize,
    /// How long to wait for `start` on a new media stream.
    pub stream_start_timeout: Duration,
    /// How long the OpenAI session may take to become ready.
    pub model_connect_timeout: Duration,
    /// How long a goodbye may play before `end_call` hangs up anyway.
    pub hangup_drain: Duration,
    /// How long an HTTP request of the core may take.
    pub http_timeout: Duration,
    /// A Realtime WebSocket session older than this is replaced by a new one (given the
    /// conversation) at the next moment the model is quiet, before OpenAI's 60-minute cap ends
    /// it; `None` lets the cap end the call.
    pub session_rollover: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_phone_message_bytes: 64 * 1024,
            max_model_message_bytes: 16 * 1024 * 1024,
            held_audio: Duration::from_secs(5),
            max_outstanding_marks: 512,
            max_running_tools: 16,
            default_tool_timeout: Duration::from_secs(10),
            dtmf_pause: Duration::from_millis(1500),
            max_dtmf_digits: 32,
            stream_start_timeout: Duration::from_secs(10),
            model_connect_timeout: Duration::from_secs(10),
            hangup_drain: Duration::from_secs(15),
            http_timeout: Duration::from_secs(10),
            session_rollover: Some(Duration::from_secs(55 * 60)),
        }
    }
}

impl CallConfig {
    /// The backend a call to `to` (the called number) runs on: its own, else the default.
    pub fn backend_for(&self, to: Option<&str>) -> Backend {
        to.and_then(|to| self.backend_by_number.get(to))
            .copied()
            .unwrap_or(self.backend)
    }

    /// A configuration with defaults for everything but the key.
    pub fn new(api_key: impl Into<String>) -> Self {
        CallConfig {
            openai: OpenAiConfig {
                api_key: api_key.into(),
                base_url: DEFAULT_BASE_URL.to_owned(),
                model: DEFAULT_REALTIME_MODEL.to_owned(),
                voice: "marin".to_owned(),
                instructions: "You are a helpful assistant on a phone call. Keep answers short."
                    .to_owned(),
                turn_detection: TurnDetection::default(),
                transcription_model: Some("gpt-4o-mini-transcribe".to_owned()),
                greet_first: true,
            },
            tools: Vec::new(),
            builtins: Builtins::default(),
            signalwire: None,
            public_url: None,
            instructions_by_number: std::collections::BTreeMap::new(),
            backend: Backend::Realtime,
            backend_by_number: std::collections::BTreeMap::new(),
            live: LiveConfig::default(),
            transport: TransportChoice::Auto,
            webrtc: WebRtcConfig::default(),
            l16_byte_order: ByteOrder::Little,
            limits: Limits::default(),
        }
    }
}

/// OpenAI's public API.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// The default Realtime model (`gpt-realtime` and `gpt-realtime-mini` shut down on 2027-01-20).
pub const DEFAULT_REALTIME_MODEL: &str = "gpt-realtime-2.1";
/// The default Live model.
pub const DEFAULT_LIVE_MODEL: &str = "gpt-live-1";
/// The default Responses model behind Live's tool delegation.
pub const DEFAULT_LIVE_DELEGATION_MODEL: &str = "gpt-5.6-terra";
