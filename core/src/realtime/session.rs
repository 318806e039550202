//! The Realtime GA session, whichever transport carries its events: configuration, the response
//! sequencer, barge-in, and the conversation history that a new connection is given.
//!
//! Rules it keeps (reference: OpenAI Realtime GA):
//! - `response.create` is never sent while a response is active; requests are queued and
//!   coalesced, and `conversation_already_has_active_response` just re-queues ours.
//! - Tool calls of a response get one `response.create` after every output is in and the
//!   response is done.
//! - After a barge-in the cut item is truncated at what the caller heard and the rest of its
//!   response's audio is dropped.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::audio::PhoneCodec;
use crate::config::{CallConfig, ToolSpec, TurnDetection};
use crate::media_path::ModelAudio;
use crate::model::{CUT_OFF_MARKER, ModelEvent};
use crate::output::{ConnectRequest, Role};
use crate::realtime::events::{
    self, EventError, OutputItem, RealtimeAudioFormat, ServerEvent, SessionSettings,
};
use crate::tools::builtins;

/// Recently cut responses whose late audio is dropped.
const REMEMBERED_CUT_RESPONSES: usize = 16;
/// Recent items whose received audio length is kept, for truncation.
const REMEMBERED_ITEMS: usize = 16;
/// Tool call ids remembered to drop duplicates.
const REMEMBERED_CALL_IDS: usize = 256;

/// A response failed because the account is throttled; the session goes on.
const RATE_LIMITED: &str = "inference_rate_limit_exceeded";
/// Throttled responses asked for again before the bridge gives up on that turn.
const MAX_THROTTLED_RETRIES: u32 = 3;
/// The first retry's back-off; each next one doubles it.
const THROTTLE_BACKOFF: Duration = Duration::from_secs(1);

/// Error codes after which the session cannot go on.
const FATAL_CODES: [&str; 6] = [
    "invalid_api_key",
    "insufficient_quota",
    "account_deactivated",
    "billing_hard_limit_reached",
    "session_expired",
    "beta_api_shape_disabled",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Connecting,
    Configuring,
    Ready,
}

/// The response the server is producing (or that our `response.create` will start).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Active {
    response_id: Option<String>,
    create_event: Option<String>,
}

/// A Realtime session over WebSocket.
#[derive(Debug)]
pub(crate) struct RealtimeSession {
    api_key: String,
    base_url: String,
    model: String,
    voice: String,
    instructions: String,
    turn_detection: TurnDetection,
    transcription_model: Option<String>,
    tools: Vec<ToolSpec>,
    format: RealtimeAudioFormat,
    audio: ModelAudio,
    state: State,
    next_event: u64,
    outbox: VecDeque<String>,
    events: VecDeque<ModelEvent>,
    active: Option<Active>,
    create_pending: bool,
    responding: bool,
    /// Tool calls handed out and not yet answered.
    awaiting_outputs: BTreeSet<String>,
    /// A response is owed once every awaited output is in.
    respond_after_tools: bool,
    seen_calls: VecDeque<String>,
    cut_responses: VecDeque<String>,
    /// (item, response, bytes received) of recent assistant audio items.
    items: VecDeque<(String, String, usize)>,
    /// Audio arrives over RTP and the server owns playback (WebRTC).
    webrtc: bool,
    /// WebRTC: the server's output audio buffer is playing.
    output_playing: bool,
    /// The server heard the caller start an utterance and not yet stop.
    caller_speaking: bool,
    /// The latest time seen, for back-offs decided inside event handling.
    now: Option<Instant>,
    /// Throttled responses retried in a row.
    throttled: u32,
    /// A throttled response is asked for again then.
    retry_at: Option<Instant>,
    /// The conversation so far, as items a new session can be given.
    history: VecDeque<serde_json::Value>,
    /// The assistant line being spoken (response id, transcript so far): a connection lost
    /// before its `done` leaves it in the history marked as cut off.
    spoken: Option<(String, String)>,
}

/// Items of conversation history kept for a transport change.
const HISTORY_ITEMS: usize = 64;
/// Characters of a line being spoken that are kept (the rest of a longer line is dropped).
const SPOKEN_CHARS: usize = 1000;

impl RealtimeSession {
    pub(crate) fn new(config: &CallConfig) -> Self {
        let mut tools = config.tools.clone();
        tools.extend(builtins::specs(config.builtins));
        RealtimeSession {
            api_key: config.openai.api_key.clone(),
            base_url: config.openai.base_url.clone(),
            model: config.openai.model.clone(),
            voice: config.openai.voice.clone(),
            instructions: config.openai.instructions.clone(),
            turn_detection: config.openai.turn_detection.clone(),
            transcription_model: config.openai.transcription_model.clone(),
            tools,
            format: RealtimeAudioFormat::Pcmu,
            audio: ModelAudio::Pcmu,
            state: State::Idle,
            next_event: 0,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            active: None,
            create_pending: false,
            responding: true,
            awaiting_outputs: BTreeSet::new(),
            respond_after_tools: false,
            seen_calls: VecDeque::new(),
            cut_responses: VecDeque::new(),
            items: VecDeque::new(),
            webrtc: false,
            output_playing: false,
            caller_speaking: false,
            now: None,
            throttled: 0,
            retry_at: None,
            history: VecDeque::new(),
            spoken: None,
        }
    }

    /// μ-law and A-law pass straight through; L16 goes as 24 kHz PCM, OpenAI's only PCM rate.
    pub(crate) fn choose_audio(phone: PhoneCodec) -> ModelAudio {
        match phone {
            PhoneCodec::Pcmu => ModelAudio::Pcmu,
            PhoneCodec::Pcma => ModelAudio::Pcma,
            PhoneCodec::L16 { .. } => ModelAudio::Pcm { rate_hz: 24_000 },
        }
    }

    /// Sets the rendered instructions before the first connection.
    pub(crate) fn set_instructions(&mut self, instructions: String) {
        self.instructions = instructions;
    }

    /// Starts a WebSocket connection (first, or after WebRTC failed); returns where to connect.
    pub(crate) fn begin_websocket(&mut self, audio: ModelAudio) -> ConnectRequest {
        self.audio = audio;
        self.format = match audio {
            ModelAudio::Pcmu => RealtimeAudioFormat::Pcmu,
            ModelAudio::Pcma => RealtimeAudioFormat::Pcma,
            ModelAudio::Pcm { .. } => RealtimeAudioFormat::Pcm24k,
        };
        self.new_connection(false);
        ConnectRequest {
            url: format!(
                "{}/realtime?model={}",
                ws_base(&self.base_url),
                percent_encode(&self.model)
            ),
            headers: vec![(
                "Authorization".to_owned(),
                format!("Bearer {}", self.api_key),
            )],
        }
    }

    /// Starts a WebRTC connection; returns the `session` for the call-creation request.
    pub(crate) fn begin_webrtc(&mut self) -> serde_json::Value {
        self.new_connection(true);
        self.session_json()
    }

    /// The opening connection knows nothing of the last one's responses or audio.
    fn new_connection(&mut self, webrtc: bool) {
        self.webrtc = webrtc;
        self.retry_at = None;
        self.caller_speaking = false;
        self.state = State::Connecting;
        self.active = None;
        self.output_playing = false;
        self.cut_responses.clear();
        self.items.clear();
        self.outbox.clear();
    }

    /// The session object; over WebRTC the audio formats are RTP's business and left out.
    fn session_json(&self) -> serde_json::Value {
        let settings = SessionSettings {
            model: &self.model,
            instructions: &self.instructions,
            voice: &self.voice,
            input_format: self.format,
            output_format: self.format,
            turn_detection: &self.turn_detection,
            transcription_model: self.transcription_model.as_deref(),
            tools: &self.tools,
        };
        let mut session = events::session_object(&settings);
        if self.webrtc {
            for direction in ["input", "output"] {
                if let Some(audio) = session["audio"][direction].as_object_mut() {
                    audio.remove("format");
                }
            }
        }
        session
    }

    /// The conversation so far, as `conversation.item.create` events for a new session.
    pub(crate) fn replay_history(&mut self) {
        let items: Vec<serde_json::Value> = self.history.iter().cloned().collect();
        for item in items {
            let id = self.event_id();
            let event = serde_json::json!({"type": "conversation.item.create", "event_id": id, "item": item});
            self.outbox.push_back(event.to_string());
        }
    }

    fn remember(&mut self, item: serde_json::Value) {
        if self.history.len() >= HISTORY_ITEMS {
            self.history.pop_front();
        }
        self.history.push_back(item);
    }

    /// The connection is open (socket, or data channel): configure the session.
    pub(crate) fn handle_opened(&mut self, _now: Instant) {
        if self.state != State::Connecting {
            return;
        }
        self.state = State::Configuring;
        let id = self.event_id();
        let session = self.session_json();
        let event =
            serde_json::json!({"type": "session.update", "event_id": id, "session": session});
        self.outbox.push_back(event.to_string());
    }

    pub(crate) fn handle_text(&mut self, now: Instant, text: &str) {
        self.now = Some(now);
        match events::parse_server_event(text) {
            Ok(event) => self.handle_event(event),
            Err(EventError::UnknownType(_)) => self
                .events
                .push_back(ModelEvent::BadMessage { unknown_type: true }),
            Err(EventError::Malformed(_) | EventError::BadBase64) => {
                self.events.push_back(ModelEvent::BadMessage {
                    unknown_type: false,
                })
            }
        }
    }

    fn handle_event(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::SessionUpdated => {
                if self.state == State::Configuring {
                    self.state = State::Ready;
                    self.events.push_back(ModelEvent::Ready);
                    self.flush_response();
                }
            }
            ServerEvent::SpeechStarted { .. } => {
                self.caller_speaking = true;
                self.events.push_back(ModelEvent::CallerSpeechStarted)
            }
            ServerEvent::InputTranscript { transcript, .. } => {
                self.remember(serde_json::json!({"type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": transcript}]}));
                self.transcript(Role::Caller, transcript)
            }
            ServerEvent::ResponseCreated { response_id } => {
                let create_event = self.active.take().and_then(|a| a.create_event);
                self.active = Some(Active {
                    response_id: Some(response_id),
                    create_event,
                });
            }
            ServerEvent::AudioDelta {
                response_id,
                item_id,
                audio,
            } => {
                if self.cut_responses.contains(&response_id) {
                    return;
                }
                self.count_item_audio(&item_id, &response_id, audio.len());
                self.events.push_back(ModelEvent::Audio {
                    item_id,
                    audio,
                    paced: false,
                });
            }
            ServerEvent::AudioDone {
                response_id,
                item_id,
            } => {
                if !self.cut_responses.contains(&response_id) {
                    self.events.push_back(ModelEvent::AudioDone { item_id });
                }
            }
            ServerEvent::AudioTranscriptDelta {
                response_id, delta, ..
            } => self.transcript_delta(response_id, &delta),
            ServerEvent::AudioTranscriptDone {
                response_id,
                transcript,
                ..
            } => {
                self.spoken = None;
                if !self.cut_responses.contains(&response_id) {
                    self.remember(serde_json::json!({"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": transcript}]}));
                    self.transcript(Role::Assistant, transcript);
                }
            }
            ServerEvent::OutputItemDone { item, .. } => self.output_item(item),
            ServerEvent::ResponseDone {
                status,
                error_code,
                usage,
                ..
            } => {
                self.active = None;
                self.spoken = None;
                if let Some(usage) = usage {
                    self.events.push_back(ModelEvent::Usage {
                        input_tokens: usage.input_tokens,
                        output_tokens: usage.output_tokens,
                    });
                }
                if status == "completed" {
                    self.throttled = 0;
                }
                if status == "failed"
                    && error_code.as_deref() == Some(RATE_LIMITED)
                    && self.throttled < MAX_THROTTLED_RETRIES
                {
                    // Throttled, not broken: ask again after a back-off.
                    let after = THROTTLE_BACKOFF * 2u32.pow(self.throttled);
                    self.throttled += 1;
                    self.retry_at = self.now.map(|now| now + after);
                    self.create_pending = self.responding;
                }
                if status == "failed" {
                    let fatal = error_code.as_deref().is_some_and(is_fatal);
                    self.events.push_back(ModelEvent::Error {
                        message: format!(
                            "response failed ({})",
                            error_code.as_deref().unwrap_or("no code")
                        ),
                        code: error_code,
                        fatal,
                    });
                }
                self.maybe_respond_after_tools();
                self.flush_response();
            }
            ServerEvent::Error {
                code,
                message,
                event_id,
                ..
            } => self.error(code, message, event_id),
            ServerEvent::OutputAudioStarted { .. } => self.output_playing = true,
            ServerEvent::OutputAudioStopped { .. } | ServerEvent::OutputAudioCleared { .. } => {
                self.output_playing = false
            }
            ServerEvent::SpeechStopped { .. } => self.caller_speaking = false,
            ServerEvent::SessionCreated
            | ServerEvent::Truncated { .. }
            | ServerEvent::Ignored(_) => {}
        }
    }

    fn output_item(&mut self, item: OutputItem) {
        let OutputItem::FunctionCall {
            call_id,
            name,
            arguments,
            status,
            ..
        } = item
        else {
            return;
        };
        // Only a completed call has its whole arguments; an incomplete one was cut off.
        if status != "completed" || self.seen_calls.contains(&call_id) {
            return;
        }
        if self.seen_calls.len() >= REMEMBERED_CALL_IDS {
            self.seen_calls.pop_front();
        }
        self.seen_calls.push_back(call_id.clone());
        self.awaiting_outputs.insert(call_id.clone());
        self.respond_after_tools = true;
        self.remember(
            serde_json::json!({"type": "function_call", "call_id": call_id,
            "name": name, "arguments": arguments}),
        );
        self.events.push_back(ModelEvent::ToolCall {
            call_id,
            name,
            arguments,
        });
    }

    fn error(&mut self, code: Option<String>, message: String, event_id: Option<String>) {
        match code.as_deref() {
            Some("conversation_already_has_active_response") => {
                // Ours was refused because the server started one on its own: wait for it.
                let ours = self.active.as_ref().and_then(|a| a.create_event.as_deref());
                if ours.is_some() && ours == event_id.as_deref() {
                    self.create_pending = self.responding;
                    let response_id = self.active.take().and_then(|a| a.response_id);
                    self.active = Some(Active {
                        response_id,
                        create_event: None,
                    });
                }
            }
            Some("response_cancel_not_active") => {}
            Some(_) | None => {}
        }
        let fatal = code.as_deref().is_some_and(is_fatal);
        self.events.push_back(ModelEvent::Error {
            code,
            message,
            fatal,
        });
    }

    fn transcript(&mut self, role: Role, text: String) {
        if !text.is_empty() {
            self.events.push_back(ModelEvent::Transcript { role, text });
        }
    }

    fn count_item_audio(&mut self, item_id: &str, response_id: &str, bytes: usize) {
        if let Some(entry) = self.items.iter_mut().find(|(i, _, _)| i == item_id) {
            entry.2 += bytes;
            return;
        }
        if self.items.len() >= REMEMBERED_ITEMS {
            self.items.pop_front();
        }
        self.items
            .push_back((item_id.to_owned(), response_id.to_owned(), bytes));
    }

    pub(crate) fn send_audio(&mut self, audio: &[u8]) {
        if self.state == State::Ready && !self.webrtc {
            self.outbox.push_back(events::input_audio_append(audio));
        }
    }

    pub(crate) fn send_user_text(&mut self, text: &str) {
        self.remember(serde_json::json!({"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}]}));
        if self.state != State::Ready {
            return;
        }
        let id = self.event_id();
        self.outbox.push_back(events::user_text_item(&id, text));
        self.request_response();
    }

    pub(crate) fn request_response(&mut self) {
        if self.responding {
            self.create_pending = true;
            self.flush_response();
        }
    }

    pub(crate) fn send_tool_output(&mut self, call_id: &str, output: &str) {
        self.awaiting_outputs.remove(call_id);
        self.remember(
            serde_json::json!({"type": "function_call_output", "call_id": call_id,
            "output": output}),
        );
        if self.state == State::Ready {
            let id = self.event_id();
            self.outbox
                .push_back(events::function_call_output(&id, call_id, output));
        }
        self.maybe_respond_after_tools();
    }

    fn maybe_respond_after_tools(&mut self) {
        if self.respond_after_tools && self.awaiting_outputs.is_empty() && self.active.is_none() {
            self.respond_after_tools = false;
            self.request_response();
        }
    }

    /// When a throttled response is asked for again.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.retry_at
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            self.flush_response();
        }
    }

    fn flush_response(&mut self) {
        if self.create_pending
            && self.retry_at.is_none()
            && self.responding
            && self.active.is_none()
            && self.state == State::Ready
        {
            self.create_pending = false;
            let id = self.event_id();
            self.outbox.push_back(events::response_create(&id));
            self.active = Some(Active {
                response_id: None,
                create_event: Some(id),
            });
        }
    }

    /// The caller interrupted (`local`: the bridge itself cuts the model off, e.g. on DTMF);
    /// `heard` is the cut item and how much of it the caller heard (WebSocket only).
    pub(crate) fn interrupted(&mut self, heard: Option<(&str, u32)>, local: bool) {
        if self.state != State::Ready {
            return;
        }
        let speaking = self.active.is_some() || self.output_playing;
        if let Some(active) = &self.active
            && let Some(response_id) = active.response_id.clone()
        {
            self.cut(response_id);
        }
        // With `interrupt_response` the server cancels on its own VAD.
        if speaking && (local || !self.turn_detection.interrupt_response) {
            if self.active.is_some() {
                let id = self.event_id();
                self.outbox.push_back(events::response_cancel(&id));
            }
            if self.webrtc {
                let id = self.event_id();
                self.outbox
                    .push_back(events::output_audio_buffer_clear(&id));
            }
        }
        if self.webrtc {
            // The server truncates what it did not play; our own buffer was flushed.
            return;
        }
        let Some((item_id, heard_ms)) = heard else {
            return;
        };
        let Some((_, response_id, bytes)) =
            self.items.iter().find(|(i, _, _)| i == item_id).cloned()
        else {
            return;
        };
        self.cut(response_id);
        let received_ms = (bytes / self.audio.bytes_per_ms().max(1)) as u32;
        if heard_ms < received_ms {
            let id = self.event_id();
            self.outbox
                .push_back(events::item_truncate(&id, item_id, heard_ms));
        }
    }

    fn cut(&mut self, response_id: String) {
        if self
            .spoken
            .as_ref()
            .is_some_and(|(id, _)| *id == response_id)
        {
            self.spoken = None;
        }
        if self.cut_responses.contains(&response_id) {
            return;
        }
        if self.cut_responses.len() >= REMEMBERED_CUT_RESPONSES {
            self.cut_responses.pop_front();
        }
        self.cut_responses.push_back(response_id);
    }

    pub(crate) fn stop_responding(&mut self) {
        self.responding = false;
        self.create_pending = false;
        self.respond_after_tools = false;
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.active.is_none() && !self.create_pending && !self.output_playing
    }

    /// Between turns: the model is idle and the caller is not mid-utterance (whose audio the
    /// server holds uncommitted).
    pub(crate) fn at_turn_boundary(&self) -> bool {
        self.is_idle() && !self.caller_speaking
    }

    /// Whether the session has accepted its configuration.
    pub(crate) fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// The connection is gone: nothing queued for it goes out. A line it cut off mid-sentence
    /// stays in the history, marked as such, as Live does.
    pub(crate) fn disconnected(&mut self) {
        self.state = State::Idle;
        self.outbox.clear();
        if let Some((_, text)) = self.spoken.take()
            && !text.trim().is_empty()
        {
            let text = format!("{} {CUT_OFF_MARKER}", text.trim_end());
            self.remember(serde_json::json!({"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": text}]}));
        } else if self.output_playing {
            // Over WebRTC the transcript runs ahead of the paced audio: the line is whole in
            // the history, but its end was still to be played when the path went.
            self.mark_last_line_cut_off();
        }
        self.output_playing = false;
    }

    /// Appends the cut-off marker to the history's last item if it is an assistant line.
    fn mark_last_line_cut_off(&mut self) {
        let Some(item) = self.history.back_mut() else {
            return;
        };
        if item["role"] != "assistant" {
            return;
        }
        if let Some(text) = item["content"][0]["text"].as_str() {
            let marked = format!("{} {CUT_OFF_MARKER}", text.trim_end());
            item["content"][0]["text"] = serde_json::Value::String(marked);
        }
    }

    /// A piece of the assistant line being spoken; a cut (barged-in) response is not kept.
    fn transcript_delta(&mut self, response_id: String, delta: &str) {
        if self.cut_responses.contains(&response_id) {
            return;
        }
        match &mut self.spoken {
            Some((id, text)) if *id == response_id => {
                let room = SPOKEN_CHARS.saturating_sub(text.chars().count());
                text.extend(delta.chars().take(room));
            }
            _ => self.spoken = Some((response_id, delta.chars().take(SPOKEN_CHARS).collect())),
        }
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<String> {
        self.outbox.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<ModelEvent> {
        self.events.pop_front()
    }

    fn event_id(&mut self) -> String {
        self.next_event += 1;
        format!("bb_evt_{}", self.next_event)
    }
}

fn is_fatal(code: &str) -> bool {
    FATAL_CODES.contains(&code)
}

/// `https://host/v1` -> `wss://host/v1`; `http` -> `ws`.
pub(crate) fn ws_base(base_url: &str) -> String {
    let trimmed = base_url.trim_end_matches('/');
    if let Some(rest) = trimmed.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = trimmed.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        trimmed.to_owned()
    }
}

/// Percent-encodes everything but unreserved characters (URL query values, form values).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session on a WebSocket that has accepted its configuration.
    fn ready_session() -> RealtimeSession {
        let mut session = RealtimeSession::new(&CallConfig::new("sk-test"));
        session.begin_websocket(ModelAudio::Pcmu);
        let now = crate::tests::origin();
        session.handle_opened(now);
        session.handle_text(now, r#"{"type":"session.updated","session":{}}"#);
        assert!(session.is_ready());
        session
    }

    fn server(session: &mut RealtimeSession, event: serde_json::Value) {
        session.handle_text(crate::tests::origin(), &event.to_string());
    }

    fn delta(response_id: &str, text: &str) -> serde_json::Value {
        serde_json::json!({"type": "response.output_audio_transcript.delta",
            "response_id": response_id, "item_id": "item_1", "output_index": 0,
            "content_index": 0, "delta": text})
    }

    fn history_texts(session: &RealtimeSession) -> Vec<String> {
        let text =
            |i: &serde_json::Value| i["content"][0]["text"].as_str().unwrap_or("").to_owned();
        session.history.iter().map(text).collect()
    }

    #[test]
    fn a_line_cut_by_a_lost_socket_is_kept_marked_and_a_whole_one_unmarked() {
        let mut session = ready_session();
        server(&mut session, delta("resp_1", "Your order "));
        server(&mut session, delta("resp_1", "shipped."));
        server(
            &mut session,
            serde_json::json!({"type": "response.output_audio_transcript.done",
                "response_id": "resp_1", "item_id": "item_1", "output_index": 0,
                "content_index": 0, "transcript": "Your order shipped."}),
        );
        server(&mut session, delta("resp_2", "It should arrive "));
        server(&mut session, delta("resp_2", "on Fri"));
        session.disconnected();
        assert_eq!(
            history_texts(&session),
            [
                "Your order shipped.",
                "It should arrive on Fri [cut off: the connection dropped]"
            ]
        );
        // Nothing is carried into the next loss.
        session.disconnected();
        assert_eq!(history_texts(&session).len(), 2);
    }

    #[test]
    fn a_barged_in_line_is_not_kept_and_a_long_one_is_bounded() {
        let mut session = ready_session();
        server(
            &mut session,
            serde_json::json!({"type": "response.created", "response": {"id": "resp_1"}}),
        );
        server(&mut session, delta("resp_1", "Let me"));
        session.interrupted(None, true);
        server(&mut session, delta("resp_1", " check"));
        session.disconnected();
        assert!(history_texts(&session).is_empty());

        let mut session = ready_session();
        for _ in 0..300 {
            server(&mut session, delta("resp_9", "word "));
        }
        session.disconnected();
        let kept = history_texts(&session);
        assert_eq!(kept.len(), 1);
        let marker = format!(" {CUT_OFF_MARKER}");
        let line = kept[0].strip_suffix(&marker).expect("marked");
        assert_eq!(
            line.chars().count(),
            SPOKEN_CHARS - 1,
            "trailing space trimmed"
        );
    }

    #[test]
    fn ws_url_is_ga_with_the_model_and_a_bearer_key() {
        let mut config = CallConfig::new("sk-test");
        config.openai.base_url = "http://127.0.0.1:9000/v1/".to_owned();
        let mut session = RealtimeSession::new(&config);
        let request = session.begin_websocket(ModelAudio::Pcmu);
        assert_eq!(
            request.url,
            "ws://127.0.0.1:9000/v1/realtime?model=gpt-realtime-2.1"
        );
        assert_eq!(
            request.headers,
            vec![("Authorization".to_owned(), "Bearer sk-test".to_owned())]
        );
        assert_eq!(
            ws_base("https://api.openai.com/v1"),
            "wss://api.openai.com/v1"
        );
    }
}
