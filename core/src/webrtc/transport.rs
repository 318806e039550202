//! One WebRTC connection to OpenAI as a model leg uses it, whichever API is on the other end:
//! the offer, the answer, audio in the phone's codec both ways, text on `oai-events`, and the
//! two clocks that decide it failed — not up within the connect limit, or silent past the
//! liveness limit once the session is ready (str0m's own ICE verdict takes about 21 s).
//!
//! The Realtime and Live legs differ only in how they create the call over HTTP and what they
//! say on the channel; both hold one of these.

use core::net::SocketAddr;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::audio::{ByteOrder, PhoneCodec};
use crate::config::{TransportChoice, WebRtcConfig};
use crate::output::Transmit;
use crate::webrtc::media::{FecChange, RtcMedia};
use crate::webrtc::opus_fmtp;
use crate::webrtc::rtc::{RtcEvent, RtcLeg, RtpCodec};

/// Which transport a model leg tries first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FirstTransport {
    WebRtc,
    WebSocket,
    /// WebRTC only was asked for and cannot be tried.
    Unusable(String),
}

impl FirstTransport {
    /// WebRTC first when it is allowed and the call has a local UDP address.
    pub(crate) fn of(choice: TransportChoice, config: &WebRtcConfig) -> Self {
        let possible = !config.local_addrs.is_empty();
        match choice {
            TransportChoice::WebSocket => FirstTransport::WebSocket,
            TransportChoice::Auto | TransportChoice::WebRtc if possible => FirstTransport::WebRtc,
            TransportChoice::Auto => FirstTransport::WebSocket,
            TransportChoice::WebRtc => {
                FirstTransport::Unusable("no local UDP address for WebRTC".to_owned())
            }
        }
    }
}

/// What the connection reports to its leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RtcTransportEvent {
    /// The `oai-events` data channel is open.
    ChannelOpen,
    /// A text message on the channel.
    ChannelText(String),
    /// Model audio, decoded to the phone's codec, at real-time pace.
    Audio(Vec<u8>),
    /// OpenAI's receiver reports turned our Opus FEC on or off.
    UplinkFec(FecChange),
    /// The connection cannot go on (reported once); the leg falls back or gives up.
    Failed(String),
}

/// A WebRTC connection and its media.
#[derive(Debug)]
pub(crate) struct RtcTransport {
    rtc: RtcLeg,
    media: Option<RtcMedia>,
    phone: PhoneCodec,
    order: ByteOrder,
    connect_timeout: Duration,
    liveness_timeout: Duration,
    /// Waiting for the call-creation answer.
    creating: bool,
    /// The session on the channel is up: the liveness limit applies.
    ready: bool,
    deadline: Option<Instant>,
    failed: bool,
    events: VecDeque<RtcTransportEvent>,
    scratch: Vec<u8>,
    packets: Vec<Vec<u8>>,
}

impl RtcTransport {
    /// A new connection and its SDP offer.
    ///
    /// # Errors
    /// Why str0m could not start (no usable local address).
    pub(crate) fn start(
        now: Instant,
        config: &WebRtcConfig,
        phone: PhoneCodec,
        order: ByteOrder,
    ) -> Result<(Self, String), String> {
        let mut rtc = RtcLeg::new(now, &config.local_addrs).map_err(|e| e.to_string())?;
        let offer = rtc.create_offer(now).map_err(|e| e.to_string())?;
        let offer = opus_fmtp::declare_rates(&offer, phone.sample_rate());
        let transport = RtcTransport {
            rtc,
            media: None,
            phone,
            order,
            connect_timeout: config.connect_timeout,
            liveness_timeout: config.liveness_timeout,
            creating: true,
            ready: false,
            deadline: Some(now + config.connect_timeout),
            failed: false,
            events: VecDeque::new(),
            scratch: Vec::new(),
            packets: Vec::new(),
        };
        Ok((transport, offer))
    }

    /// Whether the call-creation answer is still awaited.
    pub(crate) fn is_creating(&self) -> bool {
        self.creating
    }

    /// Applies OpenAI's answer; a G.711 phone leg keeps its codec when the answer allows.
    ///
    /// # Errors
    /// Why the answer cannot be used.
    pub(crate) fn accept_answer(&mut self, now: Instant, sdp: &str) -> Result<(), String> {
        self.creating = false;
        let prefer = match self.phone {
            PhoneCodec::Pcmu => Some(RtpCodec::Pcmu),
            PhoneCodec::Pcma => Some(RtpCodec::Pcma),
            PhoneCodec::L16 { .. } => None,
        };
        let codec = self
            .rtc
            .accept_answer(now, sdp, prefer)
            .map_err(|e| e.to_string())?;
        self.media = Some(RtcMedia::new(self.phone, self.order, codec).map_err(|e| e.0)?);
        self.drain(now);
        Ok(())
    }

    /// The session on the channel is ready: from now on, silence past the liveness limit is
    /// a lost connection.
    pub(crate) fn session_ready(&mut self, now: Instant) {
        self.ready = true;
        self.deadline = Some(now + self.liveness_timeout);
    }

    pub(crate) fn handle_udp(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        if self.rtc.handle_udp(now, source, destination, contents) && self.ready {
            self.deadline = Some(now + self.liveness_timeout);
        }
        self.drain(now);
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.rtc.poll_timeout().is_some_and(|t| t <= now) {
            self.rtc.handle_timeout(now);
        }
        self.drain(now);
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            let reason = if self.ready {
                format!("no packets from OpenAI for {:?}", self.liveness_timeout)
            } else {
                format!("WebRTC was not up within {:?}", self.connect_timeout)
            };
            self.fail(reason);
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.failed {
            return None;
        }
        [self.rtc.poll_timeout(), self.deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// A text message on the data channel.
    pub(crate) fn send_text(&mut self, now: Instant, text: &str) {
        if let Err(e) = self.rtc.send_text(now, text) {
            tracing::debug!(error = %e, "data channel refused an event");
        }
        self.drain(now);
    }

    /// Caller audio in the phone's codec; false before the media is negotiated.
    pub(crate) fn send_audio(&mut self, now: Instant, payload: &[u8]) -> bool {
        let Some(media) = self.media.as_mut() else {
            return false;
        };
        self.packets.clear();
        media.encode_caller(payload, &mut self.packets);
        for packet in self.packets.drain(..) {
            if let Err(e) = self.rtc.send_audio(now, packet) {
                tracing::debug!(error = %e, "RTP write refused");
            }
        }
        self.drain(now);
        true
    }

    /// Shuts the connection down (DTLS close alert out).
    pub(crate) fn close(&mut self, now: Instant) {
        self.failed = true;
        self.deadline = None;
        self.rtc.close(now);
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.rtc.poll_transmit()
    }

    pub(crate) fn poll_event(&mut self) -> Option<RtcTransportEvent> {
        self.events.pop_front()
    }

    fn fail(&mut self, reason: String) {
        if !self.failed {
            self.failed = true;
            self.events.push_back(RtcTransportEvent::Failed(reason));
        }
    }

    /// Moves str0m's events out, decoding audio on the way.
    fn drain(&mut self, _now: Instant) {
        while let Some(event) = self.rtc.poll_event() {
            match event {
                RtcEvent::Connected => {}
                RtcEvent::ChannelOpen => self.events.push_back(RtcTransportEvent::ChannelOpen),
                RtcEvent::ChannelText(text) => {
                    self.events.push_back(RtcTransportEvent::ChannelText(text));
                }
                RtcEvent::Audio {
                    codec,
                    payload,
                    lost_before,
                } => {
                    let Some(media) = self.media.as_mut() else {
                        continue;
                    };
                    self.scratch.clear();
                    media.decode_model(codec, &payload, lost_before, &mut self.scratch);
                    if !self.scratch.is_empty() {
                        self.events
                            .push_back(RtcTransportEvent::Audio(std::mem::take(&mut self.scratch)));
                    }
                }
                RtcEvent::LossReport { percent } => {
                    if let Some(change) = self.media.as_mut().and_then(|m| m.report_loss(percent)) {
                        self.events.push_back(RtcTransportEvent::UplinkFec(change));
                    }
                }
                RtcEvent::Disconnected => self.fail("the WebRTC connection was lost".to_owned()),
            }
        }
    }
}
