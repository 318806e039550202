//! The Live leg of a call: a [`LiveSession`] over its WebSocket, with the audio rules of a
//! full-duplex model.
//!
//! - Caller audio passes straight through (the session format is the phone's codec) and never
//!   stops: while SignalWire sends nothing (hold), the leg feeds silence, as the API asks.
//! - Model audio arrives at real-time pace, silence included, so it goes to the caller at once:
//!   any buffer would become permanent delay. Speech is found by level; each run of speech is one
//!   "item" for mark accounting, its trailing silence is forwarded and the silence between runs
//!   is not, so SignalWire's queue holds only audio worth hearing.
//! - Hang-up sends `session.close` and waits, bounded, for `session.closed`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::audio::{ByteOrder, PhoneCodec, g711};
use crate::config::CallConfig;
use crate::live::events::{self, LiveAudioFormat};
use crate::live::session::LiveSession;
use crate::media_path::{MediaPath, ModelAudio};
use crate::model::{ModelEvent, ModelOutput, ModelRequest};
use crate::output::{ConnectRequest, HttpResponse, TransportFailure};

/// Short name for events and metrics.
pub(crate) const WEBSOCKET: &str = "live/websocket";

/// A sample at or above this magnitude makes a chunk speech (about -54 dBFS).
const SPEECH_PEAK: i16 = 64;
/// A speech run ends after this much silence.
const RUN_GAP: Duration = Duration::from_millis(400);
/// After the backend finishes, the voice gets this long to start speaking its result before
/// the model counts as idle.
const SETTLE: Duration = Duration::from_millis(1500);
/// Caller audio may pause this long before the leg fills the gap with silence.
const INPUT_GAP: Duration = Duration::from_millis(100);

#[derive(Debug)]
enum State {
    Idle,
    Connecting,
    Open,
    /// `session.close` sent; waiting for `session.closed` until the deadline.
    Closing {
        deadline: Instant,
    },
    Closed,
}

/// The OpenAI Live leg.
#[derive(Debug)]
pub(crate) struct LiveLeg {
    session: LiveSession,
    base_url: String,
    api_key: String,
    order: ByteOrder,
    close_timeout: Duration,
    state: State,
    phone: Option<PhoneCodec>,
    media: Option<MediaPath>,
    /// Caller audio has been sent up to here; silence fills in past it.
    input_until: Option<Instant>,
    /// The current speech run and when it last had speech.
    run: u64,
    last_speech: Option<Instant>,
    /// The backend was busy; the voice may still be about to speak its result.
    settle_until: Option<Instant>,
    backend_was_busy: bool,
    outputs: VecDeque<ModelOutput>,
    events: VecDeque<ModelEvent>,
    scratch: Vec<u8>,
    samples: Vec<i16>,
}

impl LiveLeg {
    pub(crate) fn new(config: &CallConfig) -> Self {
        LiveLeg {
            session: LiveSession::new(config),
            base_url: config.openai.base_url.clone(),
            api_key: config.openai.api_key.clone(),
            order: config.l16_byte_order,
            close_timeout: config.live.close_timeout,
            state: State::Idle,
            phone: None,
            media: None,
            input_until: None,
            run: 0,
            last_speech: None,
            settle_until: None,
            backend_was_busy: false,
            outputs: VecDeque::new(),
            events: VecDeque::new(),
            scratch: Vec::new(),
            samples: Vec::new(),
        }
    }

    pub(crate) fn transport_name(&self) -> &'static str {
        WEBSOCKET
    }

    /// The stream started: open the WebSocket.
    pub(crate) fn start(&mut self, _now: Instant, phone: PhoneCodec, instructions: String) {
        self.phone = Some(phone);
        self.session.set_instructions(instructions);
        let format = live_format(phone);
        match MediaPath::new(phone, self.order, model_audio(format)) {
            Ok(media) => self.media = Some(media),
            Err(_) => {
                self.events.push_back(ModelEvent::Error {
                    code: None,
                    message: format!("the Live API cannot carry {phone:?}"),
                    fatal: true,
                });
                return;
            }
        }
        self.outputs.push_back(ModelOutput::Connect(ConnectRequest {
            url: format!(
                "{}/live/sessions",
                crate::realtime::session::ws_base(&self.base_url)
            ),
            headers: vec![(
                "Authorization".to_owned(),
                format!("Bearer {}", self.api_key),
            )],
        }));
        self.state = State::Connecting;
    }

    pub(crate) fn handle_ws_opened(&mut self, now: Instant) {
        if !matches!(self.state, State::Connecting) {
            return;
        }
        let Some(phone) = self.phone else {
            return;
        };
        self.state = State::Open;
        self.session.start(live_format(phone));
        self.drain_session(now);
    }

    pub(crate) fn handle_ws_text(&mut self, now: Instant, text: &str) {
        if matches!(self.state, State::Idle | State::Closed) {
            return;
        }
        match events::parse_server_event(text) {
            Ok(events::ServerEvent::OutputAudio(audio)) => self.model_audio(now, &audio),
            Ok(event) => {
                let started = matches!(event, events::ServerEvent::SessionStarted { .. });
                self.session.handle_event(now, event);
                if started {
                    self.input_until = Some(now);
                }
            }
            Err(e) => self.events.push_back(ModelEvent::BadMessage {
                unknown_type: matches!(e, events::EventError::UnknownType(_)),
            }),
        }
        self.drain_session(now);
    }

    pub(crate) fn handle_ws_closed(&mut self, now: Instant) {
        if matches!(self.state, State::Closed) {
            return;
        }
        self.state = State::Closed;
        self.session.finish();
        self.drain_session(now);
        self.events.push_back(ModelEvent::Closed);
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let State::Closing { deadline } = self.state
            && now >= deadline
        {
            // No `session.closed` in time: finalisation is unconfirmed, close anyway.
            self.state = State::Closed;
            self.outputs.push_back(ModelOutput::Close);
            self.events.push_back(ModelEvent::Closed);
            return;
        }
        self.session.handle_timeout(now);
        if self.last_speech.is_some_and(|t| now >= t + RUN_GAP) {
            self.end_run();
        }
        if self.settle_until.is_some_and(|t| now >= t) {
            self.settle_until = None;
        }
        self.feed_silence(now);
        self.drain_session(now);
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if let State::Closing { deadline } = self.state {
            return Some(deadline);
        }
        let silence = self
            .input_until
            .filter(|_| self.is_ready())
            .map(|t| t + INPUT_GAP);
        [
            self.session.poll_timeout(),
            self.last_speech.map(|t| t + RUN_GAP),
            self.settle_until,
            silence,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Caller audio in the phone's codec.
    pub(crate) fn send_audio(&mut self, now: Instant, payload: &[u8]) -> bool {
        if !self.is_ready() {
            return false;
        }
        let Some(media) = self.media.as_mut() else {
            return false;
        };
        self.scratch.clear();
        if media.convert_to_model(payload, &mut self.scratch).is_err() || self.scratch.is_empty() {
            return false;
        }
        self.outputs
            .push_back(ModelOutput::Send(events::input_audio_append(&self.scratch)));
        self.input_until = Some(now);
        true
    }

    /// Fills a pause in the caller's audio with silence, in 20 ms frames, so the model's input
    /// never stops.
    fn feed_silence(&mut self, now: Instant) {
        let (Some(until), Some(phone)) = (self.input_until, self.phone) else {
            return;
        };
        if !self.is_ready() || now < until + INPUT_GAP {
            return;
        }
        let gap = now.saturating_duration_since(until);
        let frames = (gap.as_millis() / 20).clamp(1, 50) as usize;
        let silence = vec![phone.silence_byte(); phone.frame_bytes() * frames];
        self.send_audio(now, &silence);
        self.input_until = Some(now);
    }

    pub(crate) fn is_ready(&self) -> bool {
        matches!(self.state, State::Open) && self.session.is_started()
    }

    pub(crate) fn send_user_text(&mut self, now: Instant, text: &str) {
        self.session.append_instructions(text);
        self.drain_session(now);
    }

    /// The greeting: the model does not speak first unless told to.
    pub(crate) fn request_response(&mut self, now: Instant) {
        self.session.greet();
        self.drain_session(now);
    }

    pub(crate) fn send_tool_output(&mut self, now: Instant, call_id: &str, output: &str) {
        self.session.tool_output(call_id, output);
        self.drain_session(now);
    }

    /// HTTP answers belong to the WebRTC transport, which this leg does not use yet.
    pub(crate) fn handle_http_response(
        &mut self,
        _now: Instant,
        _request: ModelRequest,
        _response: Result<HttpResponse, TransportFailure>,
    ) {
    }

    /// Datagrams belong to the WebRTC transport, which this leg does not use yet.
    pub(crate) fn handle_udp(
        &mut self,
        _now: Instant,
        _source: SocketAddr,
        _destination: SocketAddr,
        _contents: &[u8],
    ) {
    }

    /// The model handles barge-in itself: nothing to tell it, nothing to truncate.
    pub(crate) fn interrupted(&mut self, _now: Instant, _heard: Option<(&str, u32)>, _local: bool) {
    }

    /// Live has no responses to stop asking for: the voice decides when to speak.
    pub(crate) fn stop_responding(&mut self) {}

    /// Whether the model is neither speaking nor about to speak a tool's result.
    pub(crate) fn is_idle(&self) -> bool {
        self.last_speech.is_none() && !self.session.backend_busy() && self.settle_until.is_none()
    }

    /// Whether the leg is waiting for `session.closed`.
    pub(crate) fn is_closing(&self) -> bool {
        matches!(self.state, State::Closing { .. })
    }

    pub(crate) fn close(&mut self, now: Instant) {
        self.session.finish();
        match self.state {
            State::Open if self.session.close() => {
                self.state = State::Closing {
                    deadline: now + self.close_timeout,
                };
            }
            State::Open | State::Connecting => {
                self.state = State::Closed;
                self.outputs.push_back(ModelOutput::Close);
            }
            State::Idle | State::Closing { .. } | State::Closed => {}
        }
        self.drain_session(now);
    }

    fn model_audio(&mut self, now: Instant, audio: &[u8]) {
        let (Some(media), Some(phone)) = (self.media.as_mut(), self.phone) else {
            return;
        };
        let mut converted = Vec::with_capacity(audio.len());
        if media.convert_to_phone(audio, &mut converted).is_err() {
            self.events.push_back(ModelEvent::BadMessage {
                unknown_type: false,
            });
            return;
        }
        if is_speech(phone, self.order, &converted, &mut self.samples) {
            if self.last_speech.is_none() {
                self.run += 1;
            }
            self.last_speech = Some(now);
        } else if self.last_speech.is_none() {
            // Silence between runs: nothing to play.
            return;
        }
        if converted.is_empty() {
            return;
        }
        self.events.push_back(ModelEvent::Audio {
            item_id: format!("live-{}", self.run),
            audio: converted,
            paced: false,
        });
    }

    fn end_run(&mut self) {
        self.last_speech = None;
        self.events.push_back(ModelEvent::AudioDone {
            item_id: format!("live-{}", self.run),
        });
    }

    /// Moves the session's frames and events out, and notes when the backend goes quiet.
    fn drain_session(&mut self, now: Instant) {
        while let Some(text) = self.session.poll_text() {
            if matches!(self.state, State::Open | State::Closing { .. }) {
                self.outputs.push_back(ModelOutput::Send(text));
            }
        }
        while let Some(event) = self.session.poll_event() {
            if let ModelEvent::SessionClosed { .. } = event {
                self.events.push_back(event);
                if !matches!(self.state, State::Closed) {
                    self.state = State::Closed;
                    self.outputs.push_back(ModelOutput::Close);
                    self.events.push_back(ModelEvent::Closed);
                }
                continue;
            }
            self.events.push_back(event);
        }
        let busy = self.session.backend_busy();
        if self.backend_was_busy && !busy {
            self.settle_until = Some(now + SETTLE);
        }
        self.backend_was_busy = busy;
    }

    pub(crate) fn poll_output(&mut self) -> Option<ModelOutput> {
        self.outputs.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<ModelEvent> {
        self.events.pop_front()
    }
}

/// The session format that passes the phone's audio straight through.
fn live_format(phone: PhoneCodec) -> LiveAudioFormat {
    match phone {
        PhoneCodec::Pcmu => LiveAudioFormat::Pcmu,
        PhoneCodec::Pcma => LiveAudioFormat::Pcma,
        PhoneCodec::L16 { rate_hz } if rate_hz <= 16_000 => {
            LiveAudioFormat::Pcm { rate_hz: 16_000 }
        }
        PhoneCodec::L16 { .. } => LiveAudioFormat::Pcm { rate_hz: 24_000 },
    }
}

fn model_audio(format: LiveAudioFormat) -> ModelAudio {
    match format {
        LiveAudioFormat::Pcmu => ModelAudio::Pcmu,
        LiveAudioFormat::Pcma => ModelAudio::Pcma,
        LiveAudioFormat::Pcm { rate_hz } => ModelAudio::Pcm { rate_hz },
    }
}

/// Whether phone-codec audio holds anything louder than near-silence.
fn is_speech(phone: PhoneCodec, order: ByteOrder, audio: &[u8], samples: &mut Vec<i16>) -> bool {
    let loud = |s: i16| s.unsigned_abs() >= SPEECH_PEAK.unsigned_abs();
    match phone {
        PhoneCodec::Pcmu => audio
            .iter()
            .any(|&b| loud(g711::ULAW_TO_LINEAR[b as usize])),
        PhoneCodec::Pcma => audio
            .iter()
            .any(|&b| loud(g711::ALAW_TO_LINEAR[b as usize])),
        PhoneCodec::L16 { .. } => {
            samples.clear();
            crate::audio::l16::decode(audio, order, samples).is_ok()
                && samples.iter().any(|&s| loud(s))
        }
    }
}
