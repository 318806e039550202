//! STUB (a helper fills it in): the offerer-side str0m wrapper.

use std::net::SocketAddr;
use std::time::Instant;

use crate::output::Transmit;

/// The audio codec negotiated for RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RtpCodec {
    /// Opus, RTP clock 48 kHz.
    Opus,
    /// G.711 μ-law, RTP clock 8 kHz.
    Pcmu,
    /// G.711 A-law, RTP clock 8 kHz.
    Pcma,
}

/// What the connection reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RtcEvent {
    /// ICE and DTLS are up.
    Connected,
    /// The `oai-events` data channel is open.
    ChannelOpen,
    /// A text message on the data channel.
    ChannelText(String),
    /// An RTP payload of the remote audio track, in order.
    Audio {
        /// Its codec.
        codec: RtpCodec,
        /// The payload.
        payload: Vec<u8>,
        /// Packets missing right before this one (lost or too late), for concealment.
        lost_before: u32,
    },
    /// ICE reports the path lost, or the peer closed.
    Disconnected,
}

/// Why the WebRTC leg could not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RtcError {
    /// The answer could not be read or applied.
    #[error("bad SDP answer: {0}")]
    BadAnswer(String),
    /// No codec in common.
    #[error("the answer selects no codec we offered")]
    NoCodec,
    /// The data channel is not open, or the message is too large.
    #[error("the data channel cannot take this message: {0}")]
    Channel(String),
    /// Anything else str0m refused.
    #[error("webrtc: {0}")]
    Other(String),
}

/// The offerer side of one WebRTC connection to OpenAI.
pub(crate) struct RtcLeg {}

impl std::fmt::Debug for RtcLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RtcLeg")
    }
}

impl RtcLeg {
    /// A new connection with host candidates on `local_addrs`.
    pub(crate) fn new(_now: Instant, _local_addrs: &[SocketAddr]) -> Result<Self, RtcError> {
        unimplemented!()
    }
    /// The SDP offer: one sendrecv audio m-section (Opus, PCMU, PCMA) and a data channel
    /// `oai-events`, with our host candidates.
    pub(crate) fn create_offer(&mut self, _now: Instant) -> Result<String, RtcError> {
        unimplemented!()
    }
    /// Applies the answer; returns the codec we will send.
    pub(crate) fn accept_answer(
        &mut self,
        _now: Instant,
        _sdp: &str,
    ) -> Result<RtpCodec, RtcError> {
        unimplemented!()
    }
    /// A datagram from the network; false if it was not for this connection.
    pub(crate) fn handle_udp(
        &mut self,
        _now: Instant,
        _source: SocketAddr,
        _destination: SocketAddr,
        _contents: &[u8],
    ) -> bool {
        unimplemented!()
    }
    /// Drives timers.
    pub(crate) fn handle_timeout(&mut self, _now: Instant) {
        unimplemented!()
    }
    /// Sends a text message on the data channel.
    pub(crate) fn send_text(&mut self, _now: Instant, _text: &str) -> Result<(), RtcError> {
        unimplemented!()
    }
    /// Sends one 20 ms audio frame (`duration` in the codec's RTP clock units).
    pub(crate) fn send_audio(&mut self, _now: Instant, _payload: &[u8]) -> Result<(), RtcError> {
        unimplemented!()
    }
    /// Closes the connection.
    pub(crate) fn close(&mut self, _now: Instant) {
        unimplemented!()
    }
    /// Next datagram to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        unimplemented!()
    }
    /// Next event.
    pub(crate) fn poll_event(&mut self) -> Option<RtcEvent> {
        unimplemented!()
    }
    /// When to call `handle_timeout`.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        unimplemented!()
    }
}
