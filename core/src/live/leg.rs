//! The Live leg of a call: a [`LiveSession`] over WebRTC (the session created with the SDP
//! offer, events on `oai-events`, audio over RTP) or over the WebSocket, with the audio rules of
//! a full-duplex model. In `auto`, WebRTC that cannot be set up or dies mid-call falls back to
//! a new session on the WebSocket, which is given the transcript so far.
//!
//! - Caller audio passes straight through (the session format is the phone's codec) and never
//!   stops: while SignalWire sends nothing (hold), the leg feeds silence, as the API asks.
//! - Model audio arrives at real-time pace, silence included, so it goes to the caller at once:
//!   any buffer would become permanent delay. Speech is found by level; each run of speech is one
//!   "item" for mark accounting, its trailing silence is forwarded and the silence between runs
//!   is not, so SignalWire's queue holds only audio worth hearing.
//! - Hang-up sends `session.close` and waits, bounded, for `session.closed`.

use core::net::SocketAddr;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::audio::{ByteOrder, PhoneCodec, g711};
use crate::config::{CallConfig, TransportChoice, WebRtcConfig};
use crate::live::events::{self, LiveAudioFormat};
use crate::live::session::LiveSession;
use crate::live::sessions;
use crate::media_path::{MediaPath, ModelAudio};
use crate::model::{ModelEvent, ModelOutput, ModelRequest};
use crate::output::{ConnectRequest, HttpResponse, TransportFailure};
use crate::webrtc::transport::{FirstTransport, RtcTransport, RtcTransportEvent};

/// Short names for events and metrics.
pub(crate) const WEBRTC: &str = "live/webrtc";
/// Short names for events and metrics.
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
/// WebSocket reconnections tried before the call gives up on the model.
const MAX_RECONNECTS: u32 = 3;
/// The first reconnection's back-off; each next one doubles it.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(250);

#[derive(Debug)]
enum Transport {
    /// Not started (no `start` yet).
    Idle,
    WebRtc {
        rtc: Box<RtcTransport>,
    },
    WebSocket {
        open: bool,
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
    http_timeout: Duration,
    choice: TransportChoice,
    webrtc: WebRtcConfig,
    transport: Transport,
    /// `session.close` went out: waiting for `session.closed` until then.
    closing: Option<Instant>,
    /// A session was started once: a dropped socket is worth a new one.
    was_started: bool,
    /// Reconnections tried since a session last started.
    reconnects: u32,
    /// When to open the WebSocket again after it dropped.
    reconnect_at: Option<Instant>,
    phone: Option<PhoneCodec>,
    /// WebSocket audio conversion (WebRTC converts in its own media path).
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
            http_timeout: config.limits.http_timeout,
            choice: config.transport,
            webrtc: config.webrtc.clone(),
            transport: Transport::Idle,
            closing: None,
            was_started: false,
            reconnects: 0,
            reconnect_at: None,
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
        match self.transport {
            Transport::WebRtc { .. } => WEBRTC,
            Transport::Idle | Transport::WebSocket { .. } | Transport::Closed => WEBSOCKET,
        }
    }

    /// The stream started: create the session over WebRTC, or open the WebSocket.
    pub(crate) fn start(&mut self, now: Instant, phone: PhoneCodec, instructions: String) {
        self.phone = Some(phone);
        self.session.set_instructions(instructions);
        match FirstTransport::of(self.choice, &self.webrtc) {
            FirstTransport::WebRtc => self.start_webrtc(now),
            FirstTransport::WebSocket => self.start_websocket(),
            FirstTransport::Unusable(reason) => self.fail(now, reason),
        }
    }

    fn start_webrtc(&mut self, now: Instant) {
        let Some(phone) = self.phone else {
            return;
        };
        let (rtc, offer) = match RtcTransport::start(now, &self.webrtc, phone, self.order) {
            Ok(started) => started,
            Err(reason) => return self.fail(now, reason),
        };
        // The HTTP request starts the session: no `session.start` on the channel.
        let session = events::session_object(&self.session.settings(None));
        let request = sessions::create_request(
            &self.base_url,
            &self.api_key,
            &offer,
            session,
            self.http_timeout,
        );
        self.outputs
            .push_back(ModelOutput::Http(ModelRequest::CreateCall, request));
        self.transport = Transport::WebRtc { rtc: Box::new(rtc) };
        self.drain_rtc(now);
    }

    fn start_websocket(&mut self) {
        let Some(phone) = self.phone else {
            return;
        };
        match MediaPath::new(phone, self.order, model_audio(live_format(phone))) {
            Ok(media) => self.media = Some(media),
            Err(_) => {
                self.events.push_back(ModelEvent::Error {
                    code: Some("unsupported_media_format".to_owned()),
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
        self.transport = Transport::WebSocket { open: false };
    }

    /// WebRTC did not work: fall back (in `auto`) to a new session on the WebSocket, or give up.
    fn fail(&mut self, now: Instant, reason: String) {
        if let Transport::WebRtc { mut rtc } =
            std::mem::replace(&mut self.transport, Transport::Closed)
        {
            rtc.close(now);
            while let Some(transmit) = rtc.poll_transmit() {
                self.outputs.push_back(ModelOutput::Transmit(transmit));
            }
        }
        self.session.new_connection();
        if self.last_speech.is_some() {
            self.end_run();
        }
        if self.choice == TransportChoice::Auto && self.phone.is_some() {
            self.events.push_back(ModelEvent::Fallback {
                from: WEBRTC,
                to: WEBSOCKET,
                reason,
            });
            self.start_websocket();
        } else {
            self.events.push_back(ModelEvent::Error {
                code: Some("webrtc_failed".to_owned()),
                message: reason,
                fatal: true,
            });
        }
    }

    pub(crate) fn handle_ws_opened(&mut self, now: Instant) {
        let (Transport::WebSocket { open }, Some(phone)) = (&mut self.transport, self.phone) else {
            return;
        };
        *open = true;
        self.session.start(live_format(phone));
        self.drain_session(now);
    }

    pub(crate) fn handle_ws_text(&mut self, now: Instant, text: &str) {
        if let Transport::WebSocket { open: true } = self.transport {
            self.handle_text(now, text);
        }
    }

    /// One server event, from the WebSocket or the data channel.
    fn handle_text(&mut self, now: Instant, text: &str) {
        match events::parse_server_event(text) {
            Ok(events::ServerEvent::OutputAudio(audio)) => {
                // Only the WebSocket carries audio in events; WebRTC's comes over RTP.
                let Some(media) = self.media.as_mut() else {
                    return;
                };
                let mut converted = Vec::with_capacity(audio.len());
                if media.convert_to_phone(&audio, &mut converted).is_err() {
                    self.events.push_back(ModelEvent::BadMessage {
                        unknown_type: false,
                    });
                } else {
                    self.model_audio(now, converted, false);
                }
            }
            Ok(event) => {
                let started = matches!(event, events::ServerEvent::SessionStarted { .. });
                self.session.handle_event(now, event);
                if started {
                    self.was_started = true;
                    self.reconnects = 0;
                    self.input_until = Some(now);
                    if let Transport::WebRtc { rtc } = &mut self.transport {
                        rtc.session_ready(now);
                    }
                }
            }
            Err(e) => self.events.push_back(ModelEvent::BadMessage {
                unknown_type: matches!(e, events::EventError::UnknownType(_)),
            }),
        }
        self.drain_session(now);
    }

    pub(crate) fn handle_ws_closed(&mut self, now: Instant) {
        if !matches!(self.transport, Transport::WebSocket { .. }) {
            return;
        }
        self.transport = Transport::Closed;
        if self.closing.is_none() && self.was_started && self.reconnects < MAX_RECONNECTS {
            // The socket dropped without `session.closed`: a new session, given the
            // transcript so far, after a back-off. Caller audio is held meanwhile.
            let after = RECONNECT_BACKOFF * 2u32.pow(self.reconnects);
            self.reconnects += 1;
            self.reconnect_at = Some(now + after);
            self.session.new_connection();
            if self.last_speech.is_some() {
                self.end_run();
            }
            self.events.push_back(ModelEvent::Reconnecting {
                attempt: self.reconnects,
                after,
            });
            return;
        }
        self.closing = None;
        self.session.finish();
        self.drain_session(now);
        self.events.push_back(ModelEvent::Closed);
    }

    pub(crate) fn handle_http_response(
        &mut self,
        now: Instant,
        request: ModelRequest,
        response: Result<HttpResponse, TransportFailure>,
    ) {
        let Transport::WebRtc { rtc } = &mut self.transport else {
            return;
        };
        if request != ModelRequest::CreateCall || !rtc.is_creating() {
            return;
        }
        let created = match sessions::read_created(response) {
            Ok(created) => created,
            Err(reason) => return self.fail(now, reason),
        };
        tracing::debug!(session = ?created.session_id, "Live session created over WebRTC");
        if let Err(reason) = rtc.accept_answer(now, &created.answer) {
            return self.fail(now, reason);
        }
        self.drain_rtc(now);
    }

    pub(crate) fn handle_udp(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        if let Transport::WebRtc { rtc } = &mut self.transport {
            rtc.handle_udp(now, source, destination, contents);
            self.drain_rtc(now);
        }
    }

    /// Runs the WebRTC connection's output: datagrams out, channel and audio events in.
    fn drain_rtc(&mut self, now: Instant) {
        loop {
            let Transport::WebRtc { rtc } = &mut self.transport else {
                return;
            };
            while let Some(transmit) = rtc.poll_transmit() {
                self.outputs.push_back(ModelOutput::Transmit(transmit));
            }
            let Some(event) = rtc.poll_event() else {
                return;
            };
            match event {
                // The session exists already; `session.started` comes on the channel.
                RtcTransportEvent::ChannelOpen => {}
                RtcTransportEvent::ChannelText(text) => self.handle_text(now, &text),
                RtcTransportEvent::Audio(audio) => self.model_audio(now, audio, true),
                RtcTransportEvent::UplinkFec(change) => {
                    self.events.push_back(ModelEvent::UplinkFec(change));
                }
                RtcTransportEvent::Failed(reason) => {
                    if self.closing.is_some() {
                        self.finish_close(now);
                    } else {
                        self.fail(now, reason);
                    }
                    return;
                }
            }
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.closing.is_some_and(|deadline| now >= deadline) {
            // No `session.closed` in time: finalisation is unconfirmed; close anyway.
            self.finish_close(now);
            return;
        }
        if self.reconnect_at.is_some_and(|t| now >= t) {
            self.reconnect_at = None;
            self.start_websocket();
        }
        if let Transport::WebRtc { rtc } = &mut self.transport {
            rtc.handle_timeout(now);
            self.drain_rtc(now);
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
        let rtc = match &self.transport {
            Transport::WebRtc { rtc } => rtc.poll_timeout(),
            Transport::Idle | Transport::WebSocket { .. } | Transport::Closed => None,
        };
        if self.closing.is_some() {
            return [self.closing, rtc].into_iter().flatten().min();
        }
        let silence = self
            .input_until
            .filter(|_| self.is_ready())
            .map(|t| t + INPUT_GAP);
        [
            rtc,
            self.reconnect_at,
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
        let sent = match &mut self.transport {
            Transport::WebSocket { .. } => {
                let Some(media) = self.media.as_mut() else {
                    return false;
                };
                self.scratch.clear();
                if media.convert_to_model(payload, &mut self.scratch).is_err()
                    || self.scratch.is_empty()
                {
                    return false;
                }
                self.outputs
                    .push_back(ModelOutput::Send(events::input_audio_append(&self.scratch)));
                true
            }
            Transport::WebRtc { rtc } => {
                let sent = rtc.send_audio(now, payload);
                self.drain_rtc(now);
                sent
            }
            Transport::Idle | Transport::Closed => false,
        };
        if sent {
            self.input_until = Some(now);
        }
        sent
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
        let carried = match self.transport {
            Transport::WebSocket { open } => open,
            Transport::WebRtc { .. } => true,
            Transport::Idle | Transport::Closed => false,
        };
        carried && self.closing.is_none() && self.session.is_started()
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
        self.closing.is_some()
    }

    /// Ends the session: `session.close` and a bounded wait for `session.closed`, or at once
    /// when there is no session.
    pub(crate) fn close(&mut self, now: Instant) {
        self.session.finish();
        self.reconnect_at = None;
        if self.closing.is_some() || matches!(self.transport, Transport::Idle | Transport::Closed) {
            return;
        }
        if self.is_ready() && self.session.close() {
            self.closing = Some(now + self.close_timeout);
            self.drain_session(now);
            return;
        }
        self.close_transport(now);
    }

    fn finish_close(&mut self, now: Instant) {
        self.closing = None;
        self.close_transport(now);
        self.events.push_back(ModelEvent::Closed);
    }

    fn close_transport(&mut self, now: Instant) {
        match std::mem::replace(&mut self.transport, Transport::Closed) {
            Transport::WebRtc { mut rtc } => {
                rtc.close(now);
                while let Some(transmit) = rtc.poll_transmit() {
                    self.outputs.push_back(ModelOutput::Transmit(transmit));
                }
            }
            Transport::WebSocket { .. } => self.outputs.push_back(ModelOutput::Close),
            Transport::Idle | Transport::Closed => {}
        }
    }

    /// Model audio in the phone's codec; `paced` when it came over RTP at real-time pace.
    fn model_audio(&mut self, now: Instant, audio: Vec<u8>, paced: bool) {
        let Some(phone) = self.phone else {
            return;
        };
        if is_speech(phone, self.order, &audio, &mut self.samples) {
            if self.last_speech.is_none() {
                self.run += 1;
            }
            self.last_speech = Some(now);
        } else if self.last_speech.is_none() {
            // Silence between runs: nothing to play.
            return;
        }
        if audio.is_empty() {
            return;
        }
        self.events.push_back(ModelEvent::Audio {
            item_id: format!("live-{}", self.run),
            audio,
            paced,
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
            match &mut self.transport {
                Transport::WebSocket { open: true } => {
                    self.outputs.push_back(ModelOutput::Send(text));
                }
                Transport::WebRtc { rtc } => {
                    rtc.send_text(now, &text);
                    while let Some(transmit) = rtc.poll_transmit() {
                        self.outputs.push_back(ModelOutput::Transmit(transmit));
                    }
                }
                Transport::Idle | Transport::WebSocket { .. } | Transport::Closed => {}
            }
        }
        while let Some(event) = self.session.poll_event() {
            let closed = matches!(event, ModelEvent::SessionClosed { .. });
            self.events.push_back(event);
            if closed && !matches!(self.transport, Transport::Closed) {
                self.finish_close(now);
            }
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
