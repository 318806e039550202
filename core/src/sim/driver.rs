//! The simulation driver: one `Call`, a fake caller, a fake OpenAI (Realtime, its WebRTC peer, or
//! Live, picked by the URL the call connects to) and scripted tools, joined by
//! links with latency, all on a virtual clock that always steps to the earliest event.
//!
//! After every step it checks the core's invariants and panics with the seed on a breach:
//! nothing is sent after the call ended, a timeout always moves the deadline forward, queues stay
//! within their caps, a truncate never claims more than the caller heard, and no tool call gets
//! two outputs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::call::{Call, WsMessage};
use crate::config::CallConfig;
use crate::config::TransportChoice;
use crate::output::Transmit;
use crate::output::{
    ConnectRequest, Event, HttpRequest, HttpResponse, Leg, Output, RequestId, ToolAction, ToolCall,
    ToolCallId, ToolResult, TransportFailure,
};
use crate::sim::fake_caller::{CallerOutput, CallerReport, CallerScript, FakeCaller};
use crate::sim::fake_live::{FakeLive, LiveReport, LiveScript};
use crate::sim::fake_realtime::{FakeRealtime, FakeServerOutput, RealtimeReport, RealtimeScript};
use crate::sim::fake_webrtc::{FakeRealtimeWebRtc, WebRtcFakeMode, WebRtcReport};
use crate::sim::net::{NetParams, SimNet};

/// How a scripted tool answers.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolBehaviour {
    /// Answers once after `delay`.
    Reply {
        /// Time to answer.
        delay: Duration,
        /// The output.
        output: String,
        /// The action.
        action: ToolAction,
    },
    /// Answers twice (a retried webhook).
    ReplyTwice {
        /// Time to the first answer.
        delay: Duration,
        /// Time from the first to the second answer.
        again_after: Duration,
        /// The output.
        output: String,
    },
    /// Never answers.
    Never,
}

/// A scripted application tool.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedTool {
    /// Function name.
    pub name: String,
    /// How it answers.
    pub behaviour: ToolBehaviour,
}

/// A call into the [`Call`] under test, as a probe sees it (see [`Sim::with_probe`]).
#[derive(Debug, Clone, Copy)]
pub enum ProbeEvent<'a> {
    /// The driver is about to call into the call.
    Enter(ProbeCall<'a>),
    /// The call returned; `Some` with what `poll_output` gave back.
    Leave(Option<&'a Output>),
}

/// Which method of the call the driver enters, with the input it feeds.
#[derive(Debug, Clone, Copy)]
pub enum ProbeCall<'a> {
    /// `Call::new`.
    New,
    /// `handle_ws_message` on the phone leg.
    PhoneText(&'a str),
    /// `handle_ws_message` on the model leg.
    ModelText(&'a str),
    /// `handle_udp`.
    Udp(&'a [u8]),
    /// `handle_timeout`.
    Timeout,
    /// Any other input: a socket opened or closed, an HTTP answer, a tool result.
    Other,
    /// `poll_output`.
    PollOutput,
    /// `poll_timeout`.
    PollTimeout,
}

/// A closure called around every call into the [`Call`]: a benchmark reads its own clock there
/// (the core and the driver never do). Not called for the invariant checks.
pub type Probe = Box<dyn FnMut(ProbeEvent<'_>) + Send>;

struct ProbeSlot(Option<Probe>);

impl std::fmt::Debug for ProbeSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Probe" } else { "NoProbe" })
    }
}

impl ProbeSlot {
    fn enter(&mut self, call: ProbeCall<'_>) {
        if let Some(probe) = self.0.as_mut() {
            probe(ProbeEvent::Enter(call));
        }
    }

    fn leave(&mut self, output: Option<&Output>) {
        if let Some(probe) = self.0.as_mut() {
            probe(ProbeEvent::Leave(output));
        }
    }
}

/// Everything a simulated call is made of.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seeds the call.
    pub seed: u64,
    /// The bridge's configuration.
    pub call: CallConfig,
    /// The caller's script.
    pub caller: CallerScript,
    /// The fake OpenAI's script.
    pub openai: RealtimeScript,
    /// The fake OpenAI Live server's script (calls on the Live backend).
    pub live: LiveScript,
    /// Tools the application answers.
    pub tools: Vec<ScriptedTool>,
    /// One-way latency between SignalWire and the bridge.
    pub phone_latency: Duration,
    /// One-way latency between the bridge and OpenAI.
    pub model_latency: Duration,
    /// Time for the OpenAI WebSocket handshake.
    pub connect_latency: Duration,
    /// Time for an HTTP request to be answered.
    pub http_latency: Duration,
    /// Clock jumps seen by the call only: from the given sim time on, the call's clock is
    /// shifted by the given milliseconds (negative: backwards).
    pub call_clock_jumps: Vec<(Duration, i64)>,
    /// How the fake OpenAI WebRTC peer behaves.
    pub webrtc: WebRtcFakeMode,
    /// The UDP path between the bridge and OpenAI, both ways.
    pub net: NetParams,
    /// The UDP path drops everything from this time, until the second (or for good).
    pub partition: Option<(Duration, Option<Duration>)>,
}

fn bridge_udp() -> core::net::SocketAddr {
    core::net::SocketAddr::from(([127, 0, 0, 1], 40_000))
}

fn openai_udp() -> core::net::SocketAddr {
    core::net::SocketAddr::from(([127, 0, 0, 2], 3_478))
}

impl SimConfig {
    /// A call over the WebSocket transport with default scripts and realistic latencies.
    pub fn new(seed: u64) -> Self {
        let mut call = CallConfig::new("sk-sim-key");
        call.transport = TransportChoice::WebSocket;
        SimConfig {
            seed,
            call,
            caller: CallerScript::default(),
            openai: RealtimeScript::default(),
            live: LiveScript::default(),
            tools: Vec::new(),
            phone_latency: Duration::from_millis(15),
            model_latency: Duration::from_millis(30),
            connect_latency: Duration::from_millis(90),
            http_latency: Duration::from_millis(80),
            call_clock_jumps: Vec::new(),
            webrtc: WebRtcFakeMode::default(),
            net: NetParams::default(),
            partition: None,
        }
    }
}

#[derive(Debug, Clone)]
enum Delivery {
    PhoneText(String),
    PhoneClosed,
    ModelText(String),
    ModelOpened,
    ModelClosed,
    ToolResult(ToolCallId, ToolResult),
    Http(RequestId, Result<HttpResponse, TransportFailure>),
    ToCaller(String),
    CallerClosed,
    OpenAiConnect(ConnectRequest),
    ToOpenAi(String),
    OpenAiClosed,
}

/// A whole call on a virtual clock.
#[derive(Debug)]
pub struct Sim {
    config: SimConfig,
    base: Instant,
    now: Instant,
    call: Call,
    caller: FakeCaller,
    openai: FakeRealtime,
    openai_connected: bool,
    earlier_openai: Vec<RealtimeReport>,
    earlier_live: Vec<LiveReport>,
    live: FakeLive,
    live_connected: bool,
    /// Which fake the model WebSocket was last opened to.
    model_peer: ModelPeer,
    phone_audio_sent_ms: f64,
    openai_rtc: FakeRealtimeWebRtc,
    to_openai: SimNet<Transmit>,
    to_bridge: SimNet<Transmit>,
    queue: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    trace: Vec<(Duration, Event)>,
    tool_calls: Vec<(Duration, ToolCall)>,
    http_requests: Vec<(Duration, HttpRequest)>,
    model_events_sent: Vec<(Duration, String)>,
    outputs_per_input_max: usize,
    ended_at: Option<Duration>,
    tool_outputs_sent: BTreeMap<String, u32>,
    steps: u64,
    steps_at_now: u64,
    probe: ProbeSlot,
}

/// The fake on the other end of the model WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelPeer {
    /// `…/v1/realtime`.
    Realtime,
    /// `…/live/sessions`.
    Live,
}

impl ModelPeer {
    /// The fake a handshake URL reaches: Live for a `/live/sessions` path (whatever the query).
    fn of_url(url: &str) -> ModelPeer {
        let path = url.split(['?', '#']).next().unwrap_or_default();
        if path.ends_with("/live/sessions") {
            ModelPeer::Live
        } else {
            ModelPeer::Realtime
        }
    }
}

/// Where scripted tools answer webhooks: `{TOOL_WEBHOOK_BASE}{name}`.
pub const TOOL_WEBHOOK_BASE: &str = "http://tools.sim/";

/// Most outputs one input may produce.
const MAX_OUTPUTS_PER_INPUT: usize = 20_000;
/// Steps at one instant before the driver calls it a livelock.
const MAX_STEPS_AT_ONE_INSTANT: u64 = 200_000;

impl Sim {
    /// Builds the call and its peers at virtual time zero, which is `origin`: any instant the
    /// caller picks (the core reads no clock); every time in the simulation is `origin` plus a
    /// virtual offset, so the run does not depend on it.
    ///
    /// # Panics
    /// When the call configuration is invalid (a test bug).
    pub fn new(origin: Instant, config: SimConfig) -> Sim {
        Sim::build(origin, config, ProbeSlot(None))
    }

    /// Like [`Sim::new`], with `probe` called around every call into the call, `Call::new`
    /// included.
    ///
    /// # Panics
    /// When the call configuration is invalid (a test bug).
    pub fn with_probe(origin: Instant, config: SimConfig, probe: Probe) -> Sim {
        Sim::build(origin, config, ProbeSlot(Some(probe)))
    }

    fn build(base: Instant, mut config: SimConfig, mut probe: ProbeSlot) -> Sim {
        // str0m makes its non-crypto choices with fastrand: seed it for repeatable timings.
        fastrand::seed(config.seed);
        // The WebRTC endpoint's Live sessions follow the Live script unless told otherwise.
        if config.webrtc.live_script.is_none() {
            config.webrtc.live_script = Some(config.live.clone());
        }
        if config.call.transport != TransportChoice::WebSocket
            && config.call.webrtc.local_addrs.is_empty()
        {
            config.call.webrtc.local_addrs = vec![bridge_udp()];
        }
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&config.seed.to_le_bytes());
        probe.enter(ProbeCall::New);
        let call = Call::new(
            config.call.clone(),
            seed,
            base,
            Duration::from_secs(1_790_000_000),
        )
        .expect("the simulation's call configuration is valid");
        probe.leave(None);
        let caller = FakeCaller::new(config.caller.clone(), base);
        let mut openai = FakeRealtime::new(config.openai.clone());
        openai.set_origin(base);
        let mut live = FakeLive::new(config.live.clone());
        live.set_origin(base);
        let mut openai_rtc =
            FakeRealtimeWebRtc::new(config.openai.clone(), config.webrtc.clone(), openai_udp());
        openai_rtc.set_origin(base);
        let mut to_openai = SimNet::new(config.seed ^ 0x5eed_0001, config.net);
        let mut to_bridge = SimNet::new(config.seed ^ 0x5eed_0002, config.net);
        if let Some((from, until)) = config.partition {
            for net in [&mut to_openai, &mut to_bridge] {
                net.partition(base + from, until.map(|u| base + u));
            }
        }
        let mut sim = Sim {
            config,
            base,
            now: base,
            call,
            caller,
            openai,
            openai_connected: false,
            earlier_openai: Vec::new(),
            earlier_live: Vec::new(),
            live,
            live_connected: false,
            model_peer: ModelPeer::Realtime,
            phone_audio_sent_ms: 0.0,
            openai_rtc,
            to_openai,
            to_bridge,
            queue: BTreeMap::new(),
            seq: 0,
            trace: Vec::new(),
            tool_calls: Vec::new(),
            http_requests: Vec::new(),
            model_events_sent: Vec::new(),
            outputs_per_input_max: 0,
            ended_at: None,
            tool_outputs_sent: BTreeMap::new(),
            steps: 0,
            steps_at_now: 0,
            probe,
        };
        sim.drain_peers();
        sim
    }

    /// Virtual time since the start.
    pub fn now(&self) -> Duration {
        self.now - self.base
    }

    /// Every event the call reported, with its virtual time.
    pub fn trace(&self) -> &[(Duration, Event)] {
        &self.trace
    }

    /// The trace as text lines, for determinism checks.
    pub fn trace_lines(&self) -> Vec<String> {
        self.trace
            .iter()
            .map(|(at, e)| format!("{:>9.3} {e:?}", at.as_secs_f64()))
            .collect()
    }

    /// What the caller heard and saw.
    pub fn caller(&self) -> &CallerReport {
        self.caller.report()
    }

    /// Reports of earlier Realtime WebSocket connections, when the call reconnected.
    pub fn earlier_openai(&self) -> &[RealtimeReport] {
        &self.earlier_openai
    }

    /// Reports of earlier Live WebSocket connections, when the call reconnected.
    pub fn earlier_live(&self) -> &[LiveReport] {
        &self.earlier_live
    }

    /// What the fake OpenAI received and did (its latest connection).
    pub fn openai(&self) -> &RealtimeReport {
        self.openai.report()
    }

    /// What the fake OpenAI Live server received and did.
    pub fn live(&self) -> &LiveReport {
        self.live.report()
    }

    /// Milliseconds of audio the call sent the caller in `media` messages so far. Less what
    /// the caller heard ([`CallerReport::heard`]), it is what waits in the caller's playback
    /// queue or on the wire.
    pub fn phone_audio_sent_ms(&self) -> f64 {
        self.phone_audio_sent_ms
    }

    /// What the fake OpenAI WebRTC peer saw and did.
    pub fn openai_webrtc(&self) -> WebRtcReport {
        self.openai_rtc.report()
    }

    /// Changes the UDP path, both ways, from now on.
    pub fn set_net(&mut self, params: NetParams) {
        self.to_openai.set_params(params);
        self.to_bridge.set_params(params);
    }

    /// The call under test.
    pub fn call(&self) -> &Call {
        &self.call
    }

    /// Tool calls handed to the application.
    pub fn tool_calls(&self) -> &[(Duration, ToolCall)] {
        &self.tool_calls
    }

    /// HTTP requests the call made.
    pub fn http_requests(&self) -> &[(Duration, HttpRequest)] {
        &self.http_requests
    }

    /// Client events the call sent to OpenAI, audio appends left out.
    pub fn model_events_sent(&self) -> &[(Duration, String)] {
        &self.model_events_sent
    }

    /// When the call ended.
    pub fn ended_at(&self) -> Option<Duration> {
        self.ended_at
    }

    /// The first traced event matching `pred`.
    pub fn first(&self, pred: impl Fn(&Event) -> bool) -> Option<(Duration, &Event)> {
        self.trace
            .iter()
            .find(|(_, e)| pred(e))
            .map(|(t, e)| (*t, e))
    }

    /// Every traced event matching `pred`.
    pub fn all(&self, pred: impl Fn(&Event) -> bool) -> Vec<(Duration, &Event)> {
        self.trace
            .iter()
            .filter(|(_, e)| pred(e))
            .map(|(t, e)| (*t, e))
            .collect()
    }

    /// The most outputs a single input produced.
    pub fn outputs_per_input_max(&self) -> usize {
        self.outputs_per_input_max
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Delivers a raw frame from SignalWire to the call at virtual time `at`.
    pub fn inject_phone_text(&mut self, at: Duration, text: &str) {
        let when = self.base + at;
        self.schedule_at(when, Delivery::PhoneText(text.to_owned()));
    }

    /// Delivers a raw frame from OpenAI to the call at virtual time `at`.
    pub fn inject_model_text(&mut self, at: Duration, text: &str) {
        let when = self.base + at;
        self.schedule_at(when, Delivery::ModelText(text.to_owned()));
    }

    /// Runs until `pred` holds or virtual time passes `limit`; returns whether `pred` held.
    pub fn run_until(&mut self, limit: Duration, mut pred: impl FnMut(&Sim) -> bool) -> bool {
        loop {
            if pred(self) {
                return true;
            }
            if self.now() > limit || !self.step() {
                return pred(self);
            }
        }
    }

    /// Runs until the call has ended and nothing is in flight, or until `limit`.
    pub fn run_to_end(&mut self, limit: Duration) {
        self.run_until(limit, |s| s.ended_at.is_some() && s.queue.is_empty());
    }

    /// Takes one step: the earliest delivery or timer. Returns false when nothing is left.
    pub fn step(&mut self) -> bool {
        let delivery_at = self.queue.keys().next().map(|(at, _)| *at);
        let up_at = self.to_openai.next_delivery();
        let down_at = self.to_bridge.next_delivery();
        self.probe.enter(ProbeCall::PollTimeout);
        let call_at = self.call.poll_timeout();
        self.probe.leave(None);
        let call_at = call_at.map(|t| self.call_to_sim(t));
        let caller_at = self.caller.poll_timeout();
        let openai_at = if self.openai_connected {
            self.openai.poll_timeout()
        } else {
            None
        };
        let live_at = if self.live_connected {
            self.live.poll_timeout()
        } else {
            None
        };
        let rtc_at = self.openai_rtc.poll_timeout();
        let Some(next) = [
            delivery_at,
            up_at,
            down_at,
            call_at,
            caller_at,
            openai_at,
            live_at,
            rtc_at,
        ]
        .into_iter()
        .flatten()
        .min() else {
            return false;
        };
        self.advance(next);
        if delivery_at == Some(next) {
            if let Some((_, delivery)) = self.queue.pop_first() {
                self.deliver(delivery);
            }
        } else if up_at == Some(next) {
            if let Some(t) = self.to_openai.poll_delivery(self.now) {
                self.openai_rtc
                    .handle_udp(self.now, t.source, t.destination, &t.contents);
            }
        } else if down_at == Some(next) {
            if let Some(t) = self.to_bridge.poll_delivery(self.now) {
                let call_now = self.sim_to_call(self.now);
                self.probe.enter(ProbeCall::Udp(&t.contents));
                self.call
                    .handle_udp(call_now, t.source, t.destination, &t.contents);
                self.probe.leave(None);
                self.drain_call();
            }
        } else if call_at == Some(next) {
            let call_now = self.sim_to_call(self.now);
            self.probe.enter(ProbeCall::Timeout);
            self.call.handle_timeout(call_now);
            self.probe.leave(None);
            self.drain_call();
            self.probe.enter(ProbeCall::PollTimeout);
            let after = self.call.poll_timeout();
            self.probe.leave(None);
            if let Some(after) = after {
                assert!(
                    after > call_now,
                    "seed {}: handle_timeout at {:?} left the {:?} deadline due",
                    self.config.seed,
                    self.now(),
                    self.call.next_timer().map(|t| t.1)
                );
            }
        } else if caller_at == Some(next) {
            self.caller.handle_timeout(self.now);
        } else if openai_at == Some(next) {
            self.openai.handle_timeout(self.now);
        } else if live_at == Some(next) {
            self.live.handle_timeout(self.now);
        } else {
            self.openai_rtc.handle_timeout(self.now);
        }
        self.drain_peers();
        self.check_invariants();
        true
    }

    fn advance(&mut self, to: Instant) {
        if to > self.now {
            self.now = to;
            self.steps_at_now = 0;
        }
        self.steps += 1;
        self.steps_at_now += 1;
        assert!(
            self.steps_at_now < MAX_STEPS_AT_ONE_INSTANT,
            "seed {}: livelock at {:?}",
            self.config.seed,
            self.now()
        );
    }

    /// The call's clock: the sim clock shifted by the configured jumps.
    fn offset_ms(&self) -> i64 {
        let now = self.now();
        self.config
            .call_clock_jumps
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|(_, ms)| *ms)
            .sum()
    }

    fn sim_to_call(&self, t: Instant) -> Instant {
        let offset = self.offset_ms();
        if offset >= 0 {
            t + Duration::from_millis(offset as u64)
        } else {
            t.checked_sub(Duration::from_millis(offset.unsigned_abs()))
                .unwrap_or(self.base)
                .max(self.base)
        }
    }

    fn call_to_sim(&self, t: Instant) -> Instant {
        let offset = self.offset_ms();
        if offset >= 0 {
            t.checked_sub(Duration::from_millis(offset as u64))
                .unwrap_or(self.base)
                .max(self.base)
        } else {
            t + Duration::from_millis(offset.unsigned_abs())
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        let call_now = self.sim_to_call(self.now);
        // Deliveries to the call fall through to `drain_call`; those to a peer return early.
        let probed = match &delivery {
            Delivery::PhoneText(text) => Some(ProbeCall::PhoneText(text)),
            Delivery::ModelText(text) => Some(ProbeCall::ModelText(text)),
            Delivery::PhoneClosed
            | Delivery::ModelOpened
            | Delivery::ModelClosed
            | Delivery::ToolResult(..)
            | Delivery::Http(..) => Some(ProbeCall::Other),
            Delivery::ToCaller(_)
            | Delivery::CallerClosed
            | Delivery::OpenAiConnect(_)
            | Delivery::ToOpenAi(_)
            | Delivery::OpenAiClosed => None,
        };
        if let Some(call) = probed {
            self.probe.enter(call);
        }
        match delivery {
            Delivery::PhoneText(text) => {
                self.call
                    .handle_ws_message(call_now, Leg::Phone, WsMessage::Text(&text));
            }
            Delivery::PhoneClosed => self.call.handle_ws_closed(call_now, Leg::Phone),
            Delivery::ModelText(text) => {
                self.call
                    .handle_ws_message(call_now, Leg::Model, WsMessage::Text(&text));
            }
            Delivery::ModelOpened => self.call.handle_ws_opened(call_now, Leg::Model),
            Delivery::ModelClosed => self.call.handle_ws_closed(call_now, Leg::Model),
            Delivery::ToolResult(id, result) => self.call.handle_tool_result(call_now, &id, result),
            Delivery::Http(id, response) => self.call.handle_http_response(call_now, id, response),
            Delivery::ToCaller(text) => {
                // A hang-up due at this same instant happens first: the frame then meets a
                // closed socket, as it would on a real network.
                self.caller.handle_timeout(self.now);
                if !self.caller.is_closed() {
                    self.caller.handle_text(self.now, &text);
                }
                return;
            }
            Delivery::CallerClosed => {
                if !self.caller.is_closed() {
                    self.caller.handle_closed(self.now);
                }
                return;
            }
            Delivery::OpenAiConnect(request) => {
                self.model_peer = ModelPeer::of_url(&request.url);
                if self.model_peer == ModelPeer::Realtime && self.openai.has_connected() {
                    // A reconnection: a new session on a new fake, the old one's report kept.
                    let next = self.openai.successor();
                    let old = std::mem::replace(&mut self.openai, next);
                    self.openai_connected = false;
                    self.earlier_openai.push(old.report().clone());
                }
                if self.model_peer == ModelPeer::Live && self.live.has_connected() {
                    let next = self.live.successor();
                    let old = std::mem::replace(&mut self.live, next);
                    self.live_connected = false;
                    self.earlier_live.push(old.report().clone());
                }
                let (url, headers) = (&request.url, &request.headers);
                let accepted = match self.model_peer {
                    ModelPeer::Realtime => self.openai.handle_connect(self.now, url, headers),
                    ModelPeer::Live => self.live.handle_connect(self.now, url, headers),
                };
                match accepted {
                    Ok(()) => {
                        match self.model_peer {
                            ModelPeer::Realtime => self.openai_connected = true,
                            ModelPeer::Live => self.live_connected = true,
                        }
                        self.schedule(self.config.connect_latency / 2, Delivery::ModelOpened);
                    }
                    Err(_status) => {
                        self.schedule(self.config.connect_latency / 2, Delivery::ModelClosed)
                    }
                }
                return;
            }
            Delivery::ToOpenAi(text) => {
                match self.model_peer {
                    ModelPeer::Realtime if self.openai_connected => {
                        self.openai.handle_text(self.now, &text)
                    }
                    ModelPeer::Live if self.live_connected => {
                        self.live.handle_text(self.now, &text)
                    }
                    ModelPeer::Realtime | ModelPeer::Live => {}
                }
                return;
            }
            Delivery::OpenAiClosed => {
                match self.model_peer {
                    ModelPeer::Realtime if self.openai_connected => {
                        self.openai_connected = false;
                        self.openai.handle_closed(self.now);
                    }
                    ModelPeer::Live if self.live_connected => {
                        self.live_connected = false;
                        self.live.handle_closed(self.now);
                    }
                    ModelPeer::Realtime | ModelPeer::Live => {}
                }
                return;
            }
        }
        self.probe.leave(None);
        self.drain_call();
    }

    fn drain_call(&mut self) {
        let mut count = 0;
        loop {
            self.probe.enter(ProbeCall::PollOutput);
            let output = self.call.poll_output();
            self.probe.leave(output.as_ref());
            let Some(output) = output else { break };
            count += 1;
            self.on_output(output);
        }
        self.outputs_per_input_max = self.outputs_per_input_max.max(count);
        assert!(
            count <= MAX_OUTPUTS_PER_INPUT,
            "seed {}: one input produced {count} outputs",
            self.config.seed
        );
    }

    fn on_output(&mut self, output: Output) {
        let at = self.now();
        if let Some(ended) = self.ended_at
            && let Output::Send { leg, text } = &output
        {
            panic!(
                "seed {}: {leg:?} message sent at {at:?} after the call ended at {ended:?}: {text}",
                self.config.seed
            );
        }
        match output {
            Output::Send {
                leg: Leg::Phone,
                text,
            } => {
                self.count_phone_audio(&text);
                self.schedule(self.config.phone_latency, Delivery::ToCaller(text))
            }
            Output::Send {
                leg: Leg::Model,
                text,
            } => {
                if !text.contains("\"input_audio_buffer.append\"")
                    && !text.contains("\"session.input_audio.append\"")
                {
                    self.check_model_event(&text);
                    self.model_events_sent.push((at, text.clone()));
                }
                self.schedule(self.config.model_latency, Delivery::ToOpenAi(text));
            }
            Output::Close { leg: Leg::Phone } => {
                self.schedule(self.config.phone_latency, Delivery::CallerClosed)
            }
            Output::Close { leg: Leg::Model } => {
                self.schedule(self.config.model_latency, Delivery::OpenAiClosed)
            }
            Output::Connect(request) => self.schedule(
                self.config.connect_latency / 2,
                Delivery::OpenAiConnect(request),
            ),
            Output::Http { id, request } => {
                let answer = self.http_answer(&request);
                self.http_requests.push((at, request));
                if let Some((delay, response)) = answer {
                    self.schedule(delay, Delivery::Http(id, Ok(response)));
                }
            }
            Output::ToolCall(call) => self.tool_call(call),
            Output::Transmit(transmit) => self.to_openai.send(self.now, transmit),
            Output::Event(event) => {
                if matches!(event, Event::CallEnded { .. }) {
                    self.ended_at = Some(at);
                }
                self.trace.push((at, event));
            }
        }
    }

    /// Tool webhooks live at `http://tools.sim/{name}` and answer as scripted; every other
    /// request (SignalWire's REST API) answers 200.
    fn http_answer(&mut self, request: &HttpRequest) -> Option<(Duration, HttpResponse)> {
        let ok = |body: Vec<u8>| HttpResponse {
            status: 200,
            headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
            body,
        };
        if request.url.starts_with(&self.config.call.openai.base_url) {
            let (status, headers, body) = self.openai_rtc.handle_http(
                self.now,
                request.method,
                &request.url,
                &request.headers,
                &request.body,
            );
            let response = HttpResponse {
                status,
                headers,
                body,
            };
            return Some((self.config.http_latency, response));
        }
        let Some(name) = request.url.strip_prefix(TOOL_WEBHOOK_BASE) else {
            return Some((self.config.http_latency, ok(b"{}".to_vec())));
        };
        let behaviour = self
            .config
            .tools
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.behaviour.clone())?;
        match behaviour {
            ToolBehaviour::Reply {
                delay,
                output,
                action,
            } => {
                let action = match action {
                    ToolAction::None => serde_json::Value::Null,
                    ToolAction::HangUp => serde_json::json!("hang_up"),
                    ToolAction::Transfer { to } => {
                        serde_json::json!({"type": "transfer", "to": to})
                    }
                };
                let body = serde_json::json!({"output": output, "action": action});
                Some((delay, ok(body.to_string().into_bytes())))
            }
            ToolBehaviour::ReplyTwice { delay, output, .. } => {
                let body = serde_json::json!({ "output": output });
                Some((delay, ok(body.to_string().into_bytes())))
            }
            ToolBehaviour::Never => None,
        }
    }

    fn tool_call(&mut self, call: ToolCall) {
        let behaviour = self
            .config
            .tools
            .iter()
            .find(|t| t.name == call.name)
            .map(|t| t.behaviour.clone())
            .unwrap_or(ToolBehaviour::Reply {
                delay: Duration::from_millis(200),
                output: r#"{"ok":true}"#.to_owned(),
                action: ToolAction::None,
            });
        let id = call.id.clone();
        self.tool_calls.push((self.now(), call));
        match behaviour {
            ToolBehaviour::Reply {
                delay,
                output,
                action,
            } => self.schedule(
                delay,
                Delivery::ToolResult(id, ToolResult { output, action }),
            ),
            ToolBehaviour::ReplyTwice {
                delay,
                again_after,
                output,
            } => {
                let result = ToolResult {
                    output,
                    action: ToolAction::None,
                };
                self.schedule(delay, Delivery::ToolResult(id.clone(), result.clone()));
                self.schedule(delay + again_after, Delivery::ToolResult(id, result));
            }
            ToolBehaviour::Never => {}
        }
    }

    /// Checks one client event the call sent: truncates within what was heard, one output per
    /// tool call.
    fn check_model_event(&mut self, text: &str) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            panic!(
                "seed {}: the call sent invalid JSON to OpenAI: {text}",
                self.config.seed
            );
        };
        match value["type"].as_str() {
            Some("conversation.item.truncate") => {
                let item = value["item_id"].as_str().unwrap_or_default();
                let end_ms = value["audio_end_ms"].as_u64().unwrap_or(u64::MAX);
                let heard = self.heard_ms_of(item);
                assert!(
                    end_ms <= heard,
                    "seed {}: truncate of {item} at {end_ms} ms but the caller heard {heard} ms",
                    self.config.seed
                );
            }
            Some("conversation.item.create" | "response.item.create")
                if value["item"]["type"] == "function_call_output" =>
            {
                let id = value["item"]["call_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let count = self.tool_outputs_sent.entry(id.clone()).or_default();
                *count += 1;
                assert!(
                    *count == 1,
                    "seed {}: tool call {id} got {count} outputs",
                    self.config.seed
                );
            }
            Some(_) | None => {}
        }
    }

    /// How much of `item` the caller has heard: the largest position in a mark it echoed.
    fn heard_ms_of(&self, item: &str) -> u64 {
        self.caller
            .report()
            .marks_echoed
            .iter()
            .filter_map(|(_, name)| {
                let mut parts = name.rsplitn(4, ':');
                let _seq = parts.next()?;
                let _generation = parts.next()?;
                let ms = parts.next()?.parse::<u64>().ok()?;
                (parts.next()? == item).then_some(ms)
            })
            .max()
            .unwrap_or(0)
    }

    fn check_invariants(&self) {
        let limits = &self.config.call.limits;
        let (held, marks, tools, digits) = self.call.queue_lengths();
        let held_cap = limits.held_audio.as_millis() as usize * 48;
        assert!(
            held <= held_cap,
            "seed {}: held audio {held} over {held_cap}",
            self.config.seed
        );
        assert!(
            marks <= limits.max_outstanding_marks,
            "seed {}: {marks} marks pending",
            self.config.seed
        );
        assert!(
            tools <= limits.max_running_tools,
            "seed {}: {tools} tools running",
            self.config.seed
        );
        assert!(
            digits <= limits.max_dtmf_digits,
            "seed {}: {digits} digits held",
            self.config.seed
        );
    }

    /// Tool calls that were handed out (or answered by the core) but never got an output while
    /// the call was up. Empty in a correct bridge.
    pub fn tool_calls_without_output(&self) -> Vec<String> {
        let started: BTreeSet<String> = self
            .trace
            .iter()
            .filter_map(|(_, e)| {
                if let Event::ToolCallStarted { id, .. } = e {
                    Some(id.clone())
                } else {
                    None
                }
            })
            .collect();
        started
            .into_iter()
            .filter(|id| !self.tool_outputs_sent.contains_key(id))
            .collect()
    }

    fn drain_peers(&mut self) {
        while let Some((source, destination, contents)) = self.openai_rtc.poll_transmit() {
            self.to_bridge.send(
                self.now,
                Transmit {
                    source,
                    destination,
                    contents,
                },
            );
        }
        while let Some(out) = self.caller.poll_output() {
            match out {
                CallerOutput::Text(text) => {
                    self.schedule(self.config.phone_latency, Delivery::PhoneText(text))
                }
                CallerOutput::Close => {
                    self.schedule(self.config.phone_latency, Delivery::PhoneClosed)
                }
            }
        }
        while let Some(out) = self.openai.poll_output() {
            match out {
                FakeServerOutput::Text(text) => {
                    self.schedule(self.config.model_latency, Delivery::ModelText(text))
                }
                FakeServerOutput::Close { .. } => {
                    self.openai_connected = false;
                    self.schedule(self.config.model_latency, Delivery::ModelClosed)
                }
            }
        }
        while let Some(out) = self.live.poll_output() {
            match out {
                FakeServerOutput::Text(text) => {
                    self.schedule(self.config.model_latency, Delivery::ModelText(text))
                }
                FakeServerOutput::Close { .. } => {
                    self.live_connected = false;
                    self.schedule(self.config.model_latency, Delivery::ModelClosed)
                }
            }
        }
    }

    /// Adds the audio of a `media` message to the caller to [`Sim::phone_audio_sent_ms`].
    fn count_phone_audio(&mut self, text: &str) {
        if !text.contains("\"media\"") {
            return;
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            return;
        };
        let Some(payload) = value["media"]["payload"].as_str() else {
            return;
        };
        let bytes = base64_len(payload) as f64;
        let per_ms = self.config.caller.codec.bytes_per_ms().max(1) as f64;
        self.phone_audio_sent_ms += bytes / per_ms;
    }

    fn schedule(&mut self, after: Duration, delivery: Delivery) {
        let at = self.now + after;
        self.schedule_at(at, delivery);
    }

    fn schedule_at(&mut self, at: Instant, delivery: Delivery) {
        self.seq += 1;
        self.queue.insert((at, self.seq), delivery);
    }
}

/// Decoded length of a base64 string (without decoding it).
fn base64_len(b64: &str) -> usize {
    let padding = b64.bytes().rev().take_while(|&b| b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(padding)
}
