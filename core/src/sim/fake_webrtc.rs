//! A sans-IO fake of OpenAI's WebRTC endpoints, Realtime and Live: the session-creation HTTP
//! APIs plus the answering peer connection, for whole-call simulations.
//!
//! [`FakeRealtimeWebRtc`] answers `POST /v1/realtime/calls` (multipart `sdp` + `session`) and
//! `POST /v1/live/sessions` (JSON `{session, transport: {type: "webrtc", sdp}}`) with a real SDP
//! answer from its own `str0m::Rtc`, then runs that peer connection over whatever datagrams the
//! simulation hands it. Each call has a brain in WebRTC mode: a
//! [`FakeRealtime`](crate::sim::fake_realtime::FakeRealtime) for a Realtime call, a
//! [`FakeLive`](crate::sim::fake_live::FakeLive) for a Live session. The client events on the `oai-events` data channel
//! go into it and its server events come back on the channel; caller audio arrives as RTP (Opus
//! or G.711), is decoded and fed to its VAD; its model audio plays out as real-time paced RTP,
//! one packet every 20 ms (a Realtime brain while it speaks, a Live brain all the time, silence
//! included).
//!
//! The Live creation is checked as strictly as the real endpoint would: `session` must be a
//! valid `MediaSessionConfig` (the `session.start` rules, no `audio.format`) and the transport a
//! WebRTC offer; refusals carry the documented error JSON. A `201` answers
//! `{"session": {"id": "live_rtc_…", …}, "transport": {"type": "webrtc", "sdp": answer}}`.
//! When a Live brain ends the session itself (`session.closed` after `session.close`, expiry),
//! the fake leaves the client time to read it before it closes the peer connection.
//!
//! The answer looks like OpenAI's where it matters: `a=setup:active` (the fake is the DTLS
//! client), one UDP host candidate on the given address, Opus first (then PCMU and PCMA unless
//! [`WebRtcFakeMode::opus_only`]), `a=max-message-size:65535` (Pion's cap). Opus is decoded and
//! encoded at 24 kHz, or at the lower rates the offer declares (48 kHz RTP clock, 960 ticks per
//! packet), G.711 at 8 kHz (160 ticks).
//! The brains' speech signal repeats every second, so its Opus packets are encoded once per
//! thread and replayed (see `opus_cache`); any other audio goes through the call's encoder.
//!
//! It is independent of the bridge's own WebRTC code (`crate::webrtc`): it drives str0m directly
//! as the answerer. Time comes only from the `now` arguments; the fake itself has no randomness,
//! but str0m draws ICE credentials and SSRCs from `fastrand`, so a simulation seeds that.
//!
//! The run loop is str0m's: after every input, the fake drains its `Rtc`s; the caller then drains
//! [`poll_transmit`](FakeRealtimeWebRtc::poll_transmit) and reads
//! [`poll_timeout`](FakeRealtimeWebRtc::poll_timeout).

use core::net::SocketAddr;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;
use str0m::Input;
use str0m::format::Codec;
use str0m::media::Frequency;
use str0m::net::{Protocol, Receive};

use crate::sim::fake_live::{LiveReport, LiveScript};
use crate::sim::fake_realtime::{RealtimeReport, RealtimeScript};

use self::http::{error_answer, split_url};
use self::peer::{Call, CallState};

mod brain;
mod create;
mod http;
mod opus_cache;
mod peer;
#[cfg(test)]
mod tests;

/// The data channel label every official client uses.
const CHANNEL_LABEL: &str = "oai-events";
/// Opus is encoded at this rate unless the offer's `maxplaybackrate` is honoured and lower, and
/// decoded at it unless the offer's `sprop-maxcapturerate` is lower; the brain speaks at the
/// encoding rate.
const OPUS_RATE: u32 = 24000;
/// G.711 rate.
const G711_RATE: u32 = 8000;
/// At most this many lost packets are concealed per gap.
const MAX_CONCEALED: u64 = 5;
/// Calls one fake serves; more creations are refused with 429.
const MAX_CALLS: usize = 32;
/// Datagrams waiting for [`FakeRealtimeWebRtc::poll_transmit`]; older ones are dropped.
const MAX_TRANSMITS: usize = 4096;
/// How often the `Output::Timeout(t <= now)` pitfall is answered before giving up for now.
const MAX_TIMEOUT_REPEATS: u32 = 16;

/// How the fake WebRTC endpoint misbehaves (Realtime calls and Live sessions alike), and what
/// its Live brains say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebRtcFakeMode {
    /// Refuse every call creation with this HTTP status (401 or 400, say) and error JSON.
    pub refuse_with: Option<u16>,
    /// Answer with Opus only: PCMU and PCMA are not offered by the fake.
    pub opus_only: bool,
    /// Answer the SDP but ignore every datagram, so ICE never completes.
    pub never_connect: bool,
    /// This long after connecting, stop sending and receiving (consent lost; no close).
    pub drop_after: Option<Duration>,
    /// The script of every Live session's brain; `None`: [`LiveScript::default`].
    pub live_script: Option<LiveScript>,
    /// Encode the model's Opus at no more than the offer's `maxplaybackrate` (as libwebrtc
    /// does). Off, the fake sends 24 kHz Opus whatever the offer says: whether OpenAI honours
    /// the parameter is UNCONFIRMED, so both behaviours are played.
    pub honour_max_playback_rate: bool,
}

/// The audio codec a call negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// Opus, 48 kHz RTP clock (960 ticks per 20 ms).
    Opus,
    /// G.711 μ-law, 8 kHz (160 ticks per 20 ms).
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
}

/// The codecs the fake speaks, in its order of preference.
const CODECS: [(Codec, AudioCodec); 3] = [
    (Codec::Opus, AudioCodec::Opus),
    (Codec::PCMU, AudioCodec::Pcmu),
    (Codec::PCMA, AudioCodec::Pcma),
];

impl AudioCodec {
    fn of(codec: Codec) -> Option<Self> {
        CODECS
            .into_iter()
            .find_map(|(c, ours)| (c == codec).then_some(ours))
    }

    fn rate(self) -> u32 {
        match self {
            Self::Opus => OPUS_RATE,
            Self::Pcmu | Self::Pcma => G711_RATE,
        }
    }

    /// RTP clock and ticks per 20 ms frame.
    fn clock(self) -> (Frequency, u64) {
        match self {
            Self::Opus => (Frequency::FORTY_EIGHT_KHZ, 960),
            Self::Pcmu | Self::Pcma => (Frequency::EIGHT_KHZ, 160),
        }
    }
}

/// One HTTP request the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRecord {
    /// Since the origin.
    pub at: Duration,
    /// `POST`, …
    pub method: String,
    /// As given.
    pub url: String,
    /// The status answered.
    pub status: u16,
}

/// One created call (Realtime) or session (Live): what the client sent and what happened to
/// its peer connection.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// `rtc_…`, the last segment of the `Location` header; for Live, `live_rtc_…`, the
    /// `session.id` of the answer.
    pub call_id: String,
    /// When the creation was answered with 201.
    pub created_at: Duration,
    /// The request headers, as given.
    pub headers: Vec<(String, String)>,
    /// The parsed `session` part (Live: the body's `session`); `None` when the request had
    /// none.
    pub session: Option<Value>,
    /// The offer's SDP text.
    pub offer_sdp: String,
    /// The negotiated codec.
    pub codec: AudioCodec,
    /// The rate the fake encodes its audio at (Opus: 24 kHz, or less after the offer's
    /// `maxplaybackrate` when [`WebRtcFakeMode::honour_max_playback_rate`]; G.711: 8 kHz).
    pub send_rate: u32,
    /// The rate the fake decodes the bridge's audio at (Opus: 24 kHz, or less when the
    /// offer's `sprop-maxcapturerate` says the bridge captures no more; G.711: 8 kHz).
    pub receive_rate: u32,
    /// The codec of the last RTP packet received from the bridge.
    pub codec_in: Option<AudioCodec>,
    /// ICE and DTLS up.
    pub connected_at: Option<Duration>,
    /// The data channel opened; its label.
    pub channel: Option<(Duration, String)>,
    /// Consent lost (see [`WebRtcFakeMode::drop_after`]).
    pub dropped_at: Option<Duration>,
    /// Hung up through the hangup endpoint.
    pub hung_up_at: Option<Duration>,
    /// The peer connection ended, by either side.
    pub closed_at: Option<Duration>,
    /// RTP packets received and decoded.
    pub rtp_in: u64,
    /// The payloads of the G.711 RTP packets taken (not late), in order, as they came, when the
    /// brain's script records input audio.
    pub rtp_payload_in: Vec<u8>,
    /// Lost RTP packets concealed.
    pub rtp_concealed: u64,
    /// RTP packets that arrived after a later one and were dropped.
    pub rtp_late: u64,
    /// RTP packets with a codec the call did not negotiate, or that did not decode.
    pub rtp_bad: u64,
    /// RTP packets written, one per 20 ms frame of model audio.
    pub rtp_out: u64,
    /// Milliseconds of model audio sent as RTP (`rtp_out` × 20).
    pub rtp_out_ms: u64,
    /// Frames of model audio that could not be sent (not connected, or a write error).
    pub frames_unsent: u64,
    /// Server events the data channel did not take (not open or buffer full).
    pub events_unsent: u64,
    /// Client messages on the data channel.
    pub channel_messages_in: u64,
    /// This call's client behaviour the real endpoint would not expect (the brain's own are in
    /// `realtime.violations` or `live.violations`).
    pub violations: Vec<String>,
    /// The Realtime brain's report: events, responses, VAD, output audio buffer (empty for a
    /// Live session).
    pub realtime: RealtimeReport,
    /// The Live brain's report, for a Live session; `None` for a Realtime call.
    pub live: Option<LiveReport>,
}

/// Everything the fake saw and did; `Duration`s are since the origin (see
/// [`FakeRealtimeWebRtc::set_origin`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebRtcReport {
    /// Every HTTP request, in order.
    pub requests: Vec<HttpRecord>,
    /// Every created call, in order.
    pub calls: Vec<CallRecord>,
    /// Accepted hangups: `(when, call_id)`.
    pub hangups: Vec<(Duration, String)>,
    /// Client behaviour the real endpoint would reject (the brains' own are in each
    /// `calls[i].realtime.violations`).
    pub violations: Vec<String>,
    /// Datagrams that were not STUN, DTLS, RTP or RTCP.
    pub udp_malformed: u64,
    /// Datagrams no call took (or all ignored, with `never_connect`).
    pub udp_ignored: u64,
}

impl WebRtcReport {
    /// The latest call's brain report.
    pub fn realtime(&self) -> Option<&RealtimeReport> {
        self.calls.last().map(|c| &c.realtime)
    }

    /// The latest Live session's brain report.
    pub fn live(&self) -> Option<&LiveReport> {
        self.calls.iter().rev().find_map(|c| c.live.as_ref())
    }

    /// The endpoint's violations followed by every call's own and its brain's.
    pub fn all_violations(&self) -> Vec<String> {
        let calls = self.calls.iter().flat_map(|c| {
            let live = c.live.iter().flat_map(|l| l.violations.iter());
            c.violations
                .iter()
                .chain(c.realtime.violations.iter())
                .chain(live)
        });
        self.violations.iter().chain(calls).cloned().collect()
    }
}

/// An HTTP answer: status, headers, body.
pub type HttpAnswer = (u16, Vec<(String, String)>, Vec<u8>);

/// The fake OpenAI WebRTC endpoint. See the module docs.
#[derive(Debug)]
pub struct FakeRealtimeWebRtc {
    script: RealtimeScript,
    mode: WebRtcFakeMode,
    local_addr: SocketAddr,
    origin: Option<Instant>,
    last_now: Option<Instant>,
    calls: Vec<Call>,
    transmits: VecDeque<Datagram>,
    report: WebRtcReport,
}

impl FakeRealtimeWebRtc {
    /// An endpoint whose calls follow `script`, misbehaving per `mode`, with its ICE host
    /// candidate on `local_addr`.
    pub fn new(script: RealtimeScript, mode: WebRtcFakeMode, local_addr: SocketAddr) -> Self {
        Self {
            script,
            mode,
            local_addr,
            origin: None,
            last_now: None,
            calls: Vec::new(),
            transmits: VecDeque::new(),
            report: WebRtcReport::default(),
        }
    }

    /// Measures report times from `origin` (default: the first input).
    pub fn set_origin(&mut self, origin: Instant) {
        self.origin = Some(origin);
    }

    /// The address of the fake's ICE host candidate.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// One HTTP request to the API. `POST …/v1/realtime/calls` creates a call (201, the SDP
    /// answer, `Location: /v1/realtime/calls/rtc_…`); `POST …/v1/realtime/calls/{id}/hangup`
    /// ends one (200); `POST …/v1/live/sessions` creates a Live session (201, JSON with the
    /// session and the SDP answer). Refusals carry `{"error":{"message","type","code","param"}}`;
    /// anything else is 404. `url` may be absolute or a path.
    pub fn handle_http(
        &mut self,
        now: Instant,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HttpAnswer {
        let now = self.clamp(now);
        let (path, query) = split_url(url);
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let route = |api: [&str; 3]| {
            segments
                .windows(3)
                .position(|w| w == api)
                .map(|i| segments.get(i + 3..).unwrap_or_default())
        };
        let realtime = route(["v1", "realtime", "calls"]);
        let live = route(["v1", "live", "sessions"]);
        let answer = match (method, realtime, live) {
            ("POST", Some([]), _) => self.create_call(now, query, headers, body),
            ("POST", Some([id, "hangup"]), _) => {
                let id = (*id).to_owned();
                self.hangup(now, &id, headers)
            }
            ("POST", None, Some([])) => self.create_live_session(now, query, headers, body),
            _ => error_answer(
                404,
                "invalid_request_error",
                None,
                &format!("Invalid URL ({method} {path})"),
            ),
        };
        let at = self.since(now);
        self.report.requests.push(HttpRecord {
            at,
            method: method.to_owned(),
            url: url.to_owned(),
            status: answer.0,
        });
        answer
    }

    /// One datagram from the network, addressed to `destination` (the fake's address).
    pub fn handle_udp(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let now = self.clamp(now);
        // What fell due first (most datagrams find nothing due: skip the calls' run loops).
        if self.poll_timeout().is_some_and(|t| t <= now) {
            self.handle_timeout(now);
        }
        if self.mode.never_connect {
            self.report.udp_ignored += 1;
            return;
        }
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            self.report.udp_malformed += 1;
            return;
        };
        let input = Input::Receive(now, receive);
        let Some(call) = self
            .calls
            .iter_mut()
            .find(|c| c.state == CallState::Live && c.rtc.accepts(&input))
        else {
            self.report.udp_ignored += 1;
            return;
        };
        // Garbage that looks like DTLS or RTP is str0m's to discard.
        let _ = call.rtc.handle_input(input);
        call.drain(now, self.origin, &mut self.transmits);
        cap_transmits(&mut self.transmits);
    }

    /// Runs everything due at or before `now`: str0m timers, the brains' events and playout,
    /// consent loss. Earlier than [`poll_timeout`](Self::poll_timeout) it changes nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clamp(now);
        let origin = self.origin;
        for call in &mut self.calls {
            call.on_timeout(now, origin, &mut self.transmits);
        }
        cap_transmits(&mut self.transmits);
    }

    /// The next datagram to send: `(source, destination, contents)`; `None` when drained.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work; `None` when nothing is
    /// scheduled.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls.iter().filter_map(Call::poll_timeout).min()
    }

    /// What the fake saw and did so far.
    pub fn report(&self) -> WebRtcReport {
        let mut report = self.report.clone();
        report.calls = self
            .calls
            .iter()
            .map(|c| {
                let mut record = c.record.clone();
                c.brain.report_into(&mut record);
                record
            })
            .collect();
        report
    }

    // ---- plumbing ----

    fn clamp(&mut self, now: Instant) -> Instant {
        let now = self.last_now.map_or(now, |last| now.max(last));
        self.last_now = Some(now);
        if self.origin.is_none() {
            self.origin = Some(now);
        }
        now
    }

    fn since(&self, t: Instant) -> Duration {
        since(self.origin, t)
    }

    fn violate(&mut self, what: String) {
        self.report.violations.push(what);
    }
}

/// A datagram on its way out: `(source, destination, contents)`.
type Datagram = (SocketAddr, SocketAddr, Vec<u8>);

fn since(origin: Option<Instant>, t: Instant) -> Duration {
    origin.map_or(Duration::ZERO, |o| t.saturating_duration_since(o))
}

fn cap_transmits(q: &mut VecDeque<Datagram>) {
    while q.len() > MAX_TRANSMITS {
        q.pop_front();
    }
}
