//! A sans-IO fake of OpenAI's Realtime WebRTC endpoint: the call-creation HTTP API plus the
//! answering peer connection, for whole-call simulations.
//!
//! [`FakeRealtimeWebRtc`] answers `POST /v1/realtime/calls` (multipart `sdp` + `session`) with
//! a real SDP answer from its own `str0m::Rtc`, then runs that peer connection over whatever
//! datagrams the simulation hands it. Each call has a [`FakeRealtime`] brain in WebRTC mode: the
//! client events on the `oai-events` data channel go into it and its server events come back on
//! the channel; caller audio arrives as RTP (Opus or G.711), is decoded and fed to its VAD; its
//! model audio plays out as real-time paced RTP, one packet every 20 ms while it speaks.
//!
//! The answer looks like OpenAI's where it matters: `a=setup:active` (the fake is the DTLS
//! client), one UDP host candidate on the given address, Opus first (then PCMU and PCMA unless
//! [`WebRtcFakeMode::opus_only`]), `a=max-message-size:65535` (Pion's cap). Opus is decoded and
//! encoded at 24 kHz (48 kHz RTP clock, 960 ticks per packet), G.711 at 8 kHz (160 ticks).
//!
//! It is independent of the bridge's own WebRTC code (`crate::webrtc`): it drives str0m directly
//! as the answerer. Time comes only from the `now` arguments; the fake itself has no randomness,
//! but str0m draws ICE credentials and SSRCs from `fastrand`, so a simulation seeds that.
//!
//! The run loop is str0m's: after every input, the fake drains its `Rtc`s; the caller then drains
//! [`poll_transmit`](FakeRealtimeWebRtc::poll_transmit) and reads
//! [`poll_timeout`](FakeRealtimeWebRtc::poll_timeout).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use str0m::change::SdpOffer;
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaData, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::audio::g711;
use crate::audio::opus::{OpusDecoder, OpusEncoder};
use crate::sim::fake_realtime::{
    AudioFrame, FakeRealtime, FakeServerOutput, RealtimeReport, RealtimeScript,
};

/// The data channel label every official client uses.
const CHANNEL_LABEL: &str = "oai-events";
/// Opus is decoded and encoded at this rate; the brain speaks at it on Opus calls.
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

/// How the fake WebRTC endpoint misbehaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebRtcFakeMode {
    /// Refuse every call creation with this HTTP status (401 or 400, say) and error JSON.
    pub refuse_with: Option<u16>,
    /// Answer with Opus only: PCMU and PCMA are not offered by the fake.
    pub opus_only: bool,
    /// Answer the SDP but ignore every datagram, so ICE never completes.
    pub never_connect: bool,
    /// This long after connecting, stop sending and receiving (consent lost; no close).
    pub drop_after: Option<Duration>,
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

/// One created call: what the client sent and what happened to its peer connection.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// `rtc_…`, the last segment of the `Location` header.
    pub call_id: String,
    /// When the creation was answered with 201.
    pub created_at: Duration,
    /// The request headers, as given.
    pub headers: Vec<(String, String)>,
    /// The parsed `session` part; `None` when the request had none.
    pub session: Option<Value>,
    /// The offer's SDP text.
    pub offer_sdp: String,
    /// The negotiated codec.
    pub codec: AudioCodec,
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
    /// `realtime.violations`).
    pub violations: Vec<String>,
    /// The brain's report: events, responses, VAD, output audio buffer.
    pub realtime: RealtimeReport,
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

    /// The endpoint's violations followed by every call's own and its brain's.
    pub fn all_violations(&self) -> Vec<String> {
        let calls = self
            .calls
            .iter()
            .flat_map(|c| c.violations.iter().chain(c.realtime.violations.iter()));
        self.violations.iter().chain(calls).cloned().collect()
    }
}

/// An HTTP answer: status, headers, body.
pub type HttpAnswer = (u16, Vec<(String, String)>, Vec<u8>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// Driving the peer connection.
    Live,
    /// Never connects, or consent lost, or closed: nothing goes in or out any more.
    Dead,
}

/// One call: its peer connection, its brain and its codecs.
struct Call {
    record: CallRecord,
    rtc: Rtc,
    brain: FakeRealtime,
    state: CallState,
    mid: Mid,
    pt: Pt,
    channel: Option<ChannelId>,
    encoder: Option<OpusEncoder>,
    decoder: Option<OpusDecoder>,
    rtc_timeout: Option<Instant>,
    drop_after: Option<Duration>,
    drop_at: Option<Instant>,
    last_seq: Option<u64>,
    /// First frame instant and the last RTP timestamp written.
    rtp_clock: Option<(Instant, u64)>,
    connected: bool,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("call_id", &self.record.call_id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

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
    /// ends one (200). Refusals carry `{"error":{"message","type","code","param"}}`; anything
    /// else is 404. `url` may be absolute or a path.
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
        let route = segments
            .windows(3)
            .position(|w| w == ["v1", "realtime", "calls"])
            .map(|i| segments.get(i + 3..).unwrap_or_default());
        let answer = match (method, route) {
            ("POST", Some([])) => self.create_call(now, query, headers, body),
            ("POST", Some([id, "hangup"])) => {
                let id = (*id).to_owned();
                self.hangup(now, &id, headers)
            }
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
        self.handle_timeout(now);
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
                record.realtime = c.brain.report().clone();
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

    /// A refusal that is the client's fault: recorded, then answered.
    fn refuse_bug(&mut self, status: u16, code: &str, message: &str) -> HttpAnswer {
        self.violate(format!(
            "call creation refused with {status} {code}: {message}"
        ));
        error_answer(status, "invalid_request_error", Some(code), message)
    }

    // ---- HTTP ----

    fn create_call(
        &mut self,
        now: Instant,
        query: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HttpAnswer {
        if let Some(status) = self.mode.refuse_with {
            return scripted_refusal(status);
        }
        if !authorized(headers) {
            return self.refuse_bug(
                401,
                "invalid_api_key",
                "You didn't provide an API key. Provide it in the Authorization header (Bearer auth).",
            );
        }
        if query.split('&').any(|kv| kv.starts_with("model=")) {
            self.violate(format!(
                "`?{query}` on /v1/realtime/calls: the model belongs in the session part"
            ));
        }
        if self.calls.len() >= MAX_CALLS {
            return error_answer(
                429,
                "requests",
                Some("rate_limit_exceeded"),
                "Too many calls.",
            );
        }
        let content_type = header(headers, "content-type").unwrap_or("");
        let (sdp, session) = match self.read_body(content_type, body) {
            Ok(parts) => parts,
            Err(message) => return self.refuse_bug(400, "invalid_request_body", &message),
        };
        if !sdp.contains("m=audio") {
            let msg = "The offer must contain an audio media section.";
            return self.refuse_bug(400, "invalid_offer", msg);
        }
        // str0m answers an `actpass` offer as `passive`; OpenAI answers `active` (it is the DTLS
        // client). Offering `passive` on str0m's behalf makes it take the active role.
        let as_passive = sdp.replace("a=setup:actpass", "a=setup:passive");
        let offer = match SdpOffer::from_sdp_string(&as_passive) {
            Ok(offer) => offer,
            Err(e) => return self.refuse_bug(400, "invalid_offer", &format!("Invalid SDP: {e}")),
        };
        // Pion, the real server's stack, caps data channel messages at 64 KiB.
        let mut builder = Rtc::builder()
            .set_sctp_max_message_size(65_535)
            .clear_codecs()
            .enable_opus(true, false);
        if !self.mode.opus_only {
            builder = builder.enable_pcmu(true, false).enable_pcma(true, false);
        }
        let mut rtc = builder.build(now);
        let added = Candidate::host(self.local_addr, "udp")
            .ok()
            .and_then(|c| rtc.add_local_candidate(c).cloned());
        if added.is_none() {
            let msg = "The fake's local address is not a usable host candidate.";
            return error_answer(500, "server_error", None, msg);
        }
        let answer = match rtc.sdp_api().accept_offer(offer) {
            Ok(answer) => answer,
            Err(e) => {
                let msg = format!("The offer could not be accepted: {e}");
                return self.refuse_bug(400, "invalid_offer", &msg);
            }
        };
        let mid = offer_audio_mid(&sdp)
            .filter(|&mid| rtc.media(mid).is_some_and(|m| m.kind() == MediaKind::Audio));
        let negotiated = mid.and_then(|mid| {
            let writer = rtc.writer(mid)?;
            let params: Vec<(Codec, Pt)> = writer
                .payload_params()
                .map(|p| (p.spec().codec, p.pt()))
                .collect();
            // Opus first, as the real answer lists it.
            CODECS.into_iter().find_map(|(want, codec)| {
                let (_, pt) = params.iter().find(|(c, _)| *c == want)?;
                Some((mid, *pt, codec))
            })
        });
        let Some((mid, pt, codec)) = negotiated else {
            // Not necessarily a client bug (an opus_only fake meeting a G.711-only offer).
            let msg = "No supported audio codec in the offer.";
            return error_answer(400, "invalid_request_error", Some("invalid_offer"), msg);
        };
        let session_json = session.clone().unwrap_or(Value::Null);
        let mut brain =
            match FakeRealtime::new_webrtc(now, self.script.clone(), &session_json, codec.rate()) {
                Ok(brain) => brain,
                Err(r) => {
                    self.violate(format!("session part refused: {} {}", r.code, r.message));
                    let param = r.param.as_deref();
                    return error_json(
                        400,
                        "invalid_request_error",
                        Some(&r.code),
                        param,
                        &r.message,
                    );
                }
            };
        if let Some(origin) = self.origin {
            brain.set_origin(origin);
        }
        let (encoder, decoder) = match codec {
            AudioCodec::Opus => match (OpusEncoder::new(OPUS_RATE), OpusDecoder::new(OPUS_RATE)) {
                (Ok(e), Ok(d)) => (Some(e), Some(d)),
                (Err(e), _) | (_, Err(e)) => {
                    return error_answer(500, "server_error", None, &e.to_string());
                }
            },
            AudioCodec::Pcmu | AudioCodec::Pcma => (None, None),
        };
        let call_id = format!("rtc_{:04}", self.calls.len() + 1);
        let state = if self.mode.never_connect {
            CallState::Dead
        } else {
            CallState::Live
        };
        let record = CallRecord {
            call_id: call_id.clone(),
            created_at: self.since(now),
            headers: headers.to_vec(),
            session,
            offer_sdp: sdp,
            codec,
            connected_at: None,
            channel: None,
            dropped_at: None,
            hung_up_at: None,
            closed_at: None,
            rtp_in: 0,
            rtp_concealed: 0,
            rtp_late: 0,
            rtp_bad: 0,
            rtp_out: 0,
            rtp_out_ms: 0,
            codec_in: None,
            frames_unsent: 0,
            events_unsent: 0,
            channel_messages_in: 0,
            violations: Vec::new(),
            realtime: RealtimeReport::default(),
        };
        let mut call = Call {
            record,
            rtc,
            brain,
            state,
            mid,
            pt,
            channel: None,
            encoder,
            decoder,
            rtc_timeout: None,
            drop_after: self.mode.drop_after,
            drop_at: None,
            last_seq: None,
            rtp_clock: None,
            connected: false,
        };
        if call.state == CallState::Live {
            call.drain(now, self.origin, &mut self.transmits);
        }
        self.calls.push(call);
        let headers = vec![
            ("Content-Type".to_owned(), "application/sdp".to_owned()),
            (
                "Location".to_owned(),
                format!("/v1/realtime/calls/{call_id}"),
            ),
        ];
        (201, headers, answer.to_sdp_string().into_bytes())
    }

    /// Reads the offer and the optional session from a multipart or raw-SDP body.
    fn read_body(
        &mut self,
        content_type: &str,
        body: &[u8],
    ) -> Result<(String, Option<Value>), String> {
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media_type.as_str() {
            "application/sdp" => {
                let sdp = std::str::from_utf8(body).map_err(|_| "The SDP is not UTF-8.")?;
                Ok((sdp.to_owned(), None))
            }
            "multipart/form-data" => {
                let parts = parse_multipart(content_type, body)?;
                let mut sdp = None;
                let mut session = None;
                for part in parts {
                    let expected = match part.name.as_str() {
                        "sdp" => "application/sdp",
                        "session" => "application/json",
                        other => {
                            self.violate(format!("unexpected multipart part {other:?}"));
                            continue;
                        }
                    };
                    if let Some(ct) = &part.content_type
                        && !ct.to_ascii_lowercase().starts_with(expected)
                    {
                        self.violate(format!(
                            "part {:?} has Content-Type {ct:?}, expected {expected}",
                            part.name
                        ));
                    }
                    let text = String::from_utf8(part.body)
                        .map_err(|_| format!("Part '{}' is not UTF-8.", part.name))?;
                    let slot = if part.name == "sdp" {
                        &mut sdp
                    } else {
                        &mut session
                    };
                    if slot.replace(text).is_some() {
                        return Err(format!("Duplicate part '{}'.", part.name));
                    }
                }
                let sdp = sdp.ok_or("Missing required part: 'sdp'.")?;
                let session = match session {
                    None => None,
                    Some(text) => Some(serde_json::from_str::<Value>(&text).map_err(|e| {
                        format!("We could not parse the JSON body of the 'session' part. ({e})")
                    })?),
                };
                Ok((sdp, session))
            }
            _ => Err(format!(
                "Unsupported Content-Type {content_type:?}: expected multipart/form-data or application/sdp."
            )),
        }
    }

    fn hangup(&mut self, now: Instant, call_id: &str, headers: &[(String, String)]) -> HttpAnswer {
        if !authorized(headers) {
            self.violate(format!("hangup of {call_id} without Authorization"));
            return error_answer(
                401,
                "invalid_request_error",
                Some("invalid_api_key"),
                "You didn't provide an API key.",
            );
        }
        let at = self.since(now);
        let origin = self.origin;
        let Some(call) = self.calls.iter_mut().find(|c| c.record.call_id == call_id) else {
            let msg = format!("Call '{call_id}' not found.");
            return error_answer(404, "invalid_request_error", Some("not_found"), &msg);
        };
        if call.record.hung_up_at.is_none() {
            call.record.hung_up_at = Some(at);
        }
        call.brain.handle_closed(now);
        call.close(now, origin, &mut self.transmits);
        self.report.hangups.push((at, call_id.to_owned()));
        (200, Vec::new(), Vec::new())
    }
}

impl Call {
    fn poll_timeout(&self) -> Option<Instant> {
        if self.state != CallState::Live {
            return None;
        }
        [self.rtc_timeout, self.brain.poll_timeout(), self.drop_at]
            .into_iter()
            .flatten()
            .min()
    }

    fn on_timeout(&mut self, now: Instant, origin: Option<Instant>, out: &mut VecDeque<Datagram>) {
        if self.state != CallState::Live {
            return;
        }
        if self.drop_at.is_some_and(|t| t <= now) {
            // Consent lost: silence both ways, no close. The session ends server-side.
            self.record.dropped_at = Some(since(origin, now));
            self.brain.handle_closed(now);
            self.rtc.disconnect();
            self.state = CallState::Dead;
            return;
        }
        if self.rtc_timeout.is_some_and(|t| t <= now) {
            let _ = self.rtc.handle_input(Input::Timeout(now));
        }
        self.brain.handle_timeout(now);
        self.pump_brain(now, origin);
        self.drain(now, origin, out);
    }

    /// Drains the `Rtc` until it asks for a timeout in the future (str0m's run loop).
    fn drain(&mut self, now: Instant, origin: Option<Instant>, out: &mut VecDeque<Datagram>) {
        let mut repeats = 0;
        while self.state == CallState::Live {
            if !self.rtc.is_alive() {
                self.end(now, origin);
                break;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) if t <= now && repeats < MAX_TIMEOUT_REPEATS => {
                    // The pitfall: a deadline at or before `now` wants `now` again.
                    repeats += 1;
                    let _ = self.rtc.handle_input(Input::Timeout(now));
                }
                Ok(Output::Timeout(t)) => {
                    let floor = now.checked_add(Duration::from_millis(1)).unwrap_or(now);
                    self.rtc_timeout = Some(if t <= now { floor } else { t });
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    out.push_back((t.source, t.destination, Vec::from(t.contents)));
                }
                Ok(Output::Event(e)) => self.on_event(now, origin, e),
                Err(_) => {
                    self.rtc.disconnect();
                    self.end(now, origin);
                }
            }
        }
    }

    // str0m's `Event` is `#[non_exhaustive]`; everything not listed is of no interest here.
    #[allow(clippy::wildcard_enum_match_arm)]
    fn on_event(&mut self, now: Instant, origin: Option<Instant>, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                if self.record.connected_at.is_none() {
                    self.record.connected_at = Some(since(origin, now));
                    self.drop_at = self.drop_after.and_then(|d| now.checked_add(d));
                }
            }
            Event::ChannelOpen(id, label) => {
                if self.channel.is_some() {
                    let msg = format!("a second data channel {label:?}; only one is used");
                    self.record.violations.push(msg);
                    return;
                }
                if label != CHANNEL_LABEL {
                    let msg = format!("data channel label {label:?}, expected {CHANNEL_LABEL:?}");
                    self.record.violations.push(msg);
                }
                self.channel = Some(id);
                self.record.channel = Some((since(origin, now), label));
                self.brain.handle_channel_open(now);
                self.pump_brain(now, origin);
            }
            Event::ChannelData(data) => {
                if Some(data.id) != self.channel {
                    return;
                }
                self.record.channel_messages_in += 1;
                if data.binary {
                    let msg = "a binary message on the data channel; events are text".to_owned();
                    self.record.violations.push(msg);
                }
                // The brain answers what is not JSON with `error` and records it.
                let text = String::from_utf8_lossy(&data.data);
                self.brain.handle_text(now, &text);
                self.pump_brain(now, origin);
            }
            Event::ChannelClose(id) if Some(id) == self.channel => {
                self.brain.handle_closed(now);
            }
            Event::MediaData(data) => {
                self.on_media(now, &data);
                self.pump_brain(now, origin);
            }
            Event::Closed => {
                self.brain.handle_closed(now);
                self.end(now, origin);
            }
            _ => {}
        }
    }

    /// Decodes one RTP payload (concealing a gap before it) and feeds the brain.
    fn on_media(&mut self, now: Instant, data: &MediaData) {
        let Some(codec) = AudioCodec::of(data.params.spec().codec) else {
            self.record.rtp_bad += 1;
            return;
        };
        let first = **data.seq_range.start();
        let last = **data.seq_range.end();
        if self.last_seq.is_some_and(|prev| first <= prev) {
            self.record.rtp_late += 1;
            return;
        }
        let lost = self
            .last_seq
            .map_or(0, |prev| first.saturating_sub(prev + 1))
            .min(MAX_CONCEALED);
        self.last_seq = Some(last);
        let rate = codec.rate();
        let mut samples = Vec::new();
        for k in 0..lost {
            match (&mut self.decoder, codec) {
                (Some(dec), AudioCodec::Opus) => {
                    // The last lost frame can be rebuilt from this packet's in-band FEC.
                    let next = (k + 1 == lost).then_some(&data.data[..]);
                    let _ = dec.conceal(next, &mut samples);
                }
                _ => samples.extend(std::iter::repeat_n(0i16, (rate / 50) as usize)),
            }
            self.record.rtp_concealed += 1;
        }
        let decoded = match (&mut self.decoder, codec) {
            (Some(dec), AudioCodec::Opus) => dec.decode(&data.data, &mut samples).is_ok(),
            (_, AudioCodec::Pcmu) => {
                samples.extend(data.data.iter().map(|&b| g711::ulaw_decode(b)));
                true
            }
            (_, AudioCodec::Pcma) => {
                samples.extend(data.data.iter().map(|&b| g711::alaw_decode(b)));
                true
            }
            (None, AudioCodec::Opus) => false,
        };
        if decoded {
            self.record.rtp_in += 1;
            self.record.codec_in = Some(codec);
        } else {
            self.record.rtp_bad += 1;
        }
        self.brain.handle_input_samples(now, &samples, rate);
    }

    /// Moves the brain's server events onto the data channel and its frames onto RTP.
    fn pump_brain(&mut self, now: Instant, origin: Option<Instant>) {
        while let Some(output) = self.brain.poll_output() {
            match output {
                FakeServerOutput::Text(text) => {
                    let sent = self
                        .channel
                        .and_then(|id| self.rtc.channel(id))
                        .is_some_and(|mut ch| ch.write(false, text.as_bytes()).unwrap_or(false));
                    if !sent {
                        self.record.events_unsent += 1;
                    }
                }
                // The session ended server-side (expiry, scripted drop): end the call.
                FakeServerOutput::Close { .. } => {
                    let _ = self.rtc.close();
                    if self.record.closed_at.is_none() {
                        self.record.closed_at = Some(since(origin, now));
                    }
                }
            }
        }
        while let Some(frame) = self.brain.poll_audio_frame() {
            self.send_frame(&frame);
        }
    }

    fn send_frame(&mut self, frame: &AudioFrame) {
        if !self.connected || self.state != CallState::Live {
            self.record.frames_unsent += 1;
            return;
        }
        let codec = self.record.codec;
        let mut payload = Vec::new();
        let encoded = match (&mut self.encoder, codec) {
            (Some(enc), AudioCodec::Opus) => enc.encode(&frame.samples, &mut payload).is_ok(),
            (_, AudioCodec::Pcmu) => {
                payload.extend(frame.samples.iter().map(|&s| g711::ulaw_encode(s)));
                true
            }
            (_, AudioCodec::Pcma) => {
                payload.extend(frame.samples.iter().map(|&s| g711::alaw_encode(s)));
                true
            }
            (None, AudioCodec::Opus) => false,
        };
        let (frequency, step) = codec.clock();
        let ts = match self.rtp_clock {
            None => {
                self.rtp_clock = Some((frame.at, 0));
                0
            }
            Some((first, last)) => {
                let elapsed = frame.at.saturating_duration_since(first);
                let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                let ticks = micros.saturating_mul(u64::from(frequency.get())) / 1_000_000;
                let ts = ticks.max(last.saturating_add(step));
                self.rtp_clock = Some((first, ts));
                ts
            }
        };
        let written = encoded
            && self.rtc.writer(self.mid).is_some_and(|w| {
                w.write(self.pt, frame.at, MediaTime::new(ts, frequency), payload)
                    .is_ok()
            });
        if written {
            self.record.rtp_out += 1;
            self.record.rtp_out_ms += 20;
        } else {
            self.record.frames_unsent += 1;
        }
    }

    /// Starts a local close (hangup or session end): close output still drains.
    fn close(&mut self, now: Instant, origin: Option<Instant>, out: &mut VecDeque<Datagram>) {
        if self.state != CallState::Live {
            self.end(now, origin);
            return;
        }
        let _ = self.rtc.close();
        self.drain(now, origin, out);
    }

    fn end(&mut self, now: Instant, origin: Option<Instant>) {
        self.state = CallState::Dead;
        if self.record.closed_at.is_none() {
            self.record.closed_at = Some(since(origin, now));
        }
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

/// The `a=mid` of the offer's first audio section.
fn offer_audio_mid(sdp: &str) -> Option<Mid> {
    let mut in_audio = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            in_audio = m.starts_with("audio ");
        } else if in_audio && let Some(mid) = line.strip_prefix("a=mid:") {
            return Some(Mid::from(mid.trim()));
        }
    }
    None
}

/// Splits an absolute URL or a path into (path, query).
fn split_url(url: &str) -> (&str, &str) {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .map_or(url, |r| r.find('/').map_or("", |i| &r[i..]));
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    rest.split_once('?').unwrap_or((rest, ""))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `Authorization: Bearer <non-empty key>`.
fn authorized(headers: &[(String, String)]) -> bool {
    header(headers, "authorization")
        .and_then(|v| {
            v.get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .and(v.get(7..))
        })
        .is_some_and(|key| !key.trim().is_empty())
}

/// `{"error":{"message","type","code","param"}}` with `status`.
fn error_json(
    status: u16,
    kind: &str,
    code: Option<&str>,
    param: Option<&str>,
    message: &str,
) -> HttpAnswer {
    let body = json!({"error": {"message": message, "type": kind, "code": code, "param": param}});
    let headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    (status, headers, body.to_string().into_bytes())
}

fn error_answer(status: u16, kind: &str, code: Option<&str>, message: &str) -> HttpAnswer {
    error_json(status, kind, code, None, message)
}

/// The scripted refusal of [`WebRtcFakeMode::refuse_with`].
fn scripted_refusal(status: u16) -> HttpAnswer {
    let (kind, code, message) = match status {
        401 => (
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided.",
        ),
        403 => (
            "invalid_request_error",
            "unsupported_country_region_territory",
            "Country, region, or territory not supported.",
        ),
        429 => (
            "insufficient_quota",
            "insufficient_quota",
            "You exceeded your current quota.",
        ),
        500..=599 => ("server_error", "server_error", "The server had an error."),
        _ => (
            "invalid_request_error",
            "invalid_request",
            "The request could not be processed.",
        ),
    };
    error_answer(status, kind, Some(code), message)
}

/// One part of a `multipart/form-data` body.
#[derive(Debug)]
struct Part {
    name: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// Parses `multipart/form-data` (RFC 7578): the boundary comes from `content_type`.
fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|b| (1..=70).contains(&b.len()))
        .ok_or("Missing or invalid multipart boundary.")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut pos = find(body, &delimiter, 0).ok_or("No multipart delimiter in the body.")?;
    let mut parts = Vec::new();
    loop {
        pos += delimiter.len();
        let rest = body.get(pos..).unwrap_or_default();
        if rest.starts_with(b"--") {
            return if parts.is_empty() {
                Err("The multipart body has no parts.".to_owned())
            } else {
                Ok(parts)
            };
        }
        pos += line_break(rest).ok_or("A multipart delimiter is not followed by a line break.")?;
        // Part headers up to the blank line.
        let mut name = None;
        let mut part_type = None;
        loop {
            let line_end = find(body, b"\n", pos).ok_or("Unterminated part headers.")?;
            let line = body.get(pos..line_end).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            pos = line_end + 1;
            if line.is_empty() {
                break;
            }
            let line = std::str::from_utf8(line).map_err(|_| "A part header is not UTF-8.")?;
            let (key, value) = line.split_once(':').ok_or("A part header has no colon.")?;
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                let mut params = value.split(';');
                let kind = params.next().unwrap_or("").trim();
                if !kind.eq_ignore_ascii_case("form-data") {
                    return Err(format!("Content-Disposition {kind:?} is not form-data."));
                }
                name = params
                    .filter_map(|p| p.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("name"))
                    .map(|(_, v)| v.trim().trim_matches('"').to_owned());
            } else if key.trim().eq_ignore_ascii_case("content-type") {
                part_type = Some(value.trim().to_owned());
            }
        }
        let name = name.ok_or("A part has no Content-Disposition name.")?;
        let next = find(body, &delimiter, pos).ok_or("The multipart body is not terminated.")?;
        // The line break before the delimiter belongs to the delimiter.
        let content = body.get(pos..next).unwrap_or_default();
        let content = content
            .strip_suffix(b"\r\n")
            .or_else(|| content.strip_suffix(b"\n"))
            .ok_or("A multipart delimiter does not start a line.")?;
        parts.push(Part {
            name,
            content_type: part_type,
            body: content.to_vec(),
        });
        pos = next;
    }
}

/// The length of a leading CRLF or LF.
fn line_break(s: &[u8]) -> Option<usize> {
    if s.starts_with(b"\r\n") {
        Some(2)
    } else if s.starts_with(b"\n") {
        Some(1)
    } else {
        None
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::fake_realtime::{BufferEvent, ScriptedResponse};
    use crate::sim::net::{NetParams, SimNet};
    use crate::sim::speech::speech_like;
    use str0m::change::{SdpAnswer, SdpPendingOffer};
    use str0m::media::Direction;

    const BOUNDARY: &str = "barbara-7MA4YWxkTrZu0gW";
    const URL: &str = "https://api.openai.com/v1/realtime/calls";

    fn client_addr() -> SocketAddr {
        "10.0.0.1:50000".parse().unwrap()
    }

    fn server_addr() -> SocketAddr {
        "10.0.0.2:3478".parse().unwrap()
    }

    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn session_json() -> Value {
        json!({
            "type": "realtime",
            "model": "gpt-realtime",
            "instructions": "Be brief.",
            "audio": {
                "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 300}},
                "output": {"voice": "marin"},
            },
        })
    }

    fn multipart(sdp: &str, session: &Value) -> Vec<u8> {
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"sdp\"\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"session\"\r\nContent-Type: application/json\r\n\r\n{session}\r\n\
             --{BOUNDARY}--\r\n"
        )
        .into_bytes()
    }

    fn headers() -> Vec<(String, String)> {
        vec![
            ("Authorization".into(), "Bearer sk-test".into()),
            (
                "Content-Type".into(),
                format!("multipart/form-data; boundary={BOUNDARY}"),
            ),
            ("Accept".into(), "application/sdp".into()),
        ]
    }

    fn error_of(answer: &HttpAnswer) -> Value {
        let v: Value = serde_json::from_slice(&answer.2).unwrap();
        let e = v["error"].clone();
        for field in ["message", "type", "code", "param"] {
            assert!(e.get(field).is_some(), "{field} in {v}");
        }
        e
    }

    /// Which codecs the offerer offers.
    #[derive(Clone, Copy)]
    enum Offer {
        OpusAndPcmu,
        PcmuOnly,
    }

    /// An offerer `Rtc` (the bridge's role) with audio and `oai-events`, and its offer.
    fn offerer(now: Instant, offer: Offer) -> (Rtc, Mid, ChannelId, SdpPendingOffer, String) {
        let builder = Rtc::builder().clear_codecs();
        let builder = match offer {
            Offer::OpusAndPcmu => builder.enable_opus(true, false).enable_pcmu(true, false),
            Offer::PcmuOnly => builder.enable_pcmu(true, false),
        };
        let mut rtc = builder.build(now);
        rtc.add_local_candidate(Candidate::host(client_addr(), "udp").unwrap())
            .unwrap();
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let cid = api.add_channel(CHANNEL_LABEL.into());
        let (offer, pending) = api.apply().unwrap();
        (rtc, mid, cid, pending, offer.to_sdp_string())
    }

    /// The offerer and the fake on a virtual clock, with a `SimNet` each way.
    struct Harness {
        base: Instant,
        now: Instant,
        fake: FakeRealtimeWebRtc,
        rtc: Rtc,
        mid: Mid,
        cid: ChannelId,
        timeout: Instant,
        up: SimNet<Datagram>,
        down: SimNet<Datagram>,
        connected_at: Option<Duration>,
        channel_open: bool,
        closed: bool,
        /// Server events received on the channel.
        events: Vec<(Duration, Value)>,
        /// RTP received from the fake: (when, pt, rtp time in ticks, payload length).
        media: Vec<(Duration, Pt, u64, usize)>,
        talk_sample: u64,
        talk_ts: u64,
        encoder: OpusEncoder,
    }

    impl Harness {
        fn new(script: RealtimeScript, mode: WebRtcFakeMode, offer: Offer, net: NetParams) -> Self {
            let base = origin();
            let mut fake = FakeRealtimeWebRtc::new(script, mode, server_addr());
            fake.set_origin(base);
            let (rtc, mid, cid, pending, sdp) = offerer(base, offer);
            let answer = fake.handle_http(
                base,
                "POST",
                URL,
                &headers(),
                &multipart(&sdp, &session_json()),
            );
            assert_eq!(answer.0, 201, "{}", String::from_utf8_lossy(&answer.2));
            let answer = SdpAnswer::from_sdp_string(std::str::from_utf8(&answer.2).unwrap())
                .expect("the answer parses");
            let mut h = Self {
                base,
                now: base,
                fake,
                rtc,
                mid,
                cid,
                timeout: base,
                up: SimNet::new(1, net),
                down: SimNet::new(2, net),
                connected_at: None,
                channel_open: false,
                closed: false,
                events: Vec::new(),
                media: Vec::new(),
                talk_sample: 0,
                talk_ts: 0,
                encoder: OpusEncoder::new(OPUS_RATE).unwrap(),
            };
            h.rtc.sdp_api().accept_answer(pending, answer).unwrap();
            h.drain_offerer();
            h.move_fake_transmits();
            h
        }

        fn at(&self) -> Duration {
            self.now - self.base
        }

        fn drain_offerer(&mut self) {
            let mut repeats = 0;
            while !self.closed {
                let Ok(output) = self.rtc.poll_output() else {
                    // The peer's DTLS close ends the offerer with an error.
                    self.closed = true;
                    return;
                };
                match output {
                    Output::Timeout(t) if t <= self.now && repeats < 16 => {
                        repeats += 1;
                        self.rtc.handle_input(Input::Timeout(self.now)).unwrap();
                    }
                    Output::Timeout(t) => {
                        self.timeout = t.max(self.now + ms(1));
                        return;
                    }
                    Output::Transmit(t) => {
                        let d = (t.source, t.destination, Vec::from(t.contents));
                        self.up.send(self.now, d);
                    }
                    Output::Event(e) => self.on_event(e),
                }
            }
        }

        fn on_event(&mut self, e: Event) {
            let at = self.at();
            match e {
                Event::Connected => self.connected_at = Some(at),
                Event::ChannelOpen(id, _) if id == self.cid => self.channel_open = true,
                Event::ChannelData(d) => {
                    let v: Value = serde_json::from_slice(&d.data).unwrap();
                    self.events.push((at, v));
                }
                Event::MediaData(d) => {
                    self.media.push((at, d.pt, d.time.numer(), d.data.len()));
                }
                Event::Closed => self.closed = true,
                _ => {}
            }
        }

        fn move_fake_transmits(&mut self) {
            while let Some(d) = self.fake.poll_transmit() {
                self.down.send(self.now, d);
            }
        }

        /// Handles the earliest thing due at or before `limit`; false when nothing is.
        fn step(&mut self, limit: Instant) -> bool {
            let next = [
                (!self.closed).then_some(self.timeout),
                self.fake.poll_timeout(),
                self.up.next_delivery(),
                self.down.next_delivery(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|t| *t <= limit) else {
                self.now = self.now.max(limit);
                return false;
            };
            self.now = self.now.max(next);
            let now = self.now;
            while let Some((src, dst, data)) = self.up.poll_delivery(now) {
                self.fake.handle_udp(now, src, dst, &data);
            }
            while let Some((src, dst, data)) = self.down.poll_delivery(now) {
                if let Ok(r) = Receive::new(Protocol::Udp, src, dst, &data)
                    && !self.closed
                {
                    self.rtc.handle_input(Input::Receive(now, r)).unwrap();
                }
            }
            if self.timeout <= now && !self.closed {
                self.rtc.handle_input(Input::Timeout(now)).unwrap();
            }
            self.drain_offerer();
            self.fake.handle_timeout(now);
            self.move_fake_transmits();
            true
        }

        fn run_for(&mut self, d: Duration) {
            let target = self.now + d;
            let mut steps = 0;
            while self.step(target) {
                steps += 1;
                assert!(steps < 200_000, "simulation did not settle");
            }
        }

        fn connect(&mut self) {
            self.run_for(ms(1000));
            assert!(self.connected_at.is_some() && self.channel_open, "not up");
        }

        fn send(&mut self, event: Value) {
            let text = event.to_string();
            let mut ch = self.rtc.channel(self.cid).expect("channel open");
            assert!(ch.write(false, text.as_bytes()).unwrap());
            self.drain_offerer();
        }

        /// Sends 20 ms Opus frames of speech (or silence) for `total` ms, in real time.
        fn talk(&mut self, loud: bool, total: u64) {
            let pt = self
                .rtc
                .writer(self.mid)
                .unwrap()
                .payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .unwrap()
                .pt();
            for _ in 0..total / 20 {
                let mut pcm = [0i16; 480];
                if loud {
                    speech_like(OPUS_RATE, 0, self.talk_sample, &mut pcm);
                }
                self.talk_sample += 480;
                let mut packet = Vec::new();
                self.encoder.encode(&pcm, &mut packet).unwrap();
                let time = MediaTime::new(self.talk_ts, Frequency::FORTY_EIGHT_KHZ);
                self.talk_ts += 960;
                let now = self.now;
                self.rtc
                    .writer(self.mid)
                    .unwrap()
                    .write(pt, now, time, packet)
                    .unwrap();
                self.drain_offerer();
                self.run_for(ms(20));
            }
        }

        fn types(&self) -> Vec<&str> {
            self.events
                .iter()
                .map(|(_, e)| e["type"].as_str().unwrap())
                .collect()
        }

        fn first(&self, ty: &str) -> (Duration, &Value) {
            self.events
                .iter()
                .find(|(_, e)| e["type"] == ty)
                .map(|(t, e)| (*t, e))
                .unwrap_or_else(|| panic!("no {ty} in {:?}", self.types()))
        }
    }

    fn script(audio_ms: u32) -> RealtimeScript {
        RealtimeScript {
            responses: vec![ScriptedResponse {
                text: "Hello, how can I help?".into(),
                audio_ms,
                tool_calls: Vec::new(),
            }],
            ..RealtimeScript::default()
        }
    }

    fn harness(audio_ms: u32) -> Harness {
        Harness::new(
            script(audio_ms),
            WebRtcFakeMode::default(),
            Offer::OpusAndPcmu,
            NetParams::default(),
        )
    }

    #[test]
    fn call_creation_answers_201_with_an_sdp_the_offerer_accepts() {
        fastrand::seed(1);
        let base = origin();
        let mut fake =
            FakeRealtimeWebRtc::new(script(600), WebRtcFakeMode::default(), server_addr());
        let (mut rtc, _, _, pending, sdp) = offerer(base, Offer::OpusAndPcmu);
        let (status, headers, body) = fake.handle_http(
            base,
            "POST",
            URL,
            &headers(),
            &multipart(&sdp, &session_json()),
        );
        assert_eq!(status, 201);
        assert_eq!(
            headers,
            [
                ("Content-Type".to_owned(), "application/sdp".to_owned()),
                (
                    "Location".to_owned(),
                    "/v1/realtime/calls/rtc_0001".to_owned()
                ),
            ]
        );
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("opus/48000/2"), "{text}");
        assert!(text.contains("PCMU/8000"), "{text}");
        assert!(text.contains("10.0.0.2 3478 typ host"), "{text}");
        assert!(text.contains("webrtc-datachannel"), "{text}");
        assert!(
            text.contains("a=setup:active"),
            "OpenAI is the DTLS client: {text}"
        );
        let answer = SdpAnswer::from_sdp_string(&text).unwrap();
        rtc.sdp_api().accept_answer(pending, answer).unwrap();
        let report = fake.report();
        let call = &report.calls[0];
        assert_eq!(call.call_id, "rtc_0001");
        assert_eq!(call.session.as_ref(), Some(&session_json()));
        assert_eq!(call.codec, AudioCodec::Opus);
        assert_eq!(call.offer_sdp, sdp);
        assert!(
            call.headers
                .iter()
                .any(|(k, v)| k == "Authorization" && v == "Bearer sk-test")
        );
        assert_eq!(report.requests[0].status, 201);
        assert!(
            report.all_violations().is_empty(),
            "{:?}",
            report.all_violations()
        );
        // Nothing is sent on the channel before it opens.
        assert_eq!(call.realtime.responses.len(), 0);
    }

    #[test]
    fn refusals_carry_the_documented_error_json() {
        fastrand::seed(1);
        let base = origin();
        let (_, _, _, _, sdp) = offerer(base, Offer::OpusAndPcmu);
        let body = multipart(&sdp, &session_json());
        let post = |mode: WebRtcFakeMode, url: &str, h: &[(String, String)], body: &[u8]| {
            let mut fake = FakeRealtimeWebRtc::new(script(600), mode, server_addr());
            let answer = fake.handle_http(base, "POST", url, h, body);
            (answer, fake.report())
        };
        let ok = WebRtcFakeMode::default;

        let refuse = |status| WebRtcFakeMode {
            refuse_with: Some(status),
            ..WebRtcFakeMode::default()
        };
        let (a, r) = post(refuse(401), URL, &headers(), &body);
        let e = error_of(&a);
        assert_eq!(a.0, 401);
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("invalid_request_error"), Some("invalid_api_key"))
        );
        assert!(r.calls.is_empty() && r.violations.is_empty());
        let (a, _) = post(refuse(400), URL, &headers(), &body);
        assert_eq!(
            (a.0, error_of(&a)["type"].as_str()),
            (400, Some("invalid_request_error"))
        );

        let no_auth: Vec<(String, String)> = headers()
            .into_iter()
            .filter(|(k, _)| k != "Authorization")
            .collect();
        let (a, r) = post(ok(), URL, &no_auth, &body);
        assert_eq!(
            (a.0, error_of(&a)["code"].as_str()),
            (401, Some("invalid_api_key"))
        );
        assert_eq!(r.violations.len(), 1);

        let truncated = &body[..body.len() - 30];
        let (a, r) = post(ok(), URL, &headers(), truncated);
        assert_eq!(a.0, 400, "{}", String::from_utf8_lossy(&a.2));
        assert_eq!(error_of(&a)["type"], "invalid_request_error");
        assert_eq!(r.violations.len(), 1);

        let no_sdp = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n{{}}\r\n--{BOUNDARY}--\r\n"
        );
        let (a, r) = post(ok(), URL, &headers(), no_sdp.as_bytes());
        assert_eq!(a.0, 400);
        assert!(r.violations[0].contains("'sdp'"), "{:?}", r.violations);

        let beta = json!({"type": "realtime", "modalities": ["audio"]});
        let (a, r) = post(ok(), URL, &headers(), &multipart(&sdp, &beta));
        let e = error_of(&a);
        assert_eq!(a.0, 400);
        assert_eq!(
            (e["code"].as_str(), e["param"].as_str()),
            (Some("unknown_parameter"), Some("session.modalities"))
        );
        assert_eq!(r.violations.len(), 1);

        let (a, r) = post(
            ok(),
            &format!("{URL}?model=gpt-realtime"),
            &headers(),
            &body,
        );
        assert_eq!(a.0, 201);
        assert!(r.violations[0].contains("model="), "{:?}", r.violations);

        // Plain text fields (no part Content-Type) and raw SDP are accepted.
        let plain = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"sdp\"\r\n\r\n{sdp}\r\n--{BOUNDARY}--\r\n"
        );
        let (a, r) = post(ok(), "/v1/realtime/calls", &headers(), plain.as_bytes());
        assert_eq!(a.0, 201);
        assert_eq!(r.calls[0].session, None);
        assert!(r.violations.is_empty());
        let raw = vec![
            ("authorization".to_owned(), "Bearer ek_1".to_owned()),
            ("content-type".to_owned(), "application/sdp".to_owned()),
        ];
        assert_eq!(post(ok(), URL, &raw, sdp.as_bytes()).0.0, 201);

        let (a, _) = post(
            ok(),
            "https://api.openai.com/v1/realtime/sessions",
            &headers(),
            &body,
        );
        assert_eq!(a.0, 404);
        let mut fake = FakeRealtimeWebRtc::new(script(600), ok(), server_addr());
        assert_eq!(fake.handle_http(base, "GET", URL, &headers(), b"").0, 404);
        let hangup = "https://api.openai.com/v1/realtime/calls/rtc_9999/hangup";
        assert_eq!(
            fake.handle_http(base, "POST", hangup, &headers(), b"").0,
            404
        );

        // Opus only: G.711 leaves the answer; a G.711-only offer is refused.
        let opus_only = WebRtcFakeMode {
            opus_only: true,
            ..WebRtcFakeMode::default()
        };
        let (a, _) = post(opus_only.clone(), URL, &headers(), &body);
        let text = String::from_utf8(a.2).unwrap();
        assert!(text.contains("opus/48000/2") && !text.contains("PCMU") && !text.contains("PCMA"));
        let (_, _, _, _, pcmu_sdp) = offerer(base, Offer::PcmuOnly);
        let (a, _) = post(
            opus_only,
            URL,
            &headers(),
            &multipart(&pcmu_sdp, &session_json()),
        );
        assert_eq!(a.0, 400);
    }

    #[test]
    fn offerer_connects_and_gets_session_created_on_oai_events() {
        fastrand::seed(1);
        let mut h = harness(600);
        h.connect();
        let (_, created) = h.first("session.created");
        assert_eq!(h.types()[0], "session.created");
        assert_eq!(created["session"]["instructions"], "Be brief.");
        assert_eq!(created["session"]["audio"]["output"]["voice"], "marin");
        assert_eq!(created["session"]["model"], "gpt-realtime");
        let report = h.fake.report();
        let call = &report.calls[0];
        assert!(call.connected_at.is_some());
        assert_eq!(
            call.channel.as_ref().map(|c| c.1.as_str()),
            Some(CHANNEL_LABEL)
        );
        assert!(
            report.all_violations().is_empty(),
            "{:?}",
            report.all_violations()
        );
        // A session.update over the channel works as on the WebSocket.
        h.send(json!({"type": "session.update", "session": {"type": "realtime", "instructions": "Hi."}}));
        h.run_for(ms(100));
        assert_eq!(
            h.first("session.updated").1["session"]["instructions"],
            "Hi."
        );
    }

    #[test]
    fn response_create_plays_paced_rtp_with_buffer_events() {
        fastrand::seed(1);
        let mut h = harness(1000);
        h.connect();
        let asked = h.at();
        h.send(json!({"type": "response.create"}));
        h.run_for(ms(3000));
        // 50 frames of 20 ms, every 20 ms: real time, not a burst.
        assert_eq!(h.media.len(), 50, "{:?}", h.media.len());
        for w in h.media.windows(2) {
            assert_eq!(w[1].0 - w[0].0, ms(20));
            assert_eq!(w[1].2 - w[0].2, 960, "Opus RTP clock: 960 ticks per 20 ms");
        }
        let first_media = h.media[0].0;
        let last_media = h.media[49].0;
        assert!(first_media >= asked + ms(300), "{first_media:?} {asked:?}");
        let (started, _) = h.first("output_audio_buffer.started");
        let (done, done_ev) = h.first("response.done");
        let (stopped, stopped_ev) = h.first("output_audio_buffer.stopped");
        assert_eq!(done_ev["response"]["status"], "completed");
        assert_eq!(stopped_ev["response_id"], done_ev["response"]["id"]);
        assert!(
            started <= first_media + ms(5),
            "{started:?} {first_media:?}"
        );
        assert!(done < stopped, "response.done before the buffer drains");
        assert_eq!(
            stopped,
            last_media + ms(20),
            "stopped one frame after the last"
        );
        assert!(!h.types().contains(&"response.output_audio.delta"));
        let transcript: String = h
            .events
            .iter()
            .filter(|(_, e)| e["type"] == "response.output_audio_transcript.delta")
            .map(|(_, e)| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(transcript, "Hello, how can I help?");
        let report = h.fake.report();
        let call = &report.calls[0];
        assert_eq!((call.rtp_out, call.rtp_out_ms), (50, 1000));
        let rt = &call.realtime;
        assert_eq!(rt.audio_played_ms, 1000);
        assert_eq!(rt.responses[0].audio_ms_played, 1000);
        let kinds: Vec<BufferEvent> = rt.output_buffer.iter().map(|b| b.event).collect();
        assert_eq!(kinds, [BufferEvent::Started, BufferEvent::Stopped]);
        assert!(
            report.all_violations().is_empty(),
            "{:?}",
            report.all_violations()
        );
    }

    #[test]
    fn loud_caller_audio_cuts_the_response_server_side() {
        fastrand::seed(1);
        let mut h = harness(3000);
        h.connect();
        h.send(json!({"type": "response.create"}));
        h.talk(false, 800);
        h.talk(true, 200);
        h.run_for(ms(2000));
        let (speech, _) = h.first("input_audio_buffer.speech_started");
        let (cleared, cleared_ev) = h.first("output_audio_buffer.cleared");
        let (_, done) = h.first("response.done");
        assert_eq!(done["response"]["status"], "cancelled");
        assert_eq!(
            done["response"]["status_details"]["reason"],
            "turn_detected"
        );
        assert_eq!(cleared_ev["response_id"], done["response"]["id"]);
        assert!(cleared >= speech);
        assert!(!h.types().contains(&"output_audio_buffer.stopped"));
        let last_media = h.media.last().unwrap().0;
        assert!(last_media <= cleared + ms(20), "RTP stops with the clear");
        let report = h.fake.report();
        let rt = &report.calls[0].realtime;
        let played = rt.responses[0].audio_ms_played;
        assert!(played > 300 && played < 1000, "{played}");
        assert_eq!(u64::from(played), report.calls[0].rtp_out_ms);
        let last = rt.output_buffer.last().unwrap();
        assert_eq!(
            (last.event, last.played_ms),
            (BufferEvent::ClearedByVad, played)
        );
        assert!(report.calls[0].rtp_in >= 50);
        assert!(
            report.all_violations().is_empty(),
            "{:?}",
            report.all_violations()
        );
    }

    #[test]
    fn client_clear_is_accepted_and_append_is_a_violation() {
        fastrand::seed(1);
        let mut h = harness(3000);
        h.connect();
        h.send(json!({"type": "response.create"}));
        h.run_for(ms(700));
        h.send(json!({"type": "response.cancel"}));
        h.send(json!({"type": "output_audio_buffer.clear"}));
        let sent = h.at();
        h.run_for(ms(500));
        let (cleared, _) = h.first("output_audio_buffer.cleared");
        assert!(cleared >= sent);
        assert!(h.media.last().unwrap().0 <= cleared + ms(20));
        let report = h.fake.report();
        let rt = &report.calls[0].realtime;
        assert_eq!(
            rt.output_buffer.last().unwrap().event,
            BufferEvent::ClearedByClient
        );
        assert!(rt.violations.is_empty(), "{:?}", rt.violations);
        h.send(json!({"type": "input_audio_buffer.append", "audio": "AAAA"}));
        h.run_for(ms(100));
        assert_eq!(h.events.last().unwrap().1["type"], "error");
        assert_eq!(h.fake.report().all_violations().len(), 1);
    }

    #[test]
    fn never_connect_never_connects() {
        fastrand::seed(1);
        let mode = WebRtcFakeMode {
            never_connect: true,
            ..WebRtcFakeMode::default()
        };
        let mut h = Harness::new(script(600), mode, Offer::OpusAndPcmu, NetParams::default());
        h.run_for(ms(5000));
        assert_eq!(h.connected_at, None);
        assert!(!h.channel_open);
        let report = h.fake.report();
        assert_eq!(report.calls[0].connected_at, None);
        assert!(report.udp_ignored > 0);
        assert_eq!(h.down.stats().sent, 0, "the fake sends nothing");
    }

    #[test]
    fn drop_after_silences_the_call() {
        fastrand::seed(1);
        let mode = WebRtcFakeMode {
            drop_after: Some(ms(1500)),
            ..WebRtcFakeMode::default()
        };
        let mut h = Harness::new(script(5000), mode, Offer::OpusAndPcmu, NetParams::default());
        h.connect();
        h.send(json!({"type": "response.create"}));
        h.run_for(ms(3000));
        let report = h.fake.report();
        let call = &report.calls[0];
        let dropped = call.dropped_at.unwrap();
        assert_eq!(dropped, call.connected_at.unwrap() + ms(1500));
        let sent_before = h.down.stats().sent;
        h.run_for(ms(3000));
        assert_eq!(h.down.stats().sent, sent_before, "nothing after the drop");
        assert!(h.media.last().unwrap().0 <= dropped + ms(40));
        assert!(call.rtp_out > 0 && call.rtp_out_ms < 5000);
        assert_eq!(h.fake.poll_timeout(), None);
    }

    #[test]
    fn hangup_closes_the_call() {
        fastrand::seed(1);
        let mut h = harness(5000);
        h.connect();
        h.send(json!({"type": "response.create"}));
        h.run_for(ms(800));
        let url = "https://api.openai.com/v1/realtime/calls/rtc_0001/hangup";
        let (status, _, _) = h.fake.handle_http(h.now, "POST", url, &headers(), b"");
        assert_eq!(status, 200);
        h.move_fake_transmits();
        let at = h.at();
        h.run_for(ms(2000));
        assert!(h.media.last().unwrap().0 <= at + ms(40));
        let report = h.fake.report();
        assert_eq!(report.hangups, [(at, "rtc_0001".to_owned())]);
        assert_eq!(report.calls[0].hung_up_at, Some(at));
        assert!(report.calls[0].realtime.closed_by_client);
        assert_eq!(h.fake.poll_timeout(), None);
        assert!(h.closed, "the offerer saw the DTLS close");
    }

    #[test]
    fn pcmu_only_offer_gets_pcmu_audio() {
        fastrand::seed(1);
        let mut h = Harness::new(
            script(400),
            WebRtcFakeMode::default(),
            Offer::PcmuOnly,
            NetParams::default(),
        );
        h.connect();
        assert_eq!(h.fake.report().calls[0].codec, AudioCodec::Pcmu);
        h.send(json!({"type": "response.create"}));
        h.run_for(ms(1500));
        assert_eq!(h.media.len(), 20);
        for (_, pt, _, len) in &h.media {
            assert_eq!((**pt, *len), (0, 160));
        }
        for w in h.media.windows(2) {
            assert_eq!(w[1].2 - w[0].2, 160);
        }
    }

    #[test]
    fn lossy_jittery_path_still_carries_audio() {
        fastrand::seed(1);
        let net = NetParams {
            latency: ms(40),
            jitter: ms(15),
            loss: 0.03,
            ..NetParams::default()
        };
        let mut h = Harness::new(
            script(2000),
            WebRtcFakeMode::default(),
            Offer::OpusAndPcmu,
            net,
        );
        // Loss can hit the DTLS or SCTP handshake, whose retransmits back off to seconds. The
        // handshake's packet count varies with its random key material, so with loss the run
        // is not repeatable the way a lossless one is.
        for _ in 0..30 {
            if h.connected_at.is_some() && h.channel_open {
                break;
            }
            h.run_for(ms(500));
        }
        assert!(h.connected_at.is_some() && h.channel_open);
        h.talk(true, 1000);
        h.talk(false, 1000);
        h.run_for(ms(4000));
        let report = h.fake.report();
        let call = &report.calls[0];
        assert!(call.rtp_in > 30, "{call:?}");
        assert!(h.types().contains(&"input_audio_buffer.speech_started"));
        assert!(h.types().contains(&"output_audio_buffer.stopped"));
        assert!(h.media.len() > 80, "{}", h.media.len());
    }

    /// Connect, a greeting, caller speech with barge-in, a second turn: the event trace.
    fn scenario() -> Vec<String> {
        fastrand::seed(1);
        let mut h = harness(1200);
        h.connect();
        h.send(json!({"type": "response.create"}));
        h.run_for(ms(600));
        h.talk(true, 400);
        h.talk(false, 1500);
        h.run_for(ms(2000));
        let mut trace: Vec<String> = h
            .events
            .iter()
            .map(|(t, e)| format!("{t:?} {}", e["type"]))
            .collect();
        trace.extend(
            h.media
                .iter()
                .map(|(t, pt, ts, _)| format!("{t:?} rtp {pt} {ts}")),
        );
        trace.push(format!("connected {:?}", h.connected_at));
        trace
    }

    #[test]
    fn event_timings_are_deterministic() {
        let a = scenario();
        let b = scenario();
        assert_eq!(a, b);
        assert!(a.iter().any(|l| l.contains("output_audio_buffer.cleared")));
        assert!(a.iter().any(|l| l.contains("output_audio_buffer.stopped")));
    }
}
