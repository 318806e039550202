//! Everything the core asks its runtime to do, and everything it reports.

use std::time::Duration;

use crate::audio::PhoneCodec;

/// The two WebSocket legs of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Leg {
    /// The SignalWire media stream (we are the server).
    Phone,
    /// The OpenAI connection (we are the client).
    Model,
}

/// Identifies an HTTP request the core asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Identifies a tool call: OpenAI's `call_id`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ToolCallId(pub String);

/// One thing for the runtime to do, or one thing that happened.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Output {
    /// Send a WebSocket text frame on a leg.
    Send {
        /// Which leg.
        leg: Leg,
        /// The whole message.
        text: String,
    },
    /// Close a leg's WebSocket (after sending what was queued before).
    Close {
        /// Which leg.
        leg: Leg,
    },
    /// Open the OpenAI WebSocket; answer with `handle_ws_opened` or `handle_ws_closed`.
    Connect(ConnectRequest),
    /// Make an HTTP request; answer with `handle_http_response` under the same id.
    Http {
        /// Echo this id back with the answer.
        id: RequestId,
        /// The request.
        request: HttpRequest,
    },
    /// Run an application tool; answer with `handle_tool_result` under the same id.
    ToolCall(ToolCall),
    /// Send a UDP datagram (the WebRTC transport to OpenAI).
    Transmit(Transmit),
    /// Something happened (for logs, metrics and the call record).
    Event(Event),
}

/// A UDP datagram for the runtime to send from one of the call's local addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local address to send from (one given in [`crate::WebRtcConfig::local_addrs`]).
    pub source: core::net::SocketAddr,
    /// Where to.
    pub destination: core::net::SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}

/// Where and how to open the OpenAI WebSocket.
#[derive(Clone, PartialEq)]
pub struct ConnectRequest {
    /// `wss://…` (or `ws://` for a local fake).
    pub url: String,
    /// Headers for the upgrade request, `Authorization` among them.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("url", &self.url)
            .field("headers", &redacted(&self.headers))
            .finish()
    }
}

/// An HTTP request the runtime performs for the core.
#[derive(Clone, PartialEq)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: &'static str,
    /// Absolute URL.
    pub url: String,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
    /// The core's deadline for this request, for the runtime's own socket timeouts.
    pub timeout: Duration,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &redacted(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

fn redacted(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("authorization") {
                (k.as_str(), "<redacted>")
            } else {
                (k.as_str(), v.as_str())
            }
        })
        .collect()
}

/// An HTTP answer given back to the core.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

/// Why an HTTP request or a connection produced no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure(pub String);

/// A tool call for the application to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// Answer under this id.
    pub id: ToolCallId,
    /// Function name, one of the configured tools.
    pub name: String,
    /// Arguments the model gave, parsed (an object; `{}` when the model sent none).
    pub arguments: serde_json::Value,
    /// The call it belongs to.
    pub context: CallContext,
    /// When the core stops waiting and tells the model the tool failed.
    pub deadline: Duration,
}

/// What a tool needs to know about the call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallContext {
    /// SignalWire's call id (`start.callSid`).
    pub call_sid: Option<String>,
    /// SignalWire's stream id.
    pub stream_sid: Option<String>,
    /// `start.customParameters`, in key order.
    pub custom_parameters: Vec<(String, String)>,
}

/// The application's answer to a tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// Text for the model (usually JSON).
    pub output: String,
    /// What the bridge should do once the model has the output.
    pub action: ToolAction,
}

impl ToolResult {
    /// The answer for a tool nothing handles (no webhook, no in-process handler): an error the
    /// model can say something about, and no action.
    pub fn no_handler() -> Self {
        ToolResult {
            output: r#"{"error":"no handler"}"#.to_owned(),
            action: ToolAction::None,
        }
    }
}

/// A call-control action a tool may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolAction {
    /// Nothing more.
    #[default]
    None,
    /// Let the model finish speaking, then hang up.
    HangUp,
    /// Let the model finish speaking, then transfer the caller to this number or SIP URI.
    Transfer {
        /// E.164 number or `sip:` URI.
        to: String,
    },
}

/// Who spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The person on the phone.
    Caller,
    /// The model.
    Assistant,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum EndReason {
    /// SignalWire sent `stop`.
    CallerStopped,
    /// The media-stream socket closed without `stop`.
    PhoneSocketClosed,
    /// The model called `end_call` or a tool asked to hang up.
    AssistantHungUp,
    /// The caller was transferred (to this number or URI).
    Transferred(String),
    /// The application asked to hang up.
    HangUpRequested,
    /// The OpenAI connection closed or failed.
    ModelDisconnected,
    /// OpenAI reported an error that ends the session (its code).
    ModelFatalError(String),
    /// The media stream never sent a usable `start`.
    StreamNeverStarted,
    /// The OpenAI session did not become ready in time.
    ModelConnectTimeout,
    /// OpenAI closed the Live session itself, with this `session.closed` reason (`expired`,
    /// `content`, `remote_hangup`, `connection_lost`).
    ModelSessionClosed(String),
    /// The media stream described audio the bridge cannot carry.
    UnsupportedMediaFormat(String),
}

/// A malformed or out-of-place message that was counted and dropped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BadInputKind {
    /// Not JSON, or not the expected shape.
    Malformed,
    /// An `event`/`type` the bridge does not know.
    UnknownEvent,
    /// A payload that is not valid base64.
    BadBase64,
    /// L16 audio with an odd number of bytes.
    OddLength,
    /// `media` before `start`.
    MediaBeforeStart,
    /// A `streamSid` that is not this stream's.
    WrongStreamSid,
    /// A message over the size cap.
    Oversized,
    /// A binary frame where text was expected.
    Binary,
    /// A mark echo naming no mark we sent.
    UnknownMark,
}

/// Something that happened, with everything the call record needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// The media stream's `start` arrived.
    StreamStarted {
        /// SignalWire's stream id.
        stream_sid: String,
        /// SignalWire's call id.
        call_sid: Option<String>,
        /// The phone leg's codec.
        codec: PhoneCodec,
    },
    /// The OpenAI session accepted our configuration; caller audio flows.
    ModelReady {
        /// Which backend and transport, e.g. `realtime/websocket`.
        transport: &'static str,
    },
    /// The model leg fell back from one transport to another.
    Fallback {
        /// The transport given up, e.g. `realtime/webrtc`.
        from: &'static str,
        /// The transport now used, e.g. `realtime/websocket`.
        to: &'static str,
        /// Why.
        reason: String,
    },
    /// The OpenAI WebSocket dropped mid-call; a new session (given the conversation so far)
    /// is opened after a back-off.
    ModelReconnecting {
        /// 1 for the first attempt since the session was last ready.
        attempt: u32,
        /// The back-off before it.
        after: Duration,
    },
    /// The Realtime session neared OpenAI's 60-minute cap and was replaced by a new one, given
    /// the conversation, while the model was quiet.
    ModelSessionRollover,
    /// OpenAI's receiver reports on the caller's audio (WebRTC, Opus) turned forward error
    /// correction on (any loss) or off (a clean path again); FEC costs CPU and bits.
    UplinkFec {
        /// Whether the Opus encoder now adds FEC.
        enabled: bool,
        /// The loss in the report that decided it, in percent.
        loss_percent: u8,
    },
    /// The first model audio of the call went to the caller.
    FirstAudioToCaller,
    /// The caller spoke over the model: playback cleared, the model told what was heard.
    BargeIn {
        /// The assistant item that was cut, if any audio of it was playing.
        item_id: Option<String>,
        /// How much of it the caller heard.
        heard_ms: u32,
    },
    /// A finished transcript line.
    Transcript {
        /// Who spoke.
        role: Role,
        /// What was said.
        text: String,
    },
    /// A tool call was handed out (to the application or a built-in).
    ToolCallStarted {
        /// Its id.
        id: String,
        /// Function name.
        name: String,
        /// Arguments as the model sent them.
        arguments: serde_json::Value,
    },
    /// A tool call's output went to the model.
    ToolCallCompleted {
        /// Its id.
        id: String,
        /// Function name.
        name: String,
        /// The output the model got.
        output: String,
        /// From hand-out to output.
        latency: Duration,
        /// Whether the tool missed its deadline (the output is then an error).
        timed_out: bool,
    },
    /// A tool result came for a call that already had its output, or no such call.
    ToolResultIgnored {
        /// The id given.
        id: String,
    },
    /// The caller pressed a key.
    CallerDtmf {
        /// `0-9`, `*`, `#` or `A-D`.
        digit: char,
    },
    /// Digits were played to the caller's line.
    DtmfSent {
        /// The digits.
        digits: String,
    },
    /// Token usage of one model response.
    Usage {
        /// Input tokens.
        input_tokens: u64,
        /// Output tokens.
        output_tokens: u64,
    },
    /// Session time billed so far (Live `session.usage.updated`; cumulative).
    BilledSeconds {
        /// Seconds.
        seconds: f64,
    },
    /// The Live session closed (`session.closed`), before the call ended.
    ModelSessionClosed {
        /// `close_requested`, `expired`, `content`, `remote_hangup` or `connection_lost`.
        reason: String,
        /// The final billed seconds, when given.
        billed_seconds: Option<f64>,
    },
    /// OpenAI reported an error.
    ModelError {
        /// Its code, when given.
        code: Option<String>,
        /// Its message.
        message: String,
        /// Whether it ends the call.
        fatal: bool,
    },
    /// A peer message was malformed or out of place; it was dropped.
    BadInput {
        /// Which leg sent it.
        #[serde(skip)]
        leg: Leg,
        /// What was wrong.
        kind: BadInputKind,
    },
    /// A bounded queue overflowed and dropped its oldest entries (once per episode).
    Overloaded {
        /// Which queue.
        queue: &'static str,
    },
    /// The hang-up request went to SignalWire.
    HangupRequested,
    /// The call is over; nothing more will be sent.
    CallEnded {
        /// Why.
        reason: EndReason,
    },
}
