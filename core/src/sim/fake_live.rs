//! A sans-IO fake of OpenAI's Live API WebSocket server (`/v1/live/sessions`), for whole-call
//! simulations.
//!
//! The fake speaks the documented Live wire format, builds and reads JSON with
//! `serde_json::Value`, and shares no code with the bridge's own Live leg, so a bug there cannot
//! hide behind the same bug here. It is strict about what it receives: unknown session fields,
//! Realtime events, misplaced or repeated tool outputs get the `error` event the real server
//! would send (or, where the server stays silent, nothing), and [`LiveReport::violations`]
//! records every one for the test to assert on.
//!
//! What it does, as the real service does:
//! - The handshake needs `Authorization: Bearer …` on a `…/live/sessions` URL without a query
//!   string. The first frame must be `session.start`; `session.started` carries the id,
//!   `expires_at`, `status: "active"` and the resolved config. A refused start is an `error` and
//!   no session.
//! - Output audio flows **continuously at real-time pace, silence included**: one
//!   `session.output_audio.delta` of [`LiveScript::audio_chunk_ms`] every
//!   [`LiveScript::audio_chunk_ms`], in the session's one audio format. While the model talks the
//!   chunks carry a speech-like tone and `session.output_transcript.delta` fragments follow them.
//! - Turn taking is the model's: a VAD on the input (RMS threshold) notices the caller; when the
//!   caller goes quiet for [`LiveScript::vad_silence_ms`] the fake sends the caller's words as
//!   `session.input_transcript.delta` fragments and speaks its next scripted turn. A caller who
//!   talks over the model makes it fall silent from the next chunk on. The first
//!   `session.instructions.append` (the greeting) starts the first turn.
//! - Tools go through Responses delegation: `session.delegation.created`, then `response.event`
//!   envelopes holding the backend's stream. The fake waits for one `response.item.create`
//!   `function_call_output` per call and then a single `response.create`, and speaks the
//!   backend's answer.
//! - `session.usage.updated` every [`LiveScript::usage_interval`]; `session.close` is answered
//!   with `session.closed` (`close_requested`, final `usage.seconds`) and a 1000 close.
//!
//! - A `session.start` whose `input` holds earlier turns (a session replacing a lost WebRTC
//!   one) goes on with the script where those turns leave it; a
//!   [`successor`](FakeLive::successor) already starts there.
//!
//! Time comes only from the `now` arguments and ids are counters, so the same inputs at the same
//! instants always give the same outputs. One instance serves one WebSocket connection. Report
//! times are since [`FakeLive::set_origin`] (or the connect); the `*_ms` fields on the wire are
//! milliseconds since `session.started`.
//!
//! # WebRTC mode
//!
//! [`FakeLive::new_webrtc`] makes the same brain serve one session created over WebRTC
//! (`POST /v1/live/sessions`; the peer connection itself lives in [`crate::sim::fake_webrtc`]):
//! - The session comes with the creation request, checked as a `MediaSessionConfig` (the
//!   `session.start` rules, but no `audio.format`). No `session.start` is expected:
//!   `session.started` goes out once the data channel opens
//!   ([`handle_channel_open`](FakeLive::handle_channel_open)); nothing goes out before.
//! - Caller audio arrives decoded from RTP through
//!   [`handle_input_samples`](FakeLive::handle_input_samples) and feeds the same VAD.
//!   `session.start` and `session.input_audio.append` on the channel are violations.
//! - Output audio never goes on the channel: it comes out as 20 ms frames at real-time pace,
//!   silence included, pulled with [`poll_audio_frame`](FakeLive::poll_audio_frame); the
//!   transcript fragments still go on the channel, about every 100 ms of speech.

mod clock;
mod delegation;
mod report;
mod session;
mod successor;
#[cfg(test)]
mod tests;
mod voice;
mod webrtc;
#[cfg(test)]
mod webrtc_tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

pub use crate::sim::fake_realtime::FakeServerOutput;

pub use self::report::{
    AppendRecord, DelegationRecord, InputGap, LiveChunk, LiveReport, TurnRecord, TurnTrigger,
};

use self::clock::{Timer, TimerKind};
use self::delegation::Delegation;
use self::session::AudioFormat;
use self::voice::{Speech, VadState};
use self::webrtc::WebRtcMode;

/// Cap on recorded violations; one more entry says that the rest were dropped.
const MAX_VIOLATIONS: usize = 1000;
/// Cap on recorded client event types (audio appends are only counted).
const MAX_RECEIVED_TYPES: usize = 100_000;

/// What the fake Live server does during one connection. Times are since the connect.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveScript {
    /// The model's turns in order: the greeting, then one per caller utterance it answers; past
    /// the end each turn is [`LiveTurn::default`].
    pub turns: Vec<LiveTurn>,
    /// Words of the k-th caller utterance; `"(caller speech)"` past the end.
    pub caller_transcripts: Vec<String>,
    /// Milliseconds of audio in each `session.output_audio.delta`, and the time between two.
    pub audio_chunk_ms: u32,
    /// From what makes the model talk (the greeting instruction, the end of a caller utterance,
    /// the backend's answer) to the moment its speech is queued.
    pub response_delay: Duration,
    /// VAD threshold: RMS on the i16 scale.
    pub vad_threshold_rms: f32,
    /// Quiet that ends a caller utterance.
    pub vad_silence_ms: u32,
    /// The first `session.instructions.append` makes the model speak its first turn.
    pub greet_on_instructions: bool,
    /// From a turn's start to its `session.delegation.created` (turns with tool calls).
    pub delegation_delay: Duration,
    /// From the last nested `response.output_item.done` to the nested `response.completed`.
    pub delegation_complete_delay: Duration,
    /// Time between two `session.usage.updated`.
    pub usage_interval: Duration,
    /// The session expires this long after the connect (`session.closed` reason `expired`);
    /// `session.started.session.expires_at` says so.
    pub session_max: Duration,
    /// Close the session with this `session.closed` reason at this time.
    pub close_at: Option<(Duration, String)>,
    /// From `session.close` to `session.closed`; `None`: the fake never answers it.
    pub close_delay: Option<Duration>,
    /// The socket drops at this time without `session.closed` (`Close { 1006 }`).
    pub drop_socket_at: Option<Duration>,
    /// `error` events to send: `(when, code)`. The session stays open.
    pub inject_errors: Vec<(Duration, String)>,
    /// Refuse the handshake's key (HTTP 401 `invalid_api_key`).
    pub refuse_key: bool,
    /// The only key accepted, when set.
    pub api_key: Option<String>,
    /// Keep every appended input audio byte in [`LiveReport::input_audio`].
    pub record_input_audio: bool,
    /// A pause between two input appends longer than this is an [`InputGap`].
    pub max_input_gap: Duration,
    /// Unix seconds at the connect, for `expires_at`.
    pub unix_start: u64,
}

impl Default for LiveScript {
    fn default() -> Self {
        Self {
            turns: Vec::new(),
            caller_transcripts: Vec::new(),
            audio_chunk_ms: 100,
            response_delay: Duration::from_millis(300),
            vad_threshold_rms: 400.0,
            vad_silence_ms: 500,
            greet_on_instructions: true,
            delegation_delay: Duration::from_millis(200),
            delegation_complete_delay: Duration::from_millis(50),
            usage_interval: Duration::from_secs(60),
            session_max: Duration::from_secs(60 * 60),
            close_at: None,
            close_delay: Some(Duration::from_millis(200)),
            drop_socket_at: None,
            inject_errors: Vec::new(),
            refuse_key: false,
            api_key: None,
            record_input_audio: false,
            max_input_gap: Duration::from_millis(100),
            unix_start: 1_790_000_000,
        }
    }
}

/// One turn of the fake model.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveTurn {
    /// What the voice says (sent as output transcript).
    pub text: String,
    /// Milliseconds of speech; 0 says nothing.
    pub audio_ms: u32,
    /// Function calls the backend makes during this turn: `(name, arguments object)`.
    pub tool_calls: Vec<(String, Value)>,
    /// The backend's answer once the tools are answered (`response.output_text.delta`), which
    /// the voice then speaks.
    pub follow_up: String,
    /// Milliseconds of speech for the follow-up.
    pub follow_up_ms: u32,
}

impl Default for LiveTurn {
    /// The turn used once the script runs out: "I see.", 600 ms, no tools.
    fn default() -> Self {
        Self {
            text: "I see.".to_owned(),
            audio_ms: 600,
            tool_calls: Vec::new(),
            follow_up: "Here is what I found.".to_owned(),
            follow_up_ms: 1_500,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    NotConnected,
    /// Connected, `session.start` not accepted yet.
    Open,
    /// `session.started` sent.
    Started,
    Closed,
}

/// An `error` answering one client event.
struct Refusal {
    code: &'static str,
    param: Option<String>,
    message: String,
}

impl Refusal {
    fn new(code: &'static str, param: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            param: (!param.is_empty()).then(|| param.to_owned()),
            message: message.into(),
        }
    }
}

/// What a client event handler returns: a refusal is a client bug, recorded as a violation.
type Handled = Result<(), Refusal>;

/// The fake Live server. See the module docs.
#[derive(Debug)]
pub struct FakeLive {
    script: LiveScript,
    report: LiveReport,
    out: VecDeque<FakeServerOutput>,
    timers: Vec<Timer>,
    timer_seq: u64,
    conn: Conn,
    connected_at: Option<Instant>,
    started_at: Option<Instant>,
    origin: Option<Instant>,
    last_now: Option<Instant>,
    /// The resolved session resource.
    session: Value,
    format: AudioFormat,
    responses_delegation: bool,
    next_id: u64,
    next_event: u64,
    /// `sequence_number` of nested Responses events.
    next_sequence: u64,
    // input
    window: Vec<i16>,
    vad: VadState,
    muted: bool,
    /// Input timeline position of the VAD, in ms.
    vad_pos_ms: u64,
    last_append_at: Option<Instant>,
    caller_turns: usize,
    // output
    /// Position in the assistant's `speech_like` signal.
    out_samples: u64,
    speaking: Option<Speech>,
    queued_speech: VecDeque<Speech>,
    next_turn: usize,
    greeted: bool,
    // delegation
    delegations: Vec<Delegation>,
    closing: bool,
    /// Serving a WebRTC session ([`FakeLive::new_webrtc`]).
    webrtc: Option<WebRtcMode>,
    /// A `session.start` with earlier turns as `input` moves the script past them; off for a
    /// [`successor`](FakeLive::successor), whose script already starts there.
    resume_from_input: bool,
}

impl FakeLive {
    /// A fake server waiting for [`handle_connect`](Self::handle_connect).
    pub fn new(script: LiveScript) -> Self {
        Self {
            script,
            report: LiveReport::default(),
            out: VecDeque::new(),
            timers: Vec::new(),
            timer_seq: 0,
            conn: Conn::NotConnected,
            connected_at: None,
            started_at: None,
            origin: None,
            last_now: None,
            session: Value::Null,
            format: AudioFormat::Pcm24k,
            responses_delegation: false,
            next_id: 0,
            next_event: 0,
            next_sequence: 0,
            window: Vec::new(),
            vad: VadState::default(),
            muted: false,
            vad_pos_ms: 0,
            last_append_at: None,
            caller_turns: 0,
            out_samples: 0,
            speaking: None,
            queued_speech: VecDeque::new(),
            next_turn: 0,
            greeted: false,
            delegations: Vec::new(),
            closing: false,
            webrtc: None,
            resume_from_input: true,
        }
    }

    /// Measures the report's times from `origin` instead of from the connect, so that a
    /// simulation can compare them with its own clock.
    pub fn set_origin(&mut self, origin: Instant) {
        self.origin = Some(origin);
    }

    /// The WebSocket handshake: `ws(s)://host/…/live/sessions` with no query string and
    /// `Authorization: Bearer <key>`. Nothing is sent until `session.start` arrives.
    ///
    /// # Errors
    /// The HTTP status of a refused handshake: 401 for a missing, wrong or refused key, 400 for
    /// a query string, 404 for another path, 409 for a second connect on one instance.
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
        if let Err(status) = check_url(url) {
            self.violate(format!("handshake refused with {status}: bad URL {url:?}"));
            return Err(status);
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let key = header("authorization").and_then(|v| {
            v.get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .and(v.get(7..))
                .map(str::trim)
                .filter(|k| !k.is_empty())
        });
        let Some(key) = key else {
            self.violate("handshake refused with 401: no `Authorization: Bearer <key>`".into());
            return Err(401);
        };
        if self.script.refuse_key || self.script.api_key.as_deref().is_some_and(|k| k != key) {
            return Err(401);
        }
        if header("openai-beta").is_some() {
            self.violate("the Live API takes no OpenAI-Beta header".into());
        }
        self.report.url = Some(url.to_owned());
        self.open(now);
        Ok(())
    }

    /// The connection is up at `now`: the script's session clock starts.
    fn open(&mut self, now: Instant) {
        self.conn = Conn::Open;
        self.connected_at = Some(now);
        self.last_now = Some(now);
        self.schedule(
            now,
            self.script.session_max,
            TimerKind::CloseWith("expired".into()),
        );
        if let Some((at, reason)) = self.script.close_at.clone() {
            self.schedule(now, at, TimerKind::CloseWith(reason));
        }
        if let Some(at) = self.script.drop_socket_at {
            self.schedule(now, at, TimerKind::DropSocket);
        }
        for (i, (at, _)) in self.script.inject_errors.clone().into_iter().enumerate() {
            self.schedule(now, at, TimerKind::InjectError(i));
        }
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
        if self.webrtc.as_ref().is_some_and(|w| !w.channel_open) {
            self.violate("a client event before the data channel opened".into());
            return;
        }
        self.run_due(now);
        if self.conn == Conn::Closed {
            return;
        }
        let event: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let msg = format!("We could not parse the JSON body of your request. ({e})");
                return self.refuse(now, Refusal::new("invalid_json", "", msg), None);
            }
        };
        if let Err(refusal) = self.dispatch(now, &event) {
            let eid = event
                .get("event_id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            self.refuse(now, refusal, eid.as_deref());
        }
    }

    /// The client closed the socket: the fake stops.
    pub fn handle_closed(&mut self, now: Instant) {
        let now = self.clamp(now);
        if self.conn == Conn::Closed || self.conn == Conn::NotConnected {
            return;
        }
        self.run_due(now);
        if self.conn == Conn::Closed {
            return;
        }
        self.report.closed_by_client = true;
        if self.conn == Conn::Started && !self.closing {
            self.report.closed_without_session_close = true;
        }
        self.end_input_gap(now);
        self.report.socket_closed_at = Some(self.since(now));
        self.conn = Conn::Closed;
        self.timers.clear();
        self.out.clear();
        if let Some(w) = &mut self.webrtc {
            w.frames.clear();
        }
    }

    /// Sends whatever is scheduled at or before `now`; earlier than the deadline it does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clamp(now);
        self.run_due(now);
    }

    /// When the next scheduled send is due; `None` when nothing is scheduled or the socket closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.conn, Conn::Closed | Conn::NotConnected) {
            return None;
        }
        self.timers.iter().map(|t| t.at).min()
    }

    /// The next frame to deliver to the client, in order; `None` when drained.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<FakeServerOutput> {
        self.out.pop_front()
    }

    /// What the fake saw and did so far.
    pub fn report(&self) -> &LiveReport {
        &self.report
    }

    /// Whether the socket is open (connected and not closed by either side).
    pub fn is_open(&self) -> bool {
        matches!(self.conn, Conn::Open | Conn::Started)
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

    /// Milliseconds since `session.started`: the wire's `*_ms` timeline.
    fn timeline_ms(&self, t: Instant) -> u64 {
        self.started_at
            .map_or(0, |s| t.saturating_duration_since(s).as_millis() as u64)
    }

    /// Whole seconds of session so far, as `usage.seconds` reports them.
    fn billed_seconds(&self, t: Instant) -> f64 {
        self.started_at
            .map_or(0.0, |s| t.saturating_duration_since(s).as_secs() as f64)
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{:04}", self.next_id)
    }

    /// Queues one server event: `type` and a fresh `event_id` plus `fields`.
    fn send(&mut self, ty: &str, fields: Value) {
        self.next_event += 1;
        let event_id = format!("evt_{:04}", self.next_event);
        self.send_with(ty, Some(event_id), fields);
    }

    /// Queues one server event; `event_id` is left out when `None`.
    fn send_with(&mut self, ty: &str, event_id: Option<String>, fields: Value) {
        if !self.is_open() {
            return;
        }
        let mut map = Map::new();
        map.insert("type".into(), json!(ty));
        if let Some(id) = event_id {
            map.insert("event_id".into(), json!(id));
        }
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
        if !self.is_open() {
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
                "client_event_id": client_event_id,
            }}),
        );
    }

    /// Answers a refused client event, echoing its `event_id`, and records the violation.
    fn refuse(&mut self, now: Instant, r: Refusal, eid: Option<&str>) {
        let param = r.param.as_deref().unwrap_or("-");
        self.violate(format!("{} ({param}): {}", r.code, r.message));
        let kind = "invalid_request_error";
        self.send_error(now, kind, r.code, &r.message, r.param.as_deref(), eid);
    }

    fn violate(&mut self, what: String) {
        let v = &mut self.report.violations;
        if v.len() < MAX_VIOLATIONS {
            v.push(what);
        } else if v.len() == MAX_VIOLATIONS {
            v.push("… further violations dropped".to_owned());
        }
    }

    /// Sends `session.closed` with `reason` and the final usage (if the session started), then
    /// closes the socket.
    fn close_session(&mut self, now: Instant, reason: &str) {
        if self.conn == Conn::Started {
            let seconds = self.billed_seconds(now);
            let mut session = self.session.clone();
            session["status"] = json!("active");
            self.send(
                "session.closed",
                json!({"reason": reason, "session": session, "usage": {"seconds": seconds}}),
            );
            self.report.closed_reason = Some(reason.to_owned());
            self.report.closed_at = Some(self.since(now));
        }
        self.close(now, 1000, "");
    }

    fn close(&mut self, now: Instant, code: u16, reason: &str) {
        if !self.is_open() {
            return;
        }
        self.end_input_gap(now);
        self.report.socket_closed_at = Some(self.since(now));
        self.out.push_back(FakeServerOutput::Close {
            code,
            reason: reason.to_owned(),
        });
        self.conn = Conn::Closed;
        self.timers.clear();
        self.speaking = None;
        self.queued_speech.clear();
        if let Some(w) = &mut self.webrtc {
            w.frames.clear();
        }
    }

    // ---- client events ----

    fn dispatch(&mut self, now: Instant, event: &Value) -> Handled {
        let Some(ty) = event.get("type").and_then(Value::as_str) else {
            return Err(Refusal::new(
                "invalid_value",
                "type",
                "Missing or invalid 'type'.",
            ));
        };
        let eid = event.get("event_id").and_then(Value::as_str);
        if ty != "session.input_audio.append"
            && self.report.received_types.len() < MAX_RECEIVED_TYPES
        {
            self.report.received_types.push(ty.to_owned());
        }
        if self.webrtc.is_some() {
            self.check_webrtc_event(ty)?;
        }
        if self.closing {
            self.report.events_after_close = self.report.events_after_close.saturating_add(1);
            if ty == "session.input_audio.append" {
                return Ok(());
            }
            let msg = format!("The session is closing; '{ty}' was not processed.");
            return Err(Refusal::new("session_closing", "type", msg));
        }
        if self.conn == Conn::Open {
            if ty == "session.start" {
                return self.on_start(now, event);
            }
            let msg = format!("The first event must be 'session.start', not '{ty}'.");
            return Err(Refusal::new("session_not_started", "type", msg));
        }
        match ty {
            "session.start" => Err(Refusal::new(
                "session_already_started",
                "type",
                "The session has already started.",
            )),
            "session.update" => self.on_update(event),
            "session.input_audio.append" => self.on_append(now, event),
            "session.input_audio.mute" | "session.input_audio.unmute" => {
                self.muted = ty == "session.input_audio.mute";
                let ack = if self.muted { "muted" } else { "unmuted" };
                self.send(
                    &format!("session.input_audio.{ack}"),
                    json!({"client_event_id": eid}),
                );
                Ok(())
            }
            "session.instructions.append" => self.on_text_append(now, "instructions", event),
            "session.thinking.append" => self.on_text_append(now, "thinking", event),
            "session.commentary.append" => self.on_text_append(now, "commentary", event),
            "response.item.create" => self.on_item_create(now, event),
            "response.create" => self.on_response_create(now, event),
            "session.close" => {
                self.closing = true;
                self.report.close_requested_at = Some(self.since(now));
                self.speaking = None;
                self.queued_speech.clear();
                self.cancel_timers(|k| {
                    !matches!(k, TimerKind::CloseWith(_) | TimerKind::DropSocket)
                });
                if let Some(delay) = self.script.close_delay {
                    self.schedule(now, delay, TimerKind::AnswerClose);
                }
                Ok(())
            }
            "transport.dtmf.send" => Err(Refusal::new(
                "invalid_value",
                "type",
                "transport.dtmf.send is only available on the sideband of a SIP session.",
            )),
            "input_audio_buffer.append"
            | "input_audio_buffer.commit"
            | "input_audio_buffer.clear"
            | "conversation.item.create"
            | "conversation.item.truncate"
            | "conversation.item.delete"
            | "conversation.item.retrieve"
            | "response.cancel"
            | "output_audio_buffer.clear" => {
                let msg = format!(
                    "Invalid value: '{ty}'. This is a Realtime API event; the Live API does not support it."
                );
                Err(Refusal::new("invalid_value", "type", msg))
            }
            other => {
                let msg = format!(
                    "Invalid value: '{other}'. Supported values are the Live client events."
                );
                Err(Refusal::new("invalid_value", "type", msg))
            }
        }
    }

    fn on_text_append(&mut self, now: Instant, kind: &str, event: &Value) -> Handled {
        if let Some(k) = unknown_key(event, &["type", "event_id", "content", "delegation_id"]) {
            let msg = format!("Unknown parameter: '{k}'.");
            return Err(Refusal::new("unknown_parameter", &k, msg));
        }
        let Some(content) = event.get("content").and_then(Value::as_str) else {
            let msg = "Missing required parameter: 'content' (a string).";
            return Err(Refusal::new("missing_required_parameter", "content", msg));
        };
        let delegation_id = match event.get("delegation_id") {
            None => {
                let msg = "Missing required parameter: 'delegation_id' (send null for none).";
                return Err(Refusal::new(
                    "missing_required_parameter",
                    "delegation_id",
                    msg,
                ));
            }
            Some(Value::Null) => None,
            Some(Value::String(id)) if self.responses_delegation => {
                let msg = format!(
                    "Invalid 'delegation_id': '{id}'. Appends under Responses delegation take null."
                );
                return Err(Refusal::new("invalid_value", "delegation_id", msg));
            }
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => {
                let msg = "Invalid type for 'delegation_id': expected a string or null.";
                return Err(Refusal::new("invalid_type", "delegation_id", msg));
            }
        };
        // About 500 tokens.
        if content.chars().count() > 2_000 {
            let msg = "'content' is longer than 500 tokens.";
            return Err(Refusal::new("string_above_max_length", "content", msg));
        }
        self.report.appends.push(AppendRecord {
            at: self.since(now),
            kind: kind.to_owned(),
            content: content.to_owned(),
            delegation_id,
        });
        let t = self.timeline_ms(now);
        let eid = event.get("event_id").cloned().unwrap_or(Value::Null);
        self.send(
            &format!("session.{kind}.appended"),
            json!({"client_event_id": eid, "start_ms": t, "end_ms": t}),
        );
        if kind == "instructions" && self.script.greet_on_instructions && !self.greeted {
            self.greeted = true;
            let delay = self.script.response_delay;
            self.schedule(now, delay, TimerKind::Reply(TurnTrigger::Greeting));
        }
        Ok(())
    }
}

/// The first key of the object `v` not in `allowed`.
fn unknown_key(v: &Value, allowed: &[&str]) -> Option<String> {
    v.as_object()?
        .keys()
        .find(|k| !allowed.contains(&k.as_str()))
        .cloned()
}

/// Checks a handshake URL: `ws(s)://host/…/live/sessions`, no query. The error is an HTTP status.
fn check_url(url: &str) -> Result<(), u16> {
    let rest = url
        .strip_prefix("wss://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or(404u16)?;
    let (host, path) = rest.split_once('/').ok_or(404u16)?;
    if host.is_empty() {
        return Err(404);
    }
    if path.contains('?') || path.contains('#') {
        return Err(400);
    }
    if path != "live/sessions" && !path.ends_with("/live/sessions") {
        return Err(404);
    }
    Ok(())
}
