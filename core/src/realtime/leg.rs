//! The Realtime leg of a call: the session plus the transport that carries it.
//!
//! WebRTC first (an SDP offer posted to `/realtime/calls`, Opus or G.711 over RTP, events on the
//! `oai-events` data channel), WebSocket as the fallback. In `auto`, if the call cannot be
//! created, or ICE/DTLS/the data channel is not up in time, or the path dies mid-call, the
//! WebRTC connection is dropped and the WebSocket opened; a mid-call switch gives the new session
//! the conversation so far. Caller audio is held by the call until the new session is ready.

use core::net::SocketAddr;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::audio::{ByteOrder, PhoneCodec};
use crate::config::{CallConfig, TransportChoice, WebRtcConfig};
use crate::media_path::MediaPath;
use crate::model::{ModelEvent, ModelOutput, ModelRequest};
use crate::output::{HttpResponse, TransportFailure};
use crate::realtime::calls;
use crate::realtime::session::RealtimeSession;
use crate::webrtc::transport::{FirstTransport, RtcTransport, RtcTransportEvent};

/// Short names for events and metrics.
pub(crate) const WEBRTC: &str = "realtime/webrtc";
/// Short names for events and metrics.
pub(crate) const WEBSOCKET: &str = "realtime/websocket";
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
        call_id: Option<String>,
    },
    WebSocket {
        media: MediaPath,
        open: bool,
    },
    Closed,
}

/// The OpenAI Realtime leg.
#[derive(Debug)]
pub(crate) struct RealtimeLeg {
    session: RealtimeSession,
    choice: TransportChoice,
    webrtc: WebRtcConfig,
    base_url: String,
    api_key: String,
    http_timeout: Duration,
    order: ByteOrder,
    phone: Option<PhoneCodec>,
    transport: Transport,
    /// The session was ready once: a new connection gets the history.
    was_ready: bool,
    /// WebSocket reconnections tried since the session was last ready.
    reconnects: u32,
    /// When to open the WebSocket again after it dropped.
    reconnect_at: Option<Instant>,
    /// Replace the WebSocket session after this long.
    rollover_after: Option<Duration>,
    /// When the current session is to be replaced, at the next quiet moment after it.
    rollover_at: Option<Instant>,
    /// `rollover_at` has passed: waiting for the model to be quiet.
    rollover_due: bool,
    boundary_seed: u64,
    outputs: VecDeque<ModelOutput>,
    events: VecDeque<ModelEvent>,
    scratch: Vec<u8>,
}

impl RealtimeLeg {
    pub(crate) fn new(config: &CallConfig, seed: u64) -> Self {
        RealtimeLeg {
            session: RealtimeSession::new(config),
            choice: config.transport,
            webrtc: config.webrtc.clone(),
            base_url: config.openai.base_url.clone(),
            api_key: config.openai.api_key.clone(),
            http_timeout: config.limits.http_timeout,
            order: config.l16_byte_order,
            phone: None,
            transport: Transport::Idle,
            was_ready: false,
            reconnects: 0,
            reconnect_at: None,
            rollover_after: config.limits.session_rollover,
            rollover_at: None,
            rollover_due: false,
            boundary_seed: seed,
            outputs: VecDeque::new(),
            events: VecDeque::new(),
            scratch: Vec::new(),
        }
    }

    pub(crate) fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::WebRtc { .. } => WEBRTC,
            Transport::Idle | Transport::WebSocket { .. } | Transport::Closed => WEBSOCKET,
        }
    }

    /// The stream started: connect with `instructions` for a phone leg in `phone`.
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
        let session = self.session.begin_webrtc();
        let boundary = format!("barbara-{:016x}", self.boundary_seed);
        let request = calls::create_request(
            &self.base_url,
            &self.api_key,
            &offer,
            &session,
            &boundary,
            self.http_timeout,
        );
        self.outputs
            .push_back(ModelOutput::Http(ModelRequest::CreateCall, request));
        self.transport = Transport::WebRtc {
            rtc: Box::new(rtc),
            call_id: None,
        };
        self.drain_rtc(now);
    }

    fn start_websocket(&mut self) {
        let Some(phone) = self.phone else {
            return;
        };
        let audio = RealtimeSession::choose_audio(phone);
        let Ok(media) = MediaPath::new(phone, self.order, audio) else {
            self.events.push_back(ModelEvent::Error {
                code: Some("unsupported_media_format".to_owned()),
                message: format!("cannot carry {phone:?} over the WebSocket"),
                fatal: true,
            });
            return;
        };
        let request = self.session.begin_websocket(audio);
        self.outputs.push_back(ModelOutput::Connect(request));
        self.transport = Transport::WebSocket { media, open: false };
    }

    /// WebRTC did not work: fall back (in `auto`) or give up.
    fn fail(&mut self, now: Instant, reason: String) {
        let was_webrtc = matches!(self.transport, Transport::WebRtc { .. });
        if let Transport::WebRtc {
            mut rtc, call_id, ..
        } = std::mem::replace(&mut self.transport, Transport::Closed)
        {
            rtc.close(now);
            while let Some(transmit) = rtc.poll_transmit() {
                self.outputs.push_back(ModelOutput::Transmit(transmit));
            }
            if let Some(id) = call_id {
                let request =
                    calls::hangup_request(&self.base_url, &self.api_key, &id, self.http_timeout);
                self.outputs
                    .push_back(ModelOutput::Http(ModelRequest::HangupCall, request));
            }
        }
        self.session.disconnected();
        if self.choice == TransportChoice::Auto && (was_webrtc || self.phone.is_some()) {
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

    pub(crate) fn handle_http_response(
        &mut self,
        now: Instant,
        request: ModelRequest,
        response: Result<HttpResponse, TransportFailure>,
    ) {
        if request != ModelRequest::CreateCall {
            return;
        }
        let Transport::WebRtc { rtc, .. } = &self.transport else {
            return;
        };
        if !rtc.is_creating() {
            return;
        }
        let created = match calls::read_created(response) {
            Ok(created) => created,
            Err(reason) => return self.fail(now, reason),
        };
        let Transport::WebRtc { rtc, call_id } = &mut self.transport else {
            return;
        };
        *call_id = created.call_id;
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
        let Transport::WebRtc { rtc, .. } = &mut self.transport else {
            return;
        };
        rtc.handle_udp(now, source, destination, contents);
        self.drain_rtc(now);
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            self.start_websocket();
        }
        if let Transport::WebRtc { rtc, .. } = &mut self.transport {
            rtc.handle_timeout(now);
        }
        self.drain_rtc(now);
        self.session.handle_timeout(now);
        self.flush_session(now);
        if self.rollover_at.is_some_and(|t| t <= now) {
            self.rollover_at = None;
            self.rollover_due = true;
        }
        self.maybe_roll_over();
    }

    /// Replaces an old WebSocket session while the model is quiet: the caller's audio is held
    /// for the moment it takes, and the new session is given the conversation.
    fn maybe_roll_over(&mut self) {
        if !self.rollover_due || !self.session.at_turn_boundary() || !self.session.is_ready() {
            return;
        }
        if let Transport::WebSocket { open: true, .. } = self.transport {
            self.rollover_due = false;
            self.outputs.push_back(ModelOutput::Close);
            self.transport = Transport::Closed;
            self.session.disconnected();
            self.events.push_back(ModelEvent::Rollover);
            self.start_websocket();
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let rtc = match &self.transport {
            Transport::WebRtc { rtc, .. } => rtc.poll_timeout(),
            Transport::Idle | Transport::WebSocket { .. } | Transport::Closed => None,
        };
        [
            rtc,
            self.reconnect_at,
            self.rollover_at,
            self.session.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the WebRTC connection's output: datagrams out, channel and audio events in.
    fn drain_rtc(&mut self, now: Instant) {
        loop {
            let Transport::WebRtc { rtc, .. } = &mut self.transport else {
                return;
            };
            while let Some(transmit) = rtc.poll_transmit() {
                self.outputs.push_back(ModelOutput::Transmit(transmit));
            }
            let Some(event) = rtc.poll_event() else {
                return;
            };
            match event {
                RtcTransportEvent::ChannelOpen => {
                    self.session.handle_opened(now);
                    self.flush_session(now);
                }
                RtcTransportEvent::ChannelText(text) => {
                    self.session.handle_text(now, &text);
                    self.flush_session(now);
                }
                RtcTransportEvent::Audio(audio) => self.events.push_back(ModelEvent::Audio {
                    item_id: "webrtc".to_owned(),
                    audio,
                    paced: true,
                }),
                RtcTransportEvent::UplinkFec(change) => {
                    self.events.push_back(ModelEvent::UplinkFec(change));
                }
                RtcTransportEvent::Failed(reason) => {
                    self.fail(now, reason);
                    return;
                }
            }
        }
    }

    /// Moves the session's client events to the transport and its events up.
    fn flush_session(&mut self, now: Instant) {
        while let Some(event) = self.session.poll_event() {
            match event {
                ModelEvent::Ready => {
                    if let Transport::WebRtc { rtc, .. } = &mut self.transport {
                        rtc.session_ready(now);
                    }
                    if self.was_ready {
                        self.session.replay_history();
                    }
                    self.was_ready = true;
                    self.reconnects = 0;
                    self.rollover_due = false;
                    self.rollover_at = match self.transport {
                        Transport::WebSocket { .. } => self.rollover_after.map(|a| now + a),
                        Transport::Idle | Transport::WebRtc { .. } | Transport::Closed => None,
                    };
                    self.events.push_back(ModelEvent::Ready);
                }
                ModelEvent::Audio { item_id, audio, .. } => {
                    // WebSocket audio, in the model's format.
                    if let Transport::WebSocket { media, .. } = &mut self.transport {
                        self.scratch.clear();
                        if media.convert_to_phone(&audio, &mut self.scratch).is_ok() {
                            self.events.push_back(ModelEvent::Audio {
                                item_id,
                                audio: std::mem::take(&mut self.scratch),
                                paced: false,
                            });
                        } else {
                            self.events.push_back(ModelEvent::BadMessage {
                                unknown_type: false,
                            });
                        }
                    }
                }
                other @ (ModelEvent::AudioDone { .. }
                | ModelEvent::CallerSpeechStarted
                | ModelEvent::ToolCall { .. }
                | ModelEvent::Transcript { .. }
                | ModelEvent::Usage { .. }
                | ModelEvent::BilledSeconds(_)
                | ModelEvent::SessionClosed { .. }
                | ModelEvent::Error { .. }
                | ModelEvent::Fallback { .. }
                | ModelEvent::Reconnecting { .. }
                | ModelEvent::Rollover
                | ModelEvent::UplinkFec(_)
                | ModelEvent::Closed
                | ModelEvent::BadMessage { .. }) => self.events.push_back(other),
            }
        }
        while let Some(text) = self.session.poll_transmit() {
            match &mut self.transport {
                Transport::WebRtc { rtc, .. } => rtc.send_text(now, &text),
                Transport::WebSocket { open: true, .. } => {
                    self.outputs.push_back(ModelOutput::Send(text))
                }
                Transport::Idle | Transport::WebSocket { .. } | Transport::Closed => {}
            }
        }
        if let Transport::WebRtc { rtc, .. } = &mut self.transport {
            while let Some(transmit) = rtc.poll_transmit() {
                self.outputs.push_back(ModelOutput::Transmit(transmit));
            }
        }
    }

    pub(crate) fn handle_ws_opened(&mut self, now: Instant) {
        if let Transport::WebSocket { open, .. } = &mut self.transport {
            *open = true;
            self.session.handle_opened(now);
            self.flush_session(now);
        }
    }

    pub(crate) fn handle_ws_text(&mut self, now: Instant, text: &str) {
        if let Transport::WebSocket { open: true, .. } = &self.transport {
            self.session.handle_text(now, text);
            self.flush_session(now);
            self.maybe_roll_over();
        }
    }

    pub(crate) fn handle_ws_closed(&mut self, now: Instant) {
        if let Transport::WebSocket { .. } = self.transport {
            self.transport = Transport::Closed;
            self.session.disconnected();
            self.rollover_at = None;
            self.rollover_due = false;
            // A session that worked once is worth a few new tries; one that never came up
            // (a refused key, a wrong URL) is not.
            if self.was_ready && self.reconnects < MAX_RECONNECTS {
                let after = RECONNECT_BACKOFF * 2u32.pow(self.reconnects);
                self.reconnects += 1;
                self.reconnect_at = Some(now + after);
                self.events.push_back(ModelEvent::Reconnecting {
                    attempt: self.reconnects,
                    after,
                });
            } else {
                self.events.push_back(ModelEvent::Closed);
            }
        }
    }

    /// Caller audio in the phone's codec.
    pub(crate) fn send_audio(&mut self, now: Instant, payload: &[u8]) -> bool {
        if !self.session.is_ready() {
            return false;
        }
        match &mut self.transport {
            Transport::WebSocket { media, .. } => {
                self.scratch.clear();
                if media.convert_to_model(payload, &mut self.scratch).is_err() {
                    return false;
                }
                let audio = std::mem::take(&mut self.scratch);
                self.session.send_audio(&audio);
                self.scratch = audio;
                self.flush_session(now);
            }
            Transport::WebRtc { rtc, .. } => {
                if rtc.send_audio(now, payload) {
                    self.drain_rtc(now);
                }
            }
            Transport::Idle | Transport::Closed => {}
        }
        true
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.session.is_ready()
    }

    pub(crate) fn send_user_text(&mut self, now: Instant, text: &str) {
        self.session.send_user_text(text);
        self.flush_session(now);
    }

    pub(crate) fn request_response(&mut self, now: Instant) {
        self.session.request_response();
        self.flush_session(now);
    }

    pub(crate) fn send_tool_output(&mut self, now: Instant, call_id: &str, output: &str) {
        self.session.send_tool_output(call_id, output);
        self.flush_session(now);
    }

    pub(crate) fn interrupted(&mut self, now: Instant, heard: Option<(&str, u32)>, local: bool) {
        if let Transport::WebSocket { media, .. } = &mut self.transport {
            // Model audio buffered in the resampler was cut along with the rest.
            media.reset_to_phone();
        }
        self.session.interrupted(heard, local);
        self.flush_session(now);
    }

    pub(crate) fn stop_responding(&mut self) {
        self.session.stop_responding();
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.session.is_idle()
    }

    /// Ends the leg: hangs the WebRTC call up, or closes the socket.
    pub(crate) fn close(&mut self, now: Instant) {
        match std::mem::replace(&mut self.transport, Transport::Closed) {
            Transport::WebRtc {
                mut rtc, call_id, ..
            } => {
                if let Some(id) = call_id {
                    let request = calls::hangup_request(
                        &self.base_url,
                        &self.api_key,
                        &id,
                        self.http_timeout,
                    );
                    self.outputs
                        .push_back(ModelOutput::Http(ModelRequest::HangupCall, request));
                }
                rtc.close(now);
                while let Some(transmit) = rtc.poll_transmit() {
                    self.outputs.push_back(ModelOutput::Transmit(transmit));
                }
            }
            Transport::WebSocket { .. } => self.outputs.push_back(ModelOutput::Close),
            Transport::Idle | Transport::Closed => {}
        }
        self.session.disconnected();
        self.reconnect_at = None;
        self.rollover_at = None;
        self.rollover_due = false;
    }

    pub(crate) fn poll_output(&mut self) -> Option<ModelOutput> {
        self.outputs.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<ModelEvent> {
        self.events.pop_front()
    }
}
