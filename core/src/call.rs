//! `Call`: the top-level state machine of one phone call.
//!
//! It owns the phone leg, the media path, the model leg (behind the [`crate::model`] seam), the
//! tool runner and the timers. Sub-machines are drained inside each `handle_*`; only `Call`
//! produces [`Output`]s.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::config::{Backend, CallConfig};
use crate::error::ConfigError;
use crate::media_stream::session::{PhoneEvent, PhoneLeg};
use crate::model::{ModelEvent, ModelLeg, ModelOutput, ModelRequest};
use crate::output::{
    BadInputKind, CallContext, EndReason, Event, HttpRequest, HttpResponse, Leg, Output, RequestId,
    ToolAction, ToolCall, ToolCallId, ToolResult, TransportFailure,
};
use crate::playout::Playout;
use crate::timer::{Timer, TimerTable};
use crate::tools::{ToolRunner, builtins};

/// Most unplayed audio a full-duplex model may have queued at SignalWire before the bridge
/// clears it to catch up.
const MAX_DUPLEX_BACKLOG_MS: u32 = 1000;

/// A whole WebSocket message, as the runtime received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsMessage<'a> {
    /// A text frame.
    Text(&'a str),
    /// A binary frame.
    Binary(&'a [u8]),
}

/// Counters of one call, for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallStats {
    /// Messages from SignalWire that were dropped.
    pub bad_phone_messages: u64,
    /// Messages from OpenAI that were dropped.
    pub bad_model_messages: u64,
    /// Caller audio frames sent to the model.
    pub frames_to_model: u64,
    /// Caller audio dropped because the model was not ready for too long, in bytes.
    pub held_audio_dropped_bytes: u64,
    /// Milliseconds of model audio sent to the caller.
    pub ms_to_caller: u64,
    /// Mark echoes of cleared audio, ignored.
    pub stale_mark_echoes: u64,
    /// Barge-ins that cut audio.
    pub barge_ins: u64,
    /// Tool calls handed out.
    pub tool_calls: u64,
    /// Paced model frames dropped because the playout buffer was full.
    pub playout_dropped_frames: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HangupStage {
    /// Waiting for the model to finish speaking and the caller to hear it.
    Draining,
    /// The REST hang-up is in flight.
    Requesting(RequestId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Hangup {
    reason: EndReason,
    stage: HangupStage,
    /// Transfer the caller here instead of hanging up.
    transfer_to: Option<String>,
}

/// One phone call bridged to OpenAI. See the crate docs for the run loop.
#[derive(Debug)]
pub struct Call {
    config: CallConfig,
    seed: [u8; 32],
    unix_time: Duration,
    started: Instant,
    last_now: Instant,
    phone: PhoneLeg,
    phone_closed: bool,
    model: ModelLeg,
    /// The model leg closed for good.
    model_closed: bool,
    /// Real-time paced model audio (WebRTC) waiting for its 20 ms slot.
    playout: Option<Playout>,
    /// The model leg's HTTP requests in flight.
    model_requests: BTreeMap<RequestId, ModelRequest>,
    phone_codec: Option<crate::audio::PhoneCodec>,
    context: CallContext,
    tools: ToolRunner,
    timers: TimerTable,
    outputs: VecDeque<Output>,
    held_audio: VecDeque<Vec<u8>>,
    held_bytes: usize,
    held_overflowing: bool,
    dtmf_digits: String,
    hangup: Option<Hangup>,
    /// The call is over for the caller: set at once, while the model leg may still be closing.
    ended: Option<EndReason>,
    /// `CallEnded` went out: nothing more happens.
    finished: bool,
    first_audio_sent: bool,
    greeted: bool,
    next_request: u64,
    /// Webhook requests in flight and the tool call each answers.
    webhooks: BTreeMap<RequestId, ToolCallId>,
    stats: CallStats,
}

impl Call {
    /// A new call, created when SignalWire's media-stream WebSocket is accepted.
    ///
    /// `seed` makes every choice of the call repeatable; `unix_time` is the wall clock at `now`.
    ///
    /// # Errors
    /// [`ConfigError`] when the configuration cannot work (no key, a bad URL, clashing tools).
    pub fn new(
        config: CallConfig,
        seed: [u8; 32],
        now: Instant,
        unix_time: Duration,
    ) -> Result<Call, ConfigError> {
        validate(&config)?;
        let mut timers = TimerTable::default();
        timers.set(Timer::StreamStart, now + config.limits.stream_start_timeout);
        Ok(Call {
            phone: PhoneLeg::new(
                config.limits.max_phone_message_bytes,
                config.limits.max_outstanding_marks,
            ),
            model: ModelLeg::new(&config, config.backend, leg_seed(&seed)),
            config,
            seed,
            unix_time,
            started: now,
            last_now: now,
            phone_closed: false,
            model_closed: false,
            playout: None,
            model_requests: BTreeMap::new(),
            phone_codec: None,
            context: CallContext::default(),
            tools: ToolRunner::default(),
            timers,
            outputs: VecDeque::new(),
            held_audio: VecDeque::new(),
            held_bytes: 0,
            held_overflowing: false,
            dtmf_digits: String::new(),
            hangup: None,
            ended: None,
            finished: false,
            first_audio_sent: false,
            greeted: false,
            next_request: 0,
            webhooks: BTreeMap::new(),
            stats: CallStats::default(),
        })
    }

    /// The configuration the call was made with.
    pub fn config(&self) -> &CallConfig {
        &self.config
    }

    /// The seed the call was made with.
    pub fn seed(&self) -> [u8; 32] {
        self.seed
    }

    /// Wall-clock time (since the Unix epoch) at the call's start.
    pub fn unix_time(&self) -> Duration {
        self.unix_time
    }

    /// How long the call has run at `now`.
    pub fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// The call's counters.
    pub fn stats(&self) -> CallStats {
        let mut stats = self.stats.clone();
        stats.stale_mark_echoes = self.phone.stale_mark_echoes;
        stats
    }

    /// Why the call ended, once it has (after [`Event::CallEnded`]).
    pub fn end_reason(&self) -> Option<&EndReason> {
        self.ended.as_ref().filter(|_| self.finished)
    }

    /// Lengths of the call's peer-fed queues: (held caller audio in bytes, pending marks,
    /// running tools, collected DTMF digits). Each stays within its configured cap.
    pub fn queue_lengths(&self) -> (usize, usize, usize, usize) {
        (
            self.held_bytes,
            self.phone.pending_marks(),
            self.tools.running(),
            self.dtmf_digits.len(),
        )
    }

    /// A whole WebSocket message arrived on `leg`.
    pub fn handle_ws_message(&mut self, now: Instant, leg: Leg, message: WsMessage<'_>) {
        let now = self.clamp(now);
        if self.finished {
            return;
        }
        if self.ended.is_some() {
            // Only the model leg's closing handshake is still running.
            if let (Leg::Model, WsMessage::Text(text)) = (leg, message)
                && text.len() <= self.config.limits.max_model_message_bytes
            {
                self.model.handle_ws_text(now, text);
                self.pump(now);
            }
            return;
        }
        match (leg, message) {
            (Leg::Phone, WsMessage::Text(text)) => {
                let event = self.phone.handle_text(text);
                self.on_phone_event(now, event);
            }
            (Leg::Model, WsMessage::Text(text)) => {
                if text.len() > self.config.limits.max_model_message_bytes {
                    self.bad_input(Leg::Model, BadInputKind::Oversized);
                } else {
                    self.model.handle_ws_text(now, text);
                }
            }
            (leg, WsMessage::Binary(_)) => self.bad_input(leg, BadInputKind::Binary),
        }
        self.pump(now);
    }

    /// A UDP datagram arrived on one of the call's local addresses.
    pub fn handle_udp(
        &mut self,
        now: Instant,
        source: core::net::SocketAddr,
        destination: core::net::SocketAddr,
        contents: &[u8],
    ) {
        let now = self.clamp(now);
        // A closing model leg still reads datagrams: `session.closed` may come over WebRTC.
        if self.finished {
            return;
        }
        self.model.handle_udp(now, source, destination, contents);
        self.pump(now);
    }

    /// The runtime opened the connection asked for by [`Output::Connect`].
    pub fn handle_ws_opened(&mut self, now: Instant, leg: Leg) {
        let now = self.clamp(now);
        if self.ended.is_some() || leg != Leg::Model {
            return;
        }
        self.model.handle_ws_opened(now);
        self.pump(now);
    }

    /// A leg's connection closed (or could not be opened).
    pub fn handle_ws_closed(&mut self, now: Instant, leg: Leg) {
        let now = self.clamp(now);
        match leg {
            Leg::Phone => {
                self.phone_closed = true;
                self.phone.end();
                self.end(now, EndReason::PhoneSocketClosed);
            }
            Leg::Model => {
                if !self.finished {
                    self.model.handle_ws_closed(now);
                }
            }
        }
        self.pump(now);
    }

    /// The answer to [`Output::Http`] `id`.
    pub fn handle_http_response(
        &mut self,
        now: Instant,
        id: RequestId,
        response: Result<HttpResponse, TransportFailure>,
    ) {
        let now = self.clamp(now);
        if let Some(request) = self.model_requests.remove(&id) {
            if self.ended.is_none() {
                self.model.handle_http_response(now, request, response);
                self.pump(now);
            }
            return;
        }
        if let Some(tool_call) = self.webhooks.remove(&id) {
            if self.ended.is_none() {
                let result = webhook_result(response);
                self.complete_tool(now, &tool_call, result);
                self.pump(now);
            }
            return;
        }
        let Some(Hangup {
            reason,
            stage: HangupStage::Requesting(pending),
            ..
        }) = self.hangup.clone()
        else {
            return;
        };
        if pending != id {
            return;
        }
        if let Ok(r) = &response
            && !(200..300).contains(&r.status)
            && r.status != 404
        {
            tracing::debug!(status = r.status, "SignalWire hang-up refused");
        }
        self.timers.stop(Timer::HttpRequest);
        self.end(now, reason);
        self.pump(now);
    }

    /// The application's result for [`Output::ToolCall`] `id`.
    pub fn handle_tool_result(&mut self, now: Instant, id: &ToolCallId, result: ToolResult) {
        let now = self.clamp(now);
        if self.ended.is_some() {
            return;
        }
        self.complete_tool(now, id, result);
        self.pump(now);
    }

    fn complete_tool(&mut self, now: Instant, id: &ToolCallId, result: ToolResult) {
        match self.tools.finish(now, id) {
            Some(done) => {
                self.model.send_tool_output(now, &id.0, &result.output);
                self.push_event(Event::ToolCallCompleted {
                    id: id.0.clone(),
                    name: done.name,
                    output: result.output,
                    latency: done.latency,
                    timed_out: false,
                });
                match result.action {
                    ToolAction::None => {}
                    ToolAction::HangUp => self.begin_hangup(now, EndReason::AssistantHungUp, None),
                    ToolAction::Transfer { to } => {
                        if self.can_transfer() {
                            self.begin_hangup(now, EndReason::Transferred(to.clone()), Some(to));
                        }
                    }
                }
            }
            None => self.push_event(Event::ToolResultIgnored { id: id.0.clone() }),
        }
    }

    fn can_transfer(&self) -> bool {
        self.config.signalwire.is_some()
            && self.config.public_url.is_some()
            && self.context.call_sid.is_some()
    }

    /// Wakes the call at or after [`Call::poll_timeout`]; earlier calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clamp(now);
        if self.finished {
            return;
        }
        if self.ended.is_some() {
            if self.timers.expire(Timer::Model, now) {
                self.model.handle_timeout(now);
            }
            self.pump(now);
            return;
        }
        if self.timers.expire(Timer::StreamStart, now) {
            self.end(now, EndReason::StreamNeverStarted);
        }
        if self.timers.expire(Timer::Model, now) {
            self.model.handle_timeout(now);
        }
        if self.timers.expire(Timer::Playout, now) {
            self.play_due(now);
        }
        if self.timers.expire(Timer::ModelConnect, now) && !self.model.is_ready() {
            self.end(now, EndReason::ModelConnectTimeout);
        }
        if self.timers.expire(Timer::ToolDeadline, now) {
            for done in self.tools.expire(now) {
                let output = r#"{"error":"the tool did not answer in time"}"#.to_owned();
                self.model.send_tool_output(now, &done.id.0, &output);
                self.push_event(Event::ToolCallCompleted {
                    id: done.id.0,
                    name: done.name,
                    output,
                    latency: done.latency,
                    timed_out: true,
                });
            }
        }
        if self.timers.expire(Timer::DtmfFlush, now) {
            self.flush_dtmf(now);
        }
        if self.timers.expire(Timer::HangupDrain, now)
            && let Some(Hangup {
                stage: HangupStage::Draining,
                ..
            }) = &self.hangup
        {
            self.execute_hangup(now);
        }
        if self.timers.expire(Timer::HttpRequest, now)
            && let Some(hangup) = self.hangup.clone()
        {
            self.end(now, hangup.reason);
        }
        self.pump(now);
    }

    /// Ends the call now: hangs up through SignalWire's REST API when configured, else closes
    /// the media stream.
    pub fn hang_up(&mut self, now: Instant) {
        let now = self.clamp(now);
        if self.ended.is_some() {
            return;
        }
        self.model.stop_responding();
        self.hangup = Some(Hangup {
            reason: EndReason::HangUpRequested,
            stage: HangupStage::Draining,
            transfer_to: None,
        });
        self.execute_hangup(now);
        self.pump(now);
    }

    /// The next thing for the runtime to do; drain it to `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`Call::handle_timeout`]; `None` when nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next().map(|(at, _)| at)
    }

    /// The next deadline and its reason, for logs.
    pub fn next_timer(&self) -> Option<(Instant, Timer)> {
        self.timers.next()
    }

    fn clamp(&mut self, now: Instant) -> Instant {
        // Time never runs backwards inside the core.
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    fn on_phone_event(&mut self, now: Instant, event: PhoneEvent) {
        match event {
            PhoneEvent::Started(start, codec) => {
                self.timers.stop(Timer::StreamStart);
                self.context = CallContext {
                    call_sid: start.call_sid.clone(),
                    stream_sid: Some(start.stream_sid.clone()),
                    custom_parameters: start.custom_parameters.clone().into_iter().collect(),
                };
                self.push_event(Event::StreamStarted {
                    stream_sid: start.stream_sid,
                    call_sid: start.call_sid,
                    codec,
                });
                self.phone_codec = Some(codec);
                self.playout = Some(Playout::new(codec.frame_bytes()));
                let backend = self.backend();
                self.model = ModelLeg::new(&self.config, backend, leg_seed(&self.seed));
                let instructions = self.instructions(now);
                self.model.start(now, codec, instructions);
                self.timers.set(
                    Timer::ModelConnect,
                    now + self.config.limits.model_connect_timeout,
                );
            }
            PhoneEvent::UnsupportedStart(why) => {
                self.timers.stop(Timer::StreamStart);
                self.end(now, EndReason::UnsupportedMediaFormat(why));
            }
            PhoneEvent::Audio(payload) => self.caller_audio(now, &payload),
            PhoneEvent::Dtmf(digit) => self.caller_dtmf(now, digit),
            PhoneEvent::Stopped => {
                self.phone.end();
                self.end(now, EndReason::CallerStopped);
            }
            PhoneEvent::Bad(kind) => self.bad_input(Leg::Phone, kind),
            PhoneEvent::Nothing => {}
        }
    }

    /// The called number, from the stream's `customParameters`.
    fn called_number(&self) -> Option<&str> {
        self.context
            .custom_parameters
            .iter()
            .find(|(k, _)| k == "To")
            .map(|(_, v)| v.as_str())
    }

    /// The backend for this call: the called number's, else the default.
    fn backend(&self) -> Backend {
        self.config.backend_for(self.called_number())
    }

    /// The instructions for this call: the called number's template, else the default one.
    fn instructions(&self, now: Instant) -> String {
        let template = self
            .called_number()
            .and_then(|to| self.config.instructions_by_number.get(to))
            .unwrap_or(&self.config.openai.instructions);
        crate::prompt::render(template, &self.context, self.unix_time + self.elapsed(now))
    }

    fn caller_audio(&mut self, now: Instant, payload: &[u8]) {
        let Some(codec) = self.phone_codec else {
            return;
        };
        if payload.is_empty() {
            return;
        }
        if self.model.is_ready() && self.held_audio.is_empty() {
            if self.model.send_audio(now, payload) {
                self.stats.frames_to_model += 1;
            }
            return;
        }
        // Hold caller audio until the session is configured; keep the newest.
        let cap = self.config.limits.held_audio.as_millis() as usize * codec.bytes_per_ms();
        self.held_bytes += payload.len();
        self.held_audio.push_back(payload.to_vec());
        let mut overflowed = false;
        while self.held_bytes > cap {
            let Some(old) = self.held_audio.pop_front() else {
                break;
            };
            self.held_bytes -= old.len();
            self.stats.held_audio_dropped_bytes += old.len() as u64;
            overflowed = true;
        }
        if overflowed && !self.held_overflowing {
            self.push_event(Event::Overloaded {
                queue: "held_caller_audio",
            });
        }
        self.held_overflowing = overflowed;
    }

    /// Sends held caller audio once the model is ready.
    fn release_held_audio(&mut self, now: Instant) {
        while self.model.is_ready() {
            let Some(audio) = self.held_audio.pop_front() else {
                break;
            };
            self.held_bytes -= audio.len();
            if self.model.send_audio(now, &audio) {
                self.stats.frames_to_model += 1;
            }
        }
        if self.held_audio.is_empty() {
            self.held_overflowing = false;
        }
    }

    fn caller_dtmf(&mut self, now: Instant, digit: char) {
        self.push_event(Event::CallerDtmf { digit });
        // A key pressed over the model cuts it off, as speech would.
        let speaking = self.phone.is_playing()
            || self.playout.as_ref().is_some_and(|p| !p.is_empty())
            || !self.model.is_idle();
        // A full-duplex model hears the keys through its instructions and decides itself.
        if speaking && self.hangup.is_none() && !self.model.full_duplex() {
            self.barge_in(now, true);
        }
        if self.dtmf_digits.len() < self.config.limits.max_dtmf_digits {
            self.dtmf_digits.push(digit);
        }
        if digit == '#' || self.dtmf_digits.len() >= self.config.limits.max_dtmf_digits {
            self.timers.stop(Timer::DtmfFlush);
            self.flush_dtmf(now);
        } else {
            self.timers
                .set(Timer::DtmfFlush, now + self.config.limits.dtmf_pause);
        }
    }

    fn flush_dtmf(&mut self, now: Instant) {
        if self.dtmf_digits.is_empty() || !self.model.is_ready() {
            return;
        }
        let text = format!(
            "[The caller pressed these keys on the phone keypad: {}]",
            self.dtmf_digits
        );
        self.dtmf_digits.clear();
        self.model.send_user_text(now, &text);
    }

    /// Runs sub-machine output until nothing is left, translating it into `Output`s.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.model.poll_event() {
                progressed = true;
                if self.ended.is_none() {
                    self.on_model_event(now, event);
                } else {
                    self.closing_model_event(event);
                }
            }
            while let Some(output) = self.model.poll_output() {
                progressed = true;
                self.model_output(output);
            }
            while let Some(text) = self.phone.poll_transmit() {
                progressed = true;
                if !self.phone_closed {
                    self.outputs.push_back(Output::Send {
                        leg: Leg::Phone,
                        text,
                    });
                }
            }
            if !progressed {
                break;
            }
        }
        if self.ended.is_none() {
            self.set_timer(Timer::ToolDeadline, self.tools.next_deadline());
            self.set_timer(Timer::Model, self.model.poll_timeout());
            let playout = self.playout.as_ref().and_then(Playout::next_tick);
            self.set_timer(Timer::Playout, playout);
        } else if !self.finished {
            self.set_timer(Timer::Model, self.model.poll_timeout());
        }
        self.check_hangup(now);
    }

    /// A model event while the leg closes after the call ended: only its end matters, and
    /// what the record still wants (the last words, the final bill).
    fn closing_model_event(&mut self, event: ModelEvent) {
        if self.finished {
            return;
        }
        if let Some(entry) = record_entry(&event) {
            self.push_event(entry);
        }
        if event == ModelEvent::Closed {
            self.finish();
        }
    }

    fn on_model_event(&mut self, now: Instant, event: ModelEvent) {
        if let Some(entry) = record_entry(&event) {
            self.push_event(entry);
        }
        match event {
            ModelEvent::Ready => {
                self.timers.stop(Timer::ModelConnect);
                self.push_event(Event::ModelReady {
                    transport: self.model.transport_name(),
                });
                self.release_held_audio(now);
                if self.config.openai.greet_first && !self.greeted {
                    self.greeted = true;
                    self.model.request_response(now);
                }
                self.flush_dtmf(now);
            }
            ModelEvent::Audio {
                item_id,
                audio,
                paced,
            } => self.model_audio(now, &item_id, &audio, paced),
            ModelEvent::AudioDone { .. } => self.phone.finish_item(),
            ModelEvent::CallerSpeechStarted => self.barge_in(now, false),
            ModelEvent::Fallback { from, to, reason } => {
                self.push_event(Event::Fallback { from, to, reason });
            }
            ModelEvent::Reconnecting { attempt, after } => {
                self.push_event(Event::ModelReconnecting { attempt, after });
            }
            ModelEvent::Rollover => self.push_event(Event::ModelSessionRollover),
            ModelEvent::UplinkFec(change) => self.push_event(Event::UplinkFec {
                enabled: change.enabled,
                loss_percent: change.loss_percent,
            }),
            ModelEvent::Closed => {
                self.model_closed = true;
                if self.hangup.is_none() {
                    self.end(now, EndReason::ModelDisconnected);
                }
            }
            ModelEvent::ToolCall {
                call_id,
                name,
                arguments,
            } => self.tool_call(now, call_id, name, &arguments),
            ModelEvent::SessionClosed { reason, .. } => {
                if reason != "close_requested" && self.hangup.is_none() {
                    self.end(now, EndReason::ModelSessionClosed(reason));
                }
            }
            ModelEvent::Transcript { .. }
            | ModelEvent::BilledSeconds(_)
            | ModelEvent::Usage { .. } => {}
            ModelEvent::Error {
                code,
                message,
                fatal,
            } => {
                self.push_event(Event::ModelError {
                    code: code.clone(),
                    message,
                    fatal,
                });
                if fatal {
                    self.end(
                        now,
                        EndReason::ModelFatalError(code.unwrap_or_else(|| "unknown".to_owned())),
                    );
                }
            }
            ModelEvent::BadMessage { unknown_type } => self.bad_input(
                Leg::Model,
                if unknown_type {
                    BadInputKind::UnknownEvent
                } else {
                    BadInputKind::Malformed
                },
            ),
        }
    }

    fn model_audio(&mut self, now: Instant, item_id: &str, audio: &[u8], paced: bool) {
        if paced {
            if let Some(playout) = self.playout.as_mut()
                && playout.push(now, item_id, audio)
            {
                self.stats.playout_dropped_frames = playout.dropped;
            }
            self.play_due(now);
            return;
        }
        if self.model.full_duplex() && self.phone.unplayed_ms() > MAX_DUPLEX_BACKLOG_MS {
            // A full-duplex model streams in real time: audio this far behind (after a stall
            // on the way) would stay behind for the rest of the call. Drop it and catch up.
            let _ = self.phone.clear();
            self.push_event(Event::Overloaded {
                queue: "caller_playback",
            });
        }
        self.send_to_caller(item_id, audio);
    }

    /// Sends the paced frames that are due.
    fn play_due(&mut self, now: Instant) {
        while let Some((item, frame)) = self.playout.as_mut().and_then(|p| p.pop_due(now)) {
            self.send_to_caller(&item, &frame);
        }
    }

    fn send_to_caller(&mut self, item_id: &str, audio: &[u8]) {
        let sent = self.phone.play(item_id, audio);
        self.stats.ms_to_caller += u64::from(sent);
        if sent > 0 && !self.first_audio_sent {
            self.first_audio_sent = true;
            self.push_event(Event::FirstAudioToCaller);
        }
    }

    /// The caller interrupted (`local`: by a key press the server did not see).
    fn barge_in(&mut self, now: Instant, local: bool) {
        let buffered = self.playout.as_ref().is_some_and(|p| !p.is_empty());
        if let Some(playout) = self.playout.as_mut() {
            playout.flush();
        }
        if let Some(playing) = self.phone.playing_item().cloned() {
            let _ = self.phone.clear();
            self.model
                .interrupted(now, Some((&playing.item, playing.heard_ms)), local);
            self.stats.barge_ins += 1;
            self.push_event(Event::BargeIn {
                item_id: Some(playing.item),
                heard_ms: playing.heard_ms,
            });
        } else {
            if buffered {
                self.stats.barge_ins += 1;
                self.push_event(Event::BargeIn {
                    item_id: None,
                    heard_ms: 0,
                });
            }
            if !self.model.is_idle() {
                self.model.interrupted(now, None, local);
            }
        }
    }

    fn set_timer(&mut self, timer: Timer, at: Option<Instant>) {
        match at {
            Some(at) => self.timers.set(timer, at),
            None => self.timers.stop(timer),
        }
    }

    fn model_output(&mut self, output: ModelOutput) {
        let ended = self.ended.is_some();
        match output {
            ModelOutput::Connect(request) if !ended => {
                self.outputs.push_back(Output::Connect(request))
            }
            // A closing leg may still say goodbye (`session.close`).
            ModelOutput::Send(text) if !ended || self.model.is_closing() => {
                self.outputs.push_back(Output::Send {
                    leg: Leg::Model,
                    text,
                })
            }
            ModelOutput::Close => self.outputs.push_back(Output::Close { leg: Leg::Model }),
            ModelOutput::Http(request_kind, request) => {
                self.next_request += 1;
                let id = RequestId(self.next_request);
                self.model_requests.insert(id, request_kind);
                self.outputs.push_back(Output::Http { id, request });
            }
            ModelOutput::Transmit(transmit) => self.outputs.push_back(Output::Transmit(transmit)),
            ModelOutput::Connect(_) | ModelOutput::Send(_) => {}
        }
    }

    fn tool_call(&mut self, now: Instant, call_id: String, name: String, arguments: &str) {
        let id = ToolCallId(call_id);
        if self.tools.knows(&id) {
            return;
        }
        self.stats.tool_calls += 1;
        let parsed = if arguments.trim().is_empty() {
            Ok(serde_json::Value::Object(serde_json::Map::new()))
        } else {
            serde_json::from_str::<serde_json::Value>(arguments).map_err(|_| ())
        };
        self.push_event(Event::ToolCallStarted {
            id: id.0.clone(),
            name: name.clone(),
            arguments: parsed.clone().unwrap_or(serde_json::Value::Null),
        });
        let arguments = match parsed {
            Ok(value) if value.is_object() => value,
            Ok(_) | Err(()) => {
                return self.answer_now(
                    id,
                    name,
                    r#"{"error":"the arguments are not a JSON object"}"#.to_owned(),
                );
            }
        };
        if self.config.builtins.end_call && name == builtins::END_CALL {
            self.answer_now(id, name, r#"{"status":"ending the call"}"#.to_owned());
            self.begin_hangup(now, EndReason::AssistantHungUp, None);
            return;
        }
        if self.config.builtins.send_dtmf && name == builtins::SEND_DTMF {
            let output = match builtins::dtmf_digits(&arguments) {
                Some(digits) => {
                    for digit in digits.chars() {
                        self.phone.send_dtmf(digit);
                    }
                    self.push_event(Event::DtmfSent {
                        digits: digits.clone(),
                    });
                    format!(r#"{{"status":"sent","digits":"{digits}"}}"#)
                }
                None => r#"{"error":"digits must be 1-32 of 0-9, *, #, A-D"}"#.to_owned(),
            };
            return self.answer_now(id, name, output);
        }
        if self.config.builtins.transfer_call && name == builtins::TRANSFER_CALL {
            let output = match builtins::transfer_target(&arguments) {
                Some(to) if self.can_transfer() => {
                    self.answer_now(id, name, r#"{"status":"transferring"}"#.to_owned());
                    self.begin_hangup(now, EndReason::Transferred(to.clone()), Some(to));
                    return;
                }
                Some(_) => r#"{"error":"transfers are not configured on this line"}"#,
                None => r#"{"error":"to must be an E.164 number or a sip: URI"}"#,
            };
            return self.answer_now(id, name, output.to_owned());
        }
        let Some(spec) = self.config.tools.iter().find(|t| t.name == name) else {
            return self.answer_now(id, name, r#"{"error":"no such tool"}"#.to_owned());
        };
        if self.tools.running() >= self.config.limits.max_running_tools {
            return self.answer_now(id, name, r#"{"error":"too many tools running"}"#.to_owned());
        }
        let timeout = if spec.timeout.is_zero() {
            self.config.limits.default_tool_timeout
        } else {
            spec.timeout
        };
        self.tools.start(now, id.clone(), &name, timeout);
        if let Some(url) = spec.webhook.clone() {
            let key = format!(
                "{}:{}",
                self.context.call_sid.as_deref().unwrap_or("call"),
                id.0
            );
            let body = serde_json::json!({
                "call_sid": self.context.call_sid,
                "stream_sid": self.context.stream_sid,
                "call_id": id.0,
                "tool": name,
                "arguments": arguments,
                "idempotency_key": key,
                "custom_parameters": self.context.custom_parameters.iter().cloned().collect::<BTreeMap<String, String>>(),
            });
            self.next_request += 1;
            let request_id = RequestId(self.next_request);
            self.webhooks.insert(request_id, id);
            self.outputs.push_back(Output::Http {
                id: request_id,
                request: HttpRequest {
                    method: "POST",
                    url,
                    headers: vec![
                        ("Content-Type".to_owned(), "application/json".to_owned()),
                        ("Idempotency-Key".to_owned(), key),
                    ],
                    body: body.to_string().into_bytes(),
                    timeout,
                },
            });
            return;
        }
        self.outputs.push_back(Output::ToolCall(ToolCall {
            id,
            name,
            arguments,
            context: self.context.clone(),
            deadline: timeout,
        }));
    }

    /// Answers a call the core resolves itself (built-ins and refusals).
    fn answer_now(&mut self, id: ToolCallId, name: String, output: String) {
        let now = self.last_now;
        self.tools.start(now, id.clone(), &name, Duration::ZERO);
        let _ = self.tools.finish(now, &id);
        self.model.send_tool_output(now, &id.0, &output);
        self.push_event(Event::ToolCallCompleted {
            id: id.0,
            name,
            output,
            latency: Duration::ZERO,
            timed_out: false,
        });
    }

    fn begin_hangup(&mut self, now: Instant, reason: EndReason, transfer_to: Option<String>) {
        if self.hangup.is_some() || self.ended.is_some() {
            return;
        }
        self.model.stop_responding();
        self.hangup = Some(Hangup {
            reason,
            stage: HangupStage::Draining,
            transfer_to,
        });
        self.timers
            .set(Timer::HangupDrain, now + self.config.limits.hangup_drain);
    }

    fn check_hangup(&mut self, now: Instant) {
        let draining = matches!(
            self.hangup,
            Some(Hangup {
                stage: HangupStage::Draining,
                ..
            })
        );
        let model_done = self.model.is_idle() || self.model_closed;
        let played =
            !self.phone.is_playing() && self.playout.as_ref().is_none_or(Playout::is_empty);
        if draining && self.ended.is_none() && model_done && played {
            self.execute_hangup(now);
        }
    }

    fn execute_hangup(&mut self, now: Instant) {
        let Some(hangup) = self.hangup.clone() else {
            return;
        };
        self.timers.stop(Timer::HangupDrain);
        let request = match (&self.config.signalwire, &self.context.call_sid) {
            (Some(rest), Some(call_sid)) if !self.phone_closed => Some(HttpRequest {
                method: "POST",
                url: format!(
                    "{}/api/laml/2010-04-01/Accounts/{}/Calls/{}.json",
                    rest.space_url.trim_end_matches('/'),
                    rest.project_id,
                    call_sid
                ),
                headers: vec![
                    (
                        "Authorization".to_owned(),
                        format!("Basic {}", basic_auth(&rest.project_id, &rest.api_token)),
                    ),
                    (
                        "Content-Type".to_owned(),
                        "application/x-www-form-urlencoded".to_owned(),
                    ),
                ],
                body: match (&hangup.transfer_to, &self.config.public_url) {
                    (Some(to), Some(public_url)) => format!(
                        "Url={}&Method=POST",
                        crate::realtime::session::percent_encode(&format!(
                            "{}/transfer?to={}",
                            public_url.trim_end_matches('/'),
                            crate::realtime::session::percent_encode(to)
                        ))
                    )
                    .into_bytes(),
                    (Some(_) | None, Some(_) | None) => b"Status=completed".to_vec(),
                },
                timeout: self.config.limits.http_timeout,
            }),
            (Some(_) | None, Some(_) | None) => None,
        };
        match request {
            Some(request) => {
                self.next_request += 1;
                let id = RequestId(self.next_request);
                self.outputs.push_back(Output::Http { id, request });
                self.push_event(Event::HangupRequested);
                self.timers
                    .set(Timer::HttpRequest, now + self.config.limits.http_timeout);
                self.hangup = Some(Hangup {
                    reason: hangup.reason,
                    stage: HangupStage::Requesting(id),
                    transfer_to: hangup.transfer_to,
                });
            }
            None => self.end(now, hangup.reason),
        }
    }

    fn end(&mut self, now: Instant, reason: EndReason) {
        if self.ended.is_some() {
            return;
        }
        // Calls still running will never reach the model: the session is closing.
        let _ = self.tools.abandon_all(now);
        self.timers = TimerTable::default();
        self.phone.end();
        if !self.phone_closed {
            self.phone_closed = true;
            self.outputs.push_back(Output::Close { leg: Leg::Phone });
        }
        if let Some(playout) = self.playout.as_mut() {
            playout.flush();
        }
        self.ended = Some(reason);
        self.model.close(now);
        while let Some(output) = self.model.poll_output() {
            self.model_output(output);
        }
        if self.model.is_closing() {
            // `end` may run after `pump` armed the timers (a hang-up decided at its end): the
            // bounded wait for the leg needs its deadline now.
            self.set_timer(Timer::Model, self.model.poll_timeout());
        } else {
            self.finish();
        }
    }

    /// The model leg is closed too: the call is over.
    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.timers = TimerTable::default();
        if let Some(reason) = self.ended.clone() {
            self.push_event(Event::CallEnded { reason });
        }
    }

    fn bad_input(&mut self, leg: Leg, kind: BadInputKind) {
        match leg {
            Leg::Phone => self.stats.bad_phone_messages += 1,
            Leg::Model => self.stats.bad_model_messages += 1,
        }
        tracing::debug!(?leg, ?kind, "dropped a bad message");
        self.push_event(Event::BadInput { leg, kind });
    }

    fn push_event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }
}

/// The record entry a model event makes by itself, whatever else it causes.
fn record_entry(event: &ModelEvent) -> Option<Event> {
    match event {
        ModelEvent::Transcript { role, text } => Some(Event::Transcript {
            role: *role,
            text: text.clone(),
        }),
        ModelEvent::BilledSeconds(seconds) => Some(Event::BilledSeconds { seconds: *seconds }),
        ModelEvent::Usage {
            input_tokens,
            output_tokens,
        } => Some(Event::Usage {
            input_tokens: *input_tokens,
            output_tokens: *output_tokens,
        }),
        ModelEvent::SessionClosed {
            reason,
            billed_seconds,
        } => Some(Event::ModelSessionClosed {
            reason: reason.clone(),
            billed_seconds: *billed_seconds,
        }),
        ModelEvent::Ready
        | ModelEvent::Audio { .. }
        | ModelEvent::AudioDone { .. }
        | ModelEvent::CallerSpeechStarted
        | ModelEvent::ToolCall { .. }
        | ModelEvent::Error { .. }
        | ModelEvent::Fallback { .. }
        | ModelEvent::Reconnecting { .. }
        | ModelEvent::Rollover
        | ModelEvent::UplinkFec(_)
        | ModelEvent::Closed
        | ModelEvent::BadMessage { .. } => None,
    }
}

/// Reads a tool webhook's answer: `{"output": …, "action": …}`. Anything else is an error
/// output for the model, never a failure of the call.
fn webhook_result(response: Result<HttpResponse, TransportFailure>) -> ToolResult {
    let failed = |why: String| ToolResult {
        output: serde_json::json!({ "error": why }).to_string(),
        action: ToolAction::None,
    };
    let response = match response {
        Ok(r) if (200..300).contains(&r.status) => r,
        Ok(r) => return failed(format!("the tool answered HTTP {}", r.status)),
        Err(_) => return failed("the tool could not be reached".to_owned()),
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&response.body) else {
        return failed("the tool answered something that is not JSON".to_owned());
    };
    let output = match value.get("output") {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => return failed("the tool's answer has no output".to_owned()),
    };
    let action = value.get("action").and_then(|action| {
        let kind = action.as_str().or_else(|| action.get("type")?.as_str())?;
        match kind {
            "hang_up" | "hangup" | "end_call" => Some(ToolAction::HangUp),
            "transfer" => action
                .get("to")
                .and_then(|to| builtins::transfer_target(&serde_json::json!({ "to": to })))
                .map(|to| ToolAction::Transfer { to }),
            _ => None,
        }
    });
    ToolResult {
        output,
        action: action.unwrap_or_default(),
    }
}

fn validate(config: &CallConfig) -> Result<(), ConfigError> {
    let openai = &config.openai;
    if openai.api_key.trim().is_empty() {
        return Err(ConfigError::MissingApiKey);
    }
    if !(openai.base_url.starts_with("https://") || openai.base_url.starts_with("http://")) {
        return Err(ConfigError::BadBaseUrl(openai.base_url.clone()));
    }
    if openai.model.trim().is_empty() {
        return Err(ConfigError::EmptyModel);
    }
    let mut names: Vec<&str> = builtins::specs(config.builtins)
        .iter()
        .map(|s| match s.name.as_str() {
            builtins::END_CALL => builtins::END_CALL,
            builtins::TRANSFER_CALL => builtins::TRANSFER_CALL,
            _ => builtins::SEND_DTMF,
        })
        .collect();
    for tool in &config.tools {
        let valid = !tool.name.is_empty()
            && tool.name.len() <= 64
            && tool
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(ConfigError::BadToolName(tool.name.clone()));
        }
        if names.contains(&tool.name.as_str()) {
            return Err(ConfigError::DuplicateTool(tool.name.clone()));
        }
        names.push(&tool.name);
    }
    Ok(())
}

/// The model leg's seed (multipart boundaries and the like), from the call's.
fn leg_seed(seed: &[u8; 32]) -> u64 {
    u64::from_le_bytes([
        seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7],
    ])
}

fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}
