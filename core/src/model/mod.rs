//! The one seam between the call and OpenAI: everything above it (the phone leg, barge-in and
//! playback, the tool runner, events) is the same whichever OpenAI API and transport carry the
//! call. Audio crosses the seam in the phone's own codec; each backend converts as it must.

use core::net::SocketAddr;
use std::time::Instant;

use crate::audio::PhoneCodec;
use crate::config::{Backend, CallConfig};
use crate::live::leg::LiveLeg;
use crate::output::{ConnectRequest, HttpRequest, HttpResponse, Role, Transmit, TransportFailure};
use crate::realtime::leg::RealtimeLeg;

/// Ends an assistant line a lost connection cut off mid-sentence, in the history a new session
/// is given (both backends), so the model knows the caller did not hear the rest.
pub(crate) const CUT_OFF_MARKER: &str = "[cut off: the connection dropped]";

/// What the model side reports to the call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ModelEvent {
    /// The session accepted our configuration: caller audio may flow.
    Ready,
    /// Model audio of an assistant item, in the phone's codec. `paced`: it arrives at real-time
    /// pace (WebRTC) and goes through the playout buffer; otherwise it comes in bursts
    /// (WebSocket) and goes to SignalWire at once, tracked by marks.
    Audio {
        item_id: String,
        audio: Vec<u8>,
        paced: bool,
    },
    /// The item's audio is complete.
    AudioDone { item_id: String },
    /// The caller started speaking (server VAD).
    CallerSpeechStarted,
    /// The model wants a tool run.
    ToolCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    /// A finished transcript line.
    Transcript { role: Role, text: String },
    /// Session time billed so far (cumulative).
    BilledSeconds(f64),
    /// The server closed the session (Live `session.closed`).
    SessionClosed {
        reason: String,
        billed_seconds: Option<f64>,
    },
    /// Tokens used by a response.
    Usage {
        input_tokens: u64,
        output_tokens: u64,
    },
    /// An error from OpenAI (or a transport that cannot go on).
    Error {
        code: Option<String>,
        message: String,
        fatal: bool,
    },
    /// The transport changed.
    Fallback {
        from: &'static str,
        to: &'static str,
        reason: String,
    },
    /// The connection dropped; the leg reconnects after `after`.
    Reconnecting {
        attempt: u32,
        after: std::time::Duration,
    },
    /// The session was replaced before its time cap.
    Rollover,
    /// OpenAI's receiver reports turned the FEC of our Opus audio on or off (WebRTC).
    UplinkFec(crate::webrtc::media::FecChange),
    /// The connection closed and the leg cannot go on.
    Closed,
    /// A message was dropped as malformed.
    BadMessage { unknown_type: bool },
}

/// Which of the backend's HTTP requests an answer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelRequest {
    /// `POST /realtime/calls`.
    CreateCall,
    /// `POST /realtime/calls/{id}/hangup`.
    HangupCall,
}

/// What the backend asks the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ModelOutput {
    /// Open the WebSocket.
    Connect(ConnectRequest),
    /// A WebSocket text frame.
    Send(String),
    /// Close the WebSocket.
    Close,
    /// An HTTP request.
    Http(ModelRequest, HttpRequest),
    /// A UDP datagram.
    Transmit(Transmit),
}

/// The OpenAI leg of a call.
#[derive(Debug)]
pub(crate) enum ModelLeg {
    /// OpenAI Realtime (GA), over WebRTC or WebSocket.
    Realtime(Box<RealtimeLeg>),
    /// OpenAI Live, over WebSocket.
    Live(Box<LiveLeg>),
}

macro_rules! each {
    ($self:ident, $leg:ident => $body:expr) => {
        match $self {
            ModelLeg::Realtime($leg) => $body,
            ModelLeg::Live($leg) => $body,
        }
    };
}

impl ModelLeg {
    pub(crate) fn new(config: &CallConfig, backend: Backend, seed: u64) -> Self {
        match backend {
            Backend::Realtime => ModelLeg::Realtime(Box::new(RealtimeLeg::new(config, seed))),
            Backend::Live => ModelLeg::Live(Box::new(LiveLeg::new(config))),
        }
    }

    /// Whether the model listens while it speaks and handles barge-in itself (Live): the bridge
    /// then never cuts its audio for the caller's speech or keys.
    pub(crate) fn full_duplex(&self) -> bool {
        matches!(self, ModelLeg::Live(_))
    }

    /// Whether the leg is closing gracefully and the call must wait for it to finish.
    pub(crate) fn is_closing(&self) -> bool {
        match self {
            ModelLeg::Realtime(_) => false,
            ModelLeg::Live(leg) => leg.is_closing(),
        }
    }

    pub(crate) fn transport_name(&self) -> &'static str {
        each!(self, leg => leg.transport_name())
    }

    pub(crate) fn start(&mut self, now: Instant, phone: PhoneCodec, instructions: String) {
        each!(self, leg => leg.start(now, phone, instructions))
    }

    pub(crate) fn handle_ws_opened(&mut self, now: Instant) {
        each!(self, leg => leg.handle_ws_opened(now))
    }

    pub(crate) fn handle_ws_text(&mut self, now: Instant, text: &str) {
        each!(self, leg => leg.handle_ws_text(now, text))
    }

    pub(crate) fn handle_ws_closed(&mut self, now: Instant) {
        each!(self, leg => leg.handle_ws_closed(now))
    }

    pub(crate) fn handle_http_response(
        &mut self,
        now: Instant,
        request: ModelRequest,
        response: Result<HttpResponse, TransportFailure>,
    ) {
        each!(self, leg => leg.handle_http_response(now, request, response))
    }

    pub(crate) fn handle_udp(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        each!(self, leg => leg.handle_udp(now, source, destination, contents))
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        each!(self, leg => leg.handle_timeout(now))
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        each!(self, leg => leg.poll_timeout())
    }

    /// Caller audio in the phone's codec; false if the session is not ready for it.
    pub(crate) fn send_audio(&mut self, now: Instant, payload: &[u8]) -> bool {
        each!(self, leg => leg.send_audio(now, payload))
    }

    pub(crate) fn is_ready(&self) -> bool {
        each!(self, leg => leg.is_ready())
    }

    /// Tells the model something the caller did (DTMF) and lets it answer.
    pub(crate) fn send_user_text(&mut self, now: Instant, text: &str) {
        each!(self, leg => leg.send_user_text(now, text))
    }

    /// Asks the model to speak (the greeting).
    pub(crate) fn request_response(&mut self, now: Instant) {
        each!(self, leg => leg.request_response(now))
    }

    pub(crate) fn send_tool_output(&mut self, now: Instant, call_id: &str, output: &str) {
        each!(self, leg => leg.send_tool_output(now, call_id, output))
    }

    /// The caller interrupted (`local`: the bridge cut the model off itself); `heard` is the
    /// item that was playing and how much of it the caller heard.
    pub(crate) fn interrupted(&mut self, now: Instant, heard: Option<(&str, u32)>, local: bool) {
        each!(self, leg => leg.interrupted(now, heard, local))
    }

    /// No more responses will be asked for: the call is hanging up.
    pub(crate) fn stop_responding(&mut self) {
        each!(self, leg => leg.stop_responding())
    }

    /// Whether the model is neither speaking nor about to.
    pub(crate) fn is_idle(&self) -> bool {
        each!(self, leg => leg.is_idle())
    }

    /// Ends the leg (hang-up request, socket close).
    pub(crate) fn close(&mut self, now: Instant) {
        each!(self, leg => leg.close(now))
    }

    pub(crate) fn poll_output(&mut self) -> Option<ModelOutput> {
        each!(self, leg => leg.poll_output())
    }

    pub(crate) fn poll_event(&mut self) -> Option<ModelEvent> {
        each!(self, leg => leg.poll_event())
    }
}
