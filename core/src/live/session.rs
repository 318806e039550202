//! The Live session's protocol state, whatever transport carries it: the start configuration,
//! tool calls through Responses delegation, transcripts grouped into turns, usage and errors.
//!
//! Tool sequencing: a nested backend response may hold several function calls. Each call gets
//! exactly one `response.item.create` output (a repeated call id is dropped); once that response
//! has ended and every call it held has its output, one `response.create` continues the
//! backend. The backend is "busy" from a call's arrival until the continued response ends.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::config::{CallConfig, ToolSpec};
use crate::live::events::{self, BackendEvent, LiveAudioFormat, LiveSettings, ServerEvent};
use crate::model::{CUT_OFF_MARKER, ModelEvent};
use crate::output::Role;
use crate::tools::builtins;

/// A transcript turn ends after this long without a fragment from the same side.
const TURN_GAP: Duration = Duration::from_millis(1500);
/// Tool call ids remembered to drop duplicates.
const REMEMBERED_CALL_IDS: usize = 256;
/// Longest transcript turn kept, in bytes; the rest of a runaway turn is dropped.
const MAX_TURN_BYTES: usize = 16 * 1024;
/// Turns a new session is given after a transport change (the API takes at most 128).
const HISTORY_TURNS: usize = 32;
/// Longest turn given to a new session, in characters.
const HISTORY_TURN_CHARS: usize = 1000;

/// Error codes after which the session cannot go on.
const FATAL_CODES: [&str; 5] = [
    "invalid_api_key",
    "insufficient_quota",
    "account_deactivated",
    "billing_hard_limit_reached",
    "missing_authorization",
];

#[derive(Debug)]
struct Turn {
    role: Role,
    text: String,
    last: Instant,
}

/// Protocol state of one Live session.
#[derive(Debug)]
pub(crate) struct LiveSession {
    model: String,
    voice: String,
    instructions: String,
    delegation_model: String,
    delegation_instructions: String,
    greeting: String,
    tools: Vec<ToolSpec>,
    next_event: u64,
    started: bool,
    closed: bool,
    /// Calls handed out that have no output yet.
    open_calls: BTreeSet<String>,
    seen_calls: VecDeque<String>,
    /// A backend response with calls ended: continue it once `open_calls` is empty.
    continue_pending: bool,
    /// `response.create` went out and its response has not ended.
    continuing: bool,
    /// The backend response now streaming has handed out calls.
    calls_in_response: bool,
    turn: Option<Turn>,
    /// Finished turns, for a new session after a transport change: who, what, and whether the
    /// lost connection cut it off mid-sentence.
    history: VecDeque<(Role, String, bool)>,
    /// The next `session.start` replaces a session that was lost: give it the history.
    replacing: bool,
    texts: VecDeque<String>,
    events: VecDeque<ModelEvent>,
}

impl LiveSession {
    pub(crate) fn new(config: &CallConfig) -> Self {
        let mut tools = config.tools.clone();
        tools.extend(builtins::specs(config.builtins));
        LiveSession {
            model: config.live.model.clone(),
            voice: config.openai.voice.clone(),
            instructions: String::new(),
            delegation_model: config.live.delegation_model.clone(),
            delegation_instructions: config.live.delegation_instructions.clone(),
            greeting: config.live.greeting.clone(),
            tools,
            next_event: 0,
            started: false,
            closed: false,
            open_calls: BTreeSet::new(),
            seen_calls: VecDeque::new(),
            continue_pending: false,
            continuing: false,
            calls_in_response: false,
            turn: None,
            history: VecDeque::new(),
            replacing: false,
            texts: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The voice model's instructions; tool fillers are added as things it may say while a
    /// request runs, since the voice keeps talking while the backend works.
    pub(crate) fn set_instructions(&mut self, instructions: String) {
        let mut text = instructions;
        for tool in &self.tools {
            if let Some(filler) = &tool.filler {
                text.push_str(&format!(
                    "\nWhile a request that needs {} runs, you may say: \"{filler}\"",
                    tool.name
                ));
            }
        }
        self.instructions = text;
    }

    fn event_id(&mut self, prefix: &str) -> String {
        self.next_event += 1;
        format!("{prefix}-{}", self.next_event)
    }

    /// The session settings; `format` is `None` over WebRTC.
    pub(crate) fn settings(&self, format: Option<LiveAudioFormat>) -> LiveSettings<'_> {
        LiveSettings {
            model: &self.model,
            instructions: &self.instructions,
            voice: &self.voice,
            format,
            delegation_model: &self.delegation_model,
            delegation_instructions: &self.delegation_instructions,
            tools: &self.tools,
        }
    }

    /// Queues `session.start` (WebSocket only). A session replacing a lost one starts with the
    /// conversation so far as its `input`.
    pub(crate) fn start(&mut self, format: LiveAudioFormat) {
        let id = self.event_id("start");
        let mut session = events::session_object(&self.settings(Some(format)));
        if self.replacing && !self.history.is_empty() {
            let input: Vec<serde_json::Value> = self
                .history
                .iter()
                .map(|(role, text, cut)| {
                    let mut text: String = text.chars().take(HISTORY_TURN_CHARS).collect();
                    if *cut {
                        text.push(' ');
                        text.push_str(CUT_OFF_MARKER);
                    }
                    match role {
                        Role::Caller => serde_json::json!({"type": "message", "role": "user",
                            "content": [{"type": "input_text", "text": text}]}),
                        Role::Assistant => {
                            serde_json::json!({"type": "message", "role": "assistant",
                            "content": [{"type": "output_text", "text": text}]})
                        }
                    }
                })
                .collect();
            session["input"] = serde_json::Value::Array(input);
        }
        let start =
            serde_json::json!({"type": "session.start", "event_id": id, "session": session});
        self.texts.push_back(start.to_string());
    }

    /// The transport was lost before the session ended: the next one is a new session.
    pub(crate) fn new_connection(&mut self) {
        self.flush_turn(true);
        self.started = false;
        self.closed = false;
        self.open_calls.clear();
        self.continue_pending = false;
        self.continuing = false;
        self.calls_in_response = false;
        self.texts.clear();
        self.replacing = true;
    }

    pub(crate) fn is_started(&self) -> bool {
        self.started && !self.closed
    }

    /// Whether the backend is working on a request (tools running or being continued).
    pub(crate) fn backend_busy(&self) -> bool {
        !self.open_calls.is_empty() || self.continue_pending || self.continuing
    }

    /// Tells the model to greet the caller.
    pub(crate) fn greet(&mut self) {
        let greeting = self.greeting.clone();
        self.append_instructions(&greeting);
    }

    /// Trusted context for the model (the caller's keypad digits), which may interrupt it.
    pub(crate) fn append_instructions(&mut self, text: &str) {
        if !self.is_started() {
            return;
        }
        let id = self.event_id("instr");
        self.texts.push_back(events::instructions_append(&id, text));
    }

    /// A tool's output; continues the backend once its response has all of them.
    pub(crate) fn tool_output(&mut self, call_id: &str, output: &str) {
        if !self.open_calls.remove(call_id) || self.closed {
            return;
        }
        let id = self.event_id("out");
        self.texts
            .push_back(events::function_call_output(&id, call_id, output));
        self.maybe_continue();
    }

    fn maybe_continue(&mut self) {
        if self.continue_pending && self.open_calls.is_empty() {
            self.continue_pending = false;
            self.continuing = true;
            let id = self.event_id("cont");
            self.texts.push_back(events::response_create(&id));
        }
    }

    /// Queues `session.close`; false when there is no session to close.
    pub(crate) fn close(&mut self) -> bool {
        if !self.started || self.closed {
            return false;
        }
        self.closed = true;
        let id = self.event_id("close");
        self.texts.push_back(events::session_close(&id));
        true
    }

    /// One parsed server event. `now` times transcript turns.
    pub(crate) fn handle_event(&mut self, now: Instant, event: ServerEvent) {
        match event {
            ServerEvent::SessionStarted { .. } => {
                if !self.started {
                    self.started = true;
                    self.events.push_back(ModelEvent::Ready);
                }
            }
            ServerEvent::InputTranscript(f) => self.fragment(now, Role::Caller, &f.delta),
            ServerEvent::OutputTranscript(f) => self.fragment(now, Role::Assistant, &f.delta),
            ServerEvent::Backend { event, .. } => self.backend(event),
            ServerEvent::Usage { seconds } => {
                if let Some(seconds) = seconds {
                    self.events.push_back(ModelEvent::BilledSeconds(seconds));
                }
            }
            ServerEvent::Closed { reason, seconds } => {
                self.flush_turn(false);
                self.closed = true;
                self.open_calls.clear();
                self.events.push_back(ModelEvent::SessionClosed {
                    reason,
                    billed_seconds: seconds,
                });
            }
            ServerEvent::Error { code, message } => {
                // An error before `session.started` means there is no session.
                let fatal = !self.started || code.as_deref().is_some_and(is_fatal);
                self.events.push_back(ModelEvent::Error {
                    code,
                    message,
                    fatal,
                });
            }
            ServerEvent::DelegationCreated { .. } | ServerEvent::OutputAudio(_) => {}
            ServerEvent::Ignored => {}
        }
    }

    fn backend(&mut self, event: BackendEvent) {
        match event {
            BackendEvent::FunctionCall {
                call_id,
                name,
                arguments,
            } => {
                if self.closed || self.seen_calls.contains(&call_id) {
                    return;
                }
                if self.seen_calls.len() >= REMEMBERED_CALL_IDS {
                    self.seen_calls.pop_front();
                }
                self.seen_calls.push_back(call_id.clone());
                self.open_calls.insert(call_id.clone());
                self.calls_in_response = true;
                self.events.push_back(ModelEvent::ToolCall {
                    call_id,
                    name,
                    arguments,
                });
            }
            BackendEvent::Ended { .. } => {
                self.continuing = false;
                // The response that held calls is over: continue it once they all have outputs.
                if std::mem::take(&mut self.calls_in_response) {
                    self.continue_pending = true;
                }
                self.maybe_continue();
            }
            BackendEvent::Other => {}
        }
    }

    fn fragment(&mut self, now: Instant, role: Role, delta: &str) {
        if self.turn.as_ref().is_some_and(|t| t.role != role) {
            self.flush_turn(false);
        }
        let turn = self.turn.get_or_insert_with(|| Turn {
            role,
            text: String::new(),
            last: now,
        });
        if turn.text.len() + delta.len() <= MAX_TURN_BYTES {
            // Fragments carry their own spacing, except where one utterance ends and the next
            // begins inside the same turn.
            let sentence_ended = turn.text.ends_with(['.', '!', '?']);
            if sentence_ended && delta.starts_with(|c: char| c.is_alphanumeric()) {
                turn.text.push(' ');
            }
            turn.text.push_str(delta);
        }
        turn.last = now;
    }

    /// Ends the open turn. `lost`: the connection died during it, so a line that stops
    /// mid-sentence was cut off, and the next session is told so rather than handed it as if
    /// it were whole.
    fn flush_turn(&mut self, lost: bool) {
        if let Some(turn) = self.turn.take() {
            let text = turn.text.trim();
            if !text.is_empty() {
                if self.history.len() >= HISTORY_TURNS {
                    self.history.pop_front();
                }
                let cut = lost && !text.ends_with(['.', '!', '?']);
                self.history.push_back((turn.role, text.to_owned(), cut));
                self.events.push_back(ModelEvent::Transcript {
                    role: turn.role,
                    text: text.to_owned(),
                });
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.turn.as_ref().map(|t| t.last + TURN_GAP)
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.turn.as_ref().is_some_and(|t| now >= t.last + TURN_GAP) {
            self.flush_turn(false);
        }
    }

    /// Ends the last transcript turn (the call is ending).
    pub(crate) fn finish(&mut self) {
        self.flush_turn(false);
    }

    pub(crate) fn poll_text(&mut self) -> Option<String> {
        self.texts.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<ModelEvent> {
        self.events.pop_front()
    }
}

fn is_fatal(code: &str) -> bool {
    FATAL_CODES.contains(&code)
}
