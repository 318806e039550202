//! What `call_lifecycle` checks after every input: the core's invariants, and a small reference
//! model of the tool-call sequencer (every call handed out gets exactly one output before the
//! call ends, unless the call ended first).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::call::Call;
use crate::config::{Backend, CallConfig, Limits};
use crate::output::{Event, Leg, Output, RequestId};

use super::super::harness::WEBHOOK_URL;
use super::frames;

/// Most outputs one input may produce: the largest burst is a long model audio delta (a frame
/// and part of a mark per 20 ms) or a reconnection replaying the conversation (64 items).
pub(super) const MAX_OUTPUTS_PER_INPUT: usize = 2_000;
/// Mark names remembered for echoes.
const REMEMBERED_MARKS: usize = 64;

/// What the reference model knows of one tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    /// Handed out, no output yet; the core gives up on it at `deadline`.
    Running { deadline: Instant },
    /// Got its one output.
    Done,
    /// The call ended while it ran: it never gets an output.
    Abandoned,
}

/// Names the input in a breach.
struct Ctx<'a> {
    input: u64,
    what: &'a str,
}

impl Ctx<'_> {
    fn fail(&self, msg: String) -> ! {
        panic!(
            "call_lifecycle: input {} ({}): {msg}",
            self.input, self.what
        )
    }
}

/// One of the call's HTTP requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Request {
    /// A tool webhook, for this tool call.
    Webhook(String),
    /// OpenAI's REST API (WebRTC call creation or hang-up).
    Model,
    /// SignalWire's REST API (hang-up, transfer).
    Rest,
}

/// What an input must do, beyond the invariants every input keeps.
#[derive(Debug, Clone, Copy)]
pub(super) enum Expect<'a> {
    /// Nothing in particular.
    Nothing,
    /// The phone socket closed: the call ends at once.
    PhoneClosed,
    /// `handle_timeout`; `before` is what `poll_timeout` said just before it.
    Timeout { before: Option<Instant> },
    /// The application's result for this tool call id.
    ToolResult(&'a str),
    /// The first answer to the webhook request of this tool call id.
    WebhookAnswer(&'a str),
}

/// Watches every output of one call.
#[derive(Debug)]
pub(super) struct Observer {
    limits: Limits,
    local_addrs: Vec<core::net::SocketAddr>,
    base_url: String,
    tool_timeouts: BTreeMap<String, Duration>,
    /// The phone codec's bytes per millisecond, once the stream started.
    bytes_per_ms: usize,
    /// The call is over for the caller (the phone leg closed, `CallEnded`, or both).
    pub(super) ended: bool,
    /// `CallEnded` went out.
    pub(super) finished: bool,
    /// The backend the model leg speaks, as seen from where it connects.
    pub(super) backend: Backend,
    tools: BTreeMap<String, Tool>,
    /// Ids of [`Output::ToolCall`]s, in order.
    pub(super) handed_out: Vec<String>,
    /// HTTP requests not yet answered, and answered ones.
    pub(super) outstanding: Vec<(RequestId, Request)>,
    pub(super) answered: Vec<(RequestId, Request)>,
    /// Marks sent to the phone and not yet echoed, oldest first.
    pub(super) marks: VecDeque<String>,
    /// `function_call_output`s sent per tool call id on the current model connection.
    wire_outputs: BTreeMap<String, u32>,
    inputs: u64,
}

impl Observer {
    pub(super) fn new(config: &CallConfig) -> Self {
        let tool_timeouts = config
            .tools
            .iter()
            .map(|t| {
                let timeout = if t.timeout.is_zero() {
                    config.limits.default_tool_timeout
                } else {
                    t.timeout
                };
                (t.name.clone(), timeout)
            })
            .collect();
        Observer {
            limits: config.limits.clone(),
            local_addrs: config.webrtc.local_addrs.clone(),
            base_url: config.openai.base_url.clone(),
            tool_timeouts,
            bytes_per_ms: 0,
            ended: false,
            finished: false,
            backend: config.backend,
            tools: BTreeMap::new(),
            handed_out: Vec::new(),
            outstanding: Vec::new(),
            answered: Vec::new(),
            marks: VecDeque::new(),
            wire_outputs: BTreeMap::new(),
            inputs: 0,
        }
    }

    /// Whether the reference model has this tool call running.
    pub(super) fn is_running(&self, id: &str) -> bool {
        matches!(self.tools.get(id), Some(Tool::Running { .. }))
    }

    /// Checks what one input produced; `now` is the call's clock after the input.
    ///
    /// # Panics
    /// On any breach, naming the input and the rule.
    pub(super) fn observe(
        &mut self,
        call: &Call,
        what: &str,
        now: Instant,
        outputs: Vec<Output>,
        expect: Expect<'_>,
    ) {
        self.inputs += 1;
        let input = self.inputs;
        let ctx = Ctx { input, what };
        let ended_before = self.ended;
        let finished_before = self.finished;
        let running_before: Vec<(String, Instant)> = self
            .tools
            .iter()
            .filter_map(|(id, t)| match t {
                Tool::Running { deadline } => Some((id.clone(), *deadline)),
                Tool::Done | Tool::Abandoned => None,
            })
            .collect();
        if matches!(expect, Expect::PhoneClosed) {
            self.end();
        }
        if outputs.len() > MAX_OUTPUTS_PER_INPUT {
            ctx.fail(format!("{} outputs from one input", outputs.len()));
        }
        if finished_before && let Some(first) = outputs.first() {
            ctx.fail(format!(
                "an input after CallEnded produced output: {first:?}"
            ));
        }
        let mut completed = BTreeSet::new();
        let mut ignored = BTreeSet::new();
        for output in outputs {
            if self.finished && !matches!(output, Output::Close { .. }) {
                ctx.fail(format!("output after CallEnded: {output:?}"));
            }
            match output {
                Output::Send {
                    leg: Leg::Phone,
                    text,
                } => {
                    if self.ended {
                        ctx.fail(format!("sent to the phone after its socket closed: {text}"));
                    }
                    let value = frames::json(&text);
                    if !value.is_object() {
                        ctx.fail(format!("sent invalid JSON to the phone: {text}"));
                    }
                    if value["event"] == "mark"
                        && let Some(name) = value["mark"]["name"].as_str()
                    {
                        if self.marks.len() >= REMEMBERED_MARKS {
                            self.marks.pop_front();
                        }
                        self.marks.push_back(name.to_owned());
                    }
                }
                Output::Send {
                    leg: Leg::Model,
                    text,
                } => self.model_send(&text, &ctx),
                Output::Close { leg: Leg::Phone } => self.end(),
                Output::Close { leg: Leg::Model } => {}
                Output::Connect(request) => {
                    if self.ended {
                        ctx.fail(format!(
                            "connected to OpenAI after the call ended: {request:?}"
                        ));
                    }
                    self.backend = if request.url.contains("/live/") {
                        Backend::Live
                    } else {
                        Backend::Realtime
                    };
                    // A new session: it is given the conversation, outputs included, once.
                    self.wire_outputs.clear();
                }
                Output::Http { id, request } => {
                    let kind = if request.url == WEBHOOK_URL {
                        let body = serde_json::from_slice::<serde_json::Value>(&request.body)
                            .unwrap_or_default();
                        let Some(call_id) = body["call_id"].as_str() else {
                            ctx.fail(format!("a webhook request without a call_id: {body}"));
                        };
                        if !self.is_running(call_id) {
                            ctx.fail(format!(
                                "a webhook request for tool call {call_id}, not running"
                            ));
                        }
                        Request::Webhook(call_id.to_owned())
                    } else if request.url.starts_with(&self.base_url) {
                        // A WebRTC call creation names the backend, as a WebSocket URL does.
                        if request.url.ends_with("/live/sessions") {
                            self.backend = Backend::Live;
                        } else if request.url.ends_with("/realtime/calls") {
                            self.backend = Backend::Realtime;
                        }
                        Request::Model
                    } else {
                        Request::Rest
                    };
                    self.outstanding.push((id, kind));
                }
                Output::ToolCall(tool_call) => {
                    if self.ended || !self.is_running(&tool_call.id.0) {
                        ctx.fail(format!(
                            "handed out tool call {} that is not running",
                            tool_call.id.0
                        ));
                    }
                    self.handed_out.push(tool_call.id.0);
                }
                Output::Transmit(transmit) => {
                    if !self.local_addrs.contains(&transmit.source) {
                        ctx.fail(format!("a datagram from {}, not ours", transmit.source));
                    }
                }
                Output::Event(event) => {
                    self.event(event, now, &mut completed, &mut ignored, &ctx);
                }
            }
        }
        match expect {
            Expect::ToolResult(id) | Expect::WebhookAnswer(id) => {
                if ended_before {
                    // Nothing happens after the end; the loop above saw no output if finished.
                } else if running_before.iter().any(|(r, _)| r == id) {
                    if !completed.contains(id) || ignored.contains(id) {
                        ctx.fail(format!(
                            "the result for running tool call {id} gave no output"
                        ));
                    }
                } else if !ignored.contains(id) || completed.contains(id) {
                    ctx.fail(format!(
                        "a result for tool call {id}, finished or never handed out, was not \
                         reported as ignored"
                    ));
                }
            }
            Expect::Timeout { before } => {
                let due = before.is_some_and(|d| d <= now);
                if !due && call.poll_timeout() != before {
                    ctx.fail(format!(
                        "handle_timeout before the deadline moved it from {before:?} to {:?}",
                        call.poll_timeout()
                    ));
                }
                if !due && completed.len() + ignored.len() > 0 {
                    ctx.fail("handle_timeout before the deadline completed tool calls".to_owned());
                }
                if call.poll_timeout().is_some_and(|next| next <= now) {
                    ctx.fail(format!(
                        "handle_timeout left the {:?} deadline due",
                        call.next_timer().map(|t| t.1)
                    ));
                }
                if !self.ended {
                    for (id, deadline) in &running_before {
                        if *deadline <= now && !completed.contains(id) {
                            ctx.fail(format!(
                                "tool call {id} passed its deadline without an output"
                            ));
                        }
                    }
                }
            }
            Expect::Nothing | Expect::PhoneClosed => {}
        }
        self.check_state(call, &ctx);
    }

    fn model_send(&mut self, text: &str, ctx: &Ctx<'_>) {
        if text.starts_with(r#"{"type":"input_audio_buffer.append""#)
            || text.starts_with(r#"{"type":"session.input_audio.append""#)
        {
            return;
        }
        let value = frames::json(text);
        let Some(kind) = value["type"].as_str() else {
            ctx.fail(format!("sent OpenAI something without a type: {text}"));
        };
        let output_event = match self.backend {
            Backend::Realtime => "conversation.item.create",
            Backend::Live => "response.item.create",
        };
        if kind != output_event || value["item"]["type"] != "function_call_output" {
            return;
        }
        let id = value["item"]["call_id"].as_str().unwrap_or_default();
        if self.tools.get(id) != Some(&Tool::Done) {
            ctx.fail(format!(
                "sent an output for tool call {id}, which has none: {:?}",
                self.tools.get(id)
            ));
        }
        let count = self.wire_outputs.entry(id.to_owned()).or_default();
        *count += 1;
        if *count > 1 {
            ctx.fail(format!("tool call {id} got {count} outputs on one session"));
        }
    }

    fn event(
        &mut self,
        event: Event,
        now: Instant,
        completed: &mut BTreeSet<String>,
        ignored: &mut BTreeSet<String>,
        ctx: &Ctx<'_>,
    ) {
        match event {
            Event::StreamStarted { codec, .. } => self.bytes_per_ms = codec.bytes_per_ms(),
            Event::ToolCallStarted { id, name, .. } => {
                if self.ended {
                    ctx.fail(format!("tool call {id} handed out after the call ended"));
                }
                if let Some(state) = self.tools.get(&id) {
                    ctx.fail(format!(
                        "tool call {id} handed out again (it was {state:?})"
                    ));
                }
                let timeout = self
                    .tool_timeouts
                    .get(&name)
                    .copied()
                    .unwrap_or(Duration::ZERO);
                self.tools.insert(
                    id,
                    Tool::Running {
                        deadline: now + timeout,
                    },
                );
            }
            Event::ToolCallCompleted { id, timed_out, .. } => {
                if self.ended {
                    ctx.fail(format!("tool call {id} completed after the call ended"));
                }
                match self.tools.get(&id) {
                    Some(Tool::Running { deadline }) => {
                        if timed_out && now < *deadline {
                            ctx.fail(format!("tool call {id} timed out before its deadline"));
                        }
                    }
                    other => ctx.fail(format!("tool call {id} completed while {other:?}")),
                }
                self.tools.insert(id.clone(), Tool::Done);
                completed.insert(id);
            }
            Event::ToolResultIgnored { id } => {
                ignored.insert(id);
            }
            Event::CallEnded { .. } => {
                self.end();
                self.finished = true;
            }
            Event::ModelReady { .. }
            | Event::Fallback { .. }
            | Event::ModelReconnecting { .. }
            | Event::ModelSessionRollover
            | Event::UplinkFec { .. }
            | Event::FirstAudioToCaller
            | Event::BargeIn { .. }
            | Event::Transcript { .. }
            | Event::CallerDtmf { .. }
            | Event::DtmfSent { .. }
            | Event::Usage { .. }
            | Event::BilledSeconds { .. }
            | Event::ModelSessionClosed { .. }
            | Event::ModelError { .. }
            | Event::BadInput { .. }
            | Event::Overloaded { .. }
            | Event::HangupRequested => {}
        }
    }

    /// The call is over for the caller: running tool calls never get an output.
    fn end(&mut self) {
        self.ended = true;
        for state in self.tools.values_mut() {
            if matches!(state, Tool::Running { .. }) {
                *state = Tool::Abandoned;
            }
        }
    }

    fn check_state(&self, call: &Call, ctx: &Ctx<'_>) {
        if call.end_reason().is_some() != self.finished {
            ctx.fail(format!(
                "end_reason is {:?} but CallEnded {} out",
                call.end_reason(),
                if self.finished { "went" } else { "did not go" }
            ));
        }
        let limits = &self.limits;
        let (held, marks, tools, digits) = call.queue_lengths();
        let held_cap = limits.held_audio.as_millis() as usize * self.bytes_per_ms;
        if held > held_cap {
            ctx.fail(format!(
                "{held} bytes of caller audio held, over {held_cap}"
            ));
        }
        if marks > limits.max_outstanding_marks.max(1) {
            ctx.fail(format!(
                "{marks} marks pending, over {}",
                limits.max_outstanding_marks
            ));
        }
        if tools > limits.max_running_tools {
            ctx.fail(format!(
                "{tools} tools running, over {}",
                limits.max_running_tools
            ));
        }
        if digits > limits.max_dtmf_digits {
            ctx.fail(format!(
                "{digits} digits held, over {}",
                limits.max_dtmf_digits
            ));
        }
        let running = self
            .tools
            .values()
            .filter(|t| matches!(t, Tool::Running { .. }))
            .count();
        if tools != running {
            ctx.fail(format!(
                "the core runs {tools} tool calls, the reference model {running}"
            ));
        }
    }
}
