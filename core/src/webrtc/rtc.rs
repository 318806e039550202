//! The offerer side of one WebRTC connection to OpenAI Realtime, wrapping `str0m::Rtc`.
//!
//! [`RtcLeg`] owns one `str0m::Rtc` and keeps str0m's single-mutation rule: every method that
//! mutates the `Rtc` (network input, a timeout, a media or channel write, an SDP change) drains
//! `poll_output` until `Output::Timeout` before it returns, translating what comes out into
//! [`Transmit`]s and [`RtcEvent`]s held in bounded queues. No str0m type leaves this module.
//!
//! Time comes only from the `now` arguments; a `now` older than one already seen is clamped.
//! str0m's ICE credentials, DTLS keys and SSRCs are random (not seedable), but its non-crypto
//! choices use `fastrand`, so with `fastrand::seed` the timing of everything here repeats.

use core::net::SocketAddr;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaData, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Reason, Rtc};

use crate::output::Transmit;

/// The label of OpenAI's data channel.
pub(crate) const CHANNEL_LABEL: &str = "oai-events";
/// The largest data-channel message we send: OpenAI's stack (Pion) caps messages at 65,535 bytes.
pub(crate) const MAX_MESSAGE_BYTES: usize = 65_535;
/// Events held for `poll_event`; past this the oldest audio is dropped (and counted).
pub(crate) const MAX_QUEUED_EVENTS: usize = 512;
/// Datagrams held for `poll_transmit`; past this the oldest is dropped (and counted).
pub(crate) const MAX_QUEUED_TRANSMITS: usize = 1024;
/// `lost_before` never reports more than this many missing packets.
pub(crate) const MAX_LOST_BEFORE: u32 = 50;
/// How many times one drain feeds `Input::Timeout(now)` again when str0m asks for a timeout at
/// or before `now` (a known str0m 0.25 pitfall).
const MAX_CATCH_UP_ROUNDS: u32 = 8;
/// If str0m still wants a timeout at or before `now` after the catch-up rounds, we ask to be
/// woken this much later rather than let the runtime spin.
const STUCK_TIMEOUT_RETRY: Duration = Duration::from_millis(1);
/// Outputs handled in one `poll_output` drain before we stop (a guard against a str0m bug).
const MAX_OUTPUTS_PER_DRAIN: usize = 20_000;
/// str0m errors tolerated in one drain before we stop polling it.
const MAX_ERRORS_PER_DRAIN: u32 = 16;
/// Audio packets str0m holds back to reorder around a gap (its default, 15, is 300 ms).
const AUDIO_REORDER_PACKETS: usize = 3;
/// The longest str0m waits for a missing audio packet (its default is 1 s).
const AUDIO_REORDER_TIMEOUT: Duration = Duration::from_millis(100);
/// How often str0m sums up the receiver reports on our audio (they come every few seconds).
const STATS_INTERVAL: Duration = Duration::from_secs(1);

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

impl RtpCodec {
    /// Our preference order when the answer keeps several.
    const PREFERENCE: [RtpCodec; 3] = [RtpCodec::Opus, RtpCodec::Pcmu, RtpCodec::Pcma];

    /// RTP clock ticks in one 20 ms frame.
    pub(crate) fn ticks_per_frame(self) -> u64 {
        match self {
            RtpCodec::Opus => 960,
            RtpCodec::Pcmu | RtpCodec::Pcma => 160,
        }
    }

    fn frequency(self) -> Frequency {
        match self {
            RtpCodec::Opus => Frequency::FORTY_EIGHT_KHZ,
            RtpCodec::Pcmu | RtpCodec::Pcma => Frequency::EIGHT_KHZ,
        }
    }

    // str0m's Codec is #[non_exhaustive]; we offer nothing else.
    #[allow(clippy::wildcard_enum_match_arm)]
    fn from_str0m(codec: Codec) -> Option<Self> {
        match codec {
            Codec::Opus => Some(RtpCodec::Opus),
            Codec::PCMU => Some(RtpCodec::Pcmu),
            Codec::PCMA => Some(RtpCodec::Pcma),
            _ => None,
        }
    }
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
    /// OpenAI's receiver reports on our audio, averaged since the last one: percent lost,
    /// rounded up (so any loss at all is at least 1).
    LossReport { percent: u8 },
    /// ICE reports the path lost, or the peer closed.
    ///
    /// Also when the `oai-events` channel closes or str0m shuts itself down. Reported at most
    /// once, and never after [`RtcLeg::close`]. str0m's ICE needs about 21 s of silence before
    /// it declares the path lost, so a faster liveness rule belongs to the caller.
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

/// Counters for what the leg dropped or worked around (for logs and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RtcStats {
    /// Events dropped because the event queue was full.
    pub(crate) events_dropped: u64,
    /// Datagrams dropped because the transmit queue was full.
    pub(crate) transmits_dropped: u64,
    /// Datagrams `handle_udp` refused (not recognised, or not for this connection).
    pub(crate) datagrams_rejected: u64,
    /// Errors str0m returned from `handle_input` or `poll_output`.
    pub(crate) str0m_errors: u64,
    /// Incoming data-channel messages dropped (binary, invalid UTF-8 or another channel).
    pub(crate) messages_dropped: u64,
    /// Incoming media dropped (another mid or a codec we did not offer).
    pub(crate) media_dropped: u64,
    /// Extra `Input::Timeout(now)` rounds fed because str0m asked for a timeout at or before
    /// `now` after a drain.
    pub(crate) catch_up_rounds: u64,
    /// Times str0m asked for a timeout at or before `now` even after the catch-up rounds.
    pub(crate) stuck_timeouts: u64,
}

/// The offerer side of one WebRTC connection to OpenAI.
pub(crate) struct RtcLeg {
    rtc: Rtc,
    /// The latest `now` seen; older ones are clamped to it.
    last_now: Instant,
    /// The `now` of the last `Input` given to str0m (writes work from it).
    fed_now: Instant,
    /// When `handle_timeout` is next due; `None` when nothing is scheduled.
    deadline: Option<Instant>,
    /// Our audio m-section, once the offer exists.
    audio_mid: Option<Mid>,
    /// The `oai-events` channel, once the offer exists.
    channel: Option<ChannelId>,
    /// The offer waiting for its answer.
    pending: Option<SdpPendingOffer>,
    /// The codec (and its payload type) we send, once the answer is applied.
    send: Option<(RtpCodec, Pt)>,
    /// Our RTP media time for the next frame we send, in the send codec's clock.
    media_time: u64,
    /// The extended sequence number of the last audio packet received.
    last_rx_seq: Option<u64>,
    connected: bool,
    channel_open: bool,
    /// `Disconnected` has been reported (at most once).
    disconnected: bool,
    /// `close` was called (or the Rtc died): every input is a no-op.
    closed: bool,
    events: VecDeque<RtcEvent>,
    transmits: VecDeque<Transmit>,
    stats: RtcStats,
}

impl std::fmt::Debug for RtcLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RtcLeg")
    }
}

impl RtcLeg {
    /// A new connection with host candidates on `local_addrs`.
    ///
    /// Offers Opus, PCMU and PCMA (in that preference); as the offerer we are ICE controlling.
    /// Building it generates a DTLS certificate (about a millisecond; the first `Rtc` in a
    /// process also pays aws-lc's start-up, tens of milliseconds).
    ///
    /// # Errors
    /// [`RtcError::Other`] if `local_addrs` is empty or holds an address that cannot be an ICE
    /// host candidate (unspecified, multicast, broadcast, link-local IPv4).
    pub(crate) fn new(now: Instant, local_addrs: &[SocketAddr]) -> Result<Self, RtcError> {
        if local_addrs.is_empty() {
            return Err(RtcError::Other("no local address for ICE".into()));
        }
        let rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .set_reordering_size_audio(AUDIO_REORDER_PACKETS)
            .set_reordering_timeout_audio(Some(AUDIO_REORDER_TIMEOUT))
            .set_stats_interval(Some(STATS_INTERVAL))
            .build(now);
        let mut leg = RtcLeg {
            rtc,
            last_now: now,
            fed_now: now,
            deadline: None,
            audio_mid: None,
            channel: None,
            pending: None,
            send: None,
            media_time: 0,
            last_rx_seq: None,
            connected: false,
            channel_open: false,
            disconnected: false,
            closed: false,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            stats: RtcStats::default(),
        };
        for addr in local_addrs {
            let candidate = Candidate::host(*addr, Protocol::Udp)
                .map_err(|e| RtcError::Other(format!("local address {addr}: {e}")))?;
            if leg.rtc.add_local_candidate(candidate).is_none() {
                return Err(RtcError::Other(format!(
                    "local address {addr} refused by ICE"
                )));
            }
            leg.drain(now);
        }
        Ok(leg)
    }

    /// The SDP offer: one sendrecv audio m-section (Opus, PCMU, PCMA) and a data channel
    /// `oai-events` (reliable, ordered), with our host candidates.
    ///
    /// # Errors
    /// [`RtcError::Other`] if an offer was already made or the leg is closed.
    pub(crate) fn create_offer(&mut self, now: Instant) -> Result<String, RtcError> {
        let now = self.clamp(now);
        if self.closed {
            return Err(RtcError::Other("the connection is closed".into()));
        }
        if self.audio_mid.is_some() {
            return Err(RtcError::Other("an offer was already made".into()));
        }
        let mut api = self.rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let channel = api.add_channel_with_config(ChannelConfig {
            label: CHANNEL_LABEL.to_string(),
            ordered: true,
            reliability: Reliability::Reliable,
            ..ChannelConfig::default()
        });
        let applied = api.apply();
        // `apply` mutated the Rtc (it allocated the m-lines): drain before anything else.
        self.drain(now);
        let Some((offer, pending)) = applied else {
            return Err(RtcError::Other("str0m made no offer".into()));
        };
        self.audio_mid = Some(mid);
        self.channel = Some(channel);
        self.pending = Some(pending);
        Ok(offer.to_sdp_string())
    }

    /// Applies the answer; returns the codec we will send: the first of Opus, PCMU, PCMA that
    /// the answer kept.
    ///
    /// # Errors
    /// - [`RtcError::BadAnswer`] if no offer is pending, or the SDP cannot be parsed or applied
    ///   (an unparsable answer leaves the offer pending; one that str0m refused does not);
    /// - [`RtcError::NoCodec`] if the answer kept none of our codecs (it stays applied: the data
    ///   channel may still come up, but `send_audio` drops everything).
    ///
    /// `prefer` goes first when the answer kept it (a G.711 phone leg passes its bytes through).
    pub(crate) fn accept_answer(
        &mut self,
        now: Instant,
        sdp: &str,
        prefer: Option<RtpCodec>,
    ) -> Result<RtpCodec, RtcError> {
        let now = self.clamp(now);
        if self.closed {
            return Err(RtcError::BadAnswer("the connection is closed".into()));
        }
        let Some(pending) = self.pending.take() else {
            return Err(RtcError::BadAnswer(
                "no offer is waiting for an answer".into(),
            ));
        };
        let answer = match SdpAnswer::from_sdp_string(sdp) {
            Ok(answer) => answer,
            Err(e) => {
                self.pending = Some(pending);
                return Err(RtcError::BadAnswer(e.to_string()));
            }
        };
        let applied = self.rtc.sdp_api().accept_answer(pending, answer);
        self.drain(now);
        if let Err(e) = applied {
            return Err(RtcError::BadAnswer(e.to_string()));
        }
        let Some(mid) = self.audio_mid else {
            return Err(RtcError::NoCodec);
        };
        let kept: Vec<(RtpCodec, Pt)> = match self.rtc.writer(mid) {
            Some(writer) => writer
                .payload_params()
                .filter_map(|p| RtpCodec::from_str0m(p.spec().codec).map(|c| (c, p.pt())))
                .collect(),
            None => Vec::new(),
        };
        let chosen = prefer
            .into_iter()
            .chain(RtpCodec::PREFERENCE.iter().copied())
            .find_map(|want| kept.iter().find(|(c, _)| *c == want).copied());
        match chosen {
            Some((codec, pt)) => {
                self.send = Some((codec, pt));
                Ok(codec)
            }
            None => Err(RtcError::NoCodec),
        }
    }

    /// A datagram from the network; false if it was not for this connection (not recognised
    /// by str0m, or from no peer this connection knows), in which case nothing happened.
    pub(crate) fn handle_udp(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        let now = self.clamp(now);
        if self.closed {
            return false;
        }
        let Ok(contents) = contents.try_into() else {
            self.stats.datagrams_rejected += 1;
            return false;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        if !self.rtc.accepts(&input) {
            self.stats.datagrams_rejected += 1;
            return false;
        }
        self.feed(input);
        self.fed_now = now;
        self.drain(now);
        true
    }

    /// Drives timers. Before the deadline of [`RtcLeg::poll_timeout`] this does nothing.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let now = self.clamp(now);
        if self.closed {
            return;
        }
        if self.deadline.is_some_and(|deadline| deadline <= now) {
            self.advance(now);
        }
    }

    /// Sends a text message on the data channel.
    ///
    /// # Errors
    /// [`RtcError::Channel`] if the message is over 65,535 bytes, the channel is not open
    /// (or the leg is closed), or str0m's send buffer is full.
    pub(crate) fn send_text(&mut self, now: Instant, text: &str) -> Result<(), RtcError> {
        let now = self.clamp(now);
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(RtcError::Channel(format!(
                "{} bytes is over the {MAX_MESSAGE_BYTES}-byte limit",
                text.len()
            )));
        }
        let Some(id) = self.channel.filter(|_| self.channel_open && !self.closed) else {
            return Err(RtcError::Channel("the channel is not open".into()));
        };
        self.advance(now);
        let written = match self.rtc.channel(id) {
            Some(mut channel) => channel.write(false, text.as_bytes()),
            None => {
                return Err(RtcError::Channel("the channel is not open".into()));
            }
        };
        self.drain(now);
        match written {
            Ok(true) => Ok(()),
            Ok(false) => Err(RtcError::Channel("the send buffer is full".into())),
            Err(e) => Err(RtcError::Channel(e.to_string())),
        }
    }

    /// Sends one 20 ms audio frame in the negotiated codec (the RTP media time advances by one
    /// frame: 960 ticks for Opus, 160 for G.711). Before the answer or before `Connected`, or
    /// after the connection ended, the frame is dropped and this returns `Ok`.
    ///
    /// The payload is moved into str0m's send queue, not copied.
    ///
    /// # Errors
    /// [`RtcError::Other`] if str0m refused the write.
    pub(crate) fn send_audio(&mut self, now: Instant, payload: Vec<u8>) -> Result<(), RtcError> {
        let now = self.clamp(now);
        let (Some(mid), Some((codec, pt))) = (self.audio_mid, self.send) else {
            return Ok(());
        };
        if self.closed || !self.connected {
            return Ok(());
        }
        // Bring str0m up to `now` without draining: the one drain after the write collects
        // what the timeout and the write both produced (a drain is most of str0m's cost here).
        if now > self.fed_now || self.deadline.is_some_and(|d| d <= now) {
            self.feed(Input::Timeout(now));
            self.fed_now = now;
        }
        let time = MediaTime::new(self.media_time, codec.frequency());
        self.media_time = self.media_time.wrapping_add(codec.ticks_per_frame());
        let written = match self.rtc.writer(mid) {
            Some(writer) => writer.write(pt, now, time, payload),
            None => return Ok(()),
        };
        self.drain(now);
        written.map_err(|e| RtcError::Other(e.to_string()))
    }

    /// Closes the connection: str0m queues its goodbyes (RTCP BYE, DTLS close_notify), which
    /// stay in the transmit queue, and is then shut down. Later calls are no-ops;
    /// `poll_event` and `poll_transmit` drain what is left. No `Disconnected` follows.
    pub(crate) fn close(&mut self, now: Instant) {
        let now = self.clamp(now);
        if self.closed {
            return;
        }
        // Report nothing more about the connection going away: the caller ended it.
        self.disconnected = true;
        if let Err(e) = self.rtc.close() {
            self.stats.str0m_errors += 1;
            tracing::debug!(error = %e, "str0m close");
        }
        self.drain(now);
        self.rtc.disconnect();
        self.closed = true;
        self.channel_open = false;
        self.deadline = None;
    }

    /// Next datagram to send; `None` when the queue is empty.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event; `None` when the queue is empty.
    pub(crate) fn poll_event(&mut self) -> Option<RtcEvent> {
        self.events.pop_front()
    }

    /// When to call `handle_timeout`; `None` when nothing is scheduled (or the leg is closed).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The codec we send, once the answer is applied.
    #[cfg_attr(not(test), allow(dead_code))] // for logs and the call record
    pub(crate) fn send_codec(&self) -> Option<RtpCodec> {
        self.send.map(|(codec, _)| codec)
    }

    /// What the leg dropped or worked around so far.
    #[cfg_attr(not(test), allow(dead_code))] // for logs and `CallStats`
    pub(crate) fn stats(&self) -> RtcStats {
        self.stats
    }

    // ---- internals ----

    /// Clamps `now` to the latest seen.
    fn clamp(&mut self, now: Instant) -> Instant {
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    /// Feeds `Input::Timeout(now)` if str0m has not seen `now` yet (or a timeout is due), then
    /// drains: writes do not take a time, so str0m must be brought up to date first.
    fn advance(&mut self, now: Instant) {
        let due = self.deadline.is_some_and(|d| d <= now);
        if now > self.fed_now || due {
            self.feed(Input::Timeout(now));
            self.fed_now = now;
            self.drain(now);
        }
    }

    /// One mutation by input; errors are counted, never fatal here (a dead Rtc is noticed by
    /// the drain).
    fn feed(&mut self, input: Input<'_>) {
        if let Err(e) = self.rtc.handle_input(input) {
            self.stats.str0m_errors += 1;
            tracing::debug!(error = %e, "str0m refused input");
        }
    }

    /// Drains `poll_output` to `Output::Timeout`, catching up when that timeout is not after
    /// `now`, and records the next deadline.
    fn drain(&mut self, now: Instant) {
        let mut rounds = 0;
        let deadline = loop {
            let timeout = self.drain_once();
            if !self.rtc.is_alive() {
                break None;
            }
            match timeout {
                Some(t) if t <= now && rounds < MAX_CATCH_UP_ROUNDS => {
                    rounds += 1;
                    self.stats.catch_up_rounds += 1;
                    self.feed(Input::Timeout(now));
                    self.fed_now = now;
                }
                Some(t) if t <= now => {
                    self.stats.stuck_timeouts += 1;
                    break Some(now + STUCK_TIMEOUT_RETRY);
                }
                other => break other,
            }
        };
        self.deadline = deadline;
        if !self.rtc.is_alive() && !self.closed {
            // str0m shut itself down (remote close, fingerprint mismatch, …).
            self.report_disconnected();
            self.closed = true;
            self.channel_open = false;
            self.deadline = None;
        }
    }

    /// One pass of `poll_output` until `Timeout`; `None` if str0m schedules nothing.
    fn drain_once(&mut self) -> Option<Instant> {
        let mut errors = 0;
        for _ in 0..MAX_OUTPUTS_PER_DRAIN {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    return (self.rtc.last_timeout_reason() != Reason::NotHappening).then_some(t);
                }
                Ok(Output::Transmit(t)) => {
                    if t.proto != Protocol::Udp {
                        continue;
                    }
                    if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
                        self.transmits.pop_front();
                        self.stats.transmits_dropped += 1;
                    }
                    self.transmits.push_back(Transmit {
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents.into(),
                    });
                }
                Ok(Output::Event(e)) => self.translate(e),
                Err(e) => {
                    self.stats.str0m_errors += 1;
                    tracing::debug!(error = %e, "str0m poll_output");
                    errors += 1;
                    if errors >= MAX_ERRORS_PER_DRAIN {
                        break;
                    }
                }
            }
        }
        // Gave up on this drain: ask to be woken soon rather than never.
        Some(self.last_now + STUCK_TIMEOUT_RETRY)
    }

    /// Turns one str0m event into ours (most are of no interest here).
    // str0m's Event is #[non_exhaustive] with ~20 variants we ignore.
    #[allow(clippy::wildcard_enum_match_arm)]
    fn translate(&mut self, event: Event) {
        match event {
            Event::Connected if !self.connected && !self.disconnected => {
                self.connected = true;
                self.push_event(RtcEvent::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) | Event::Closed => {
                self.report_disconnected();
            }
            Event::ChannelOpen(id, _label) if Some(id) == self.channel && !self.channel_open => {
                self.channel_open = true;
                self.push_event(RtcEvent::ChannelOpen);
            }
            Event::ChannelClose(id) if Some(id) == self.channel && self.channel_open => {
                self.channel_open = false;
                self.report_disconnected();
            }
            Event::ChannelData(data) => {
                if Some(data.id) != self.channel || data.binary {
                    self.stats.messages_dropped += 1;
                    return;
                }
                match String::from_utf8(data.data) {
                    Ok(text) => self.push_event(RtcEvent::ChannelText(text)),
                    Err(_) => self.stats.messages_dropped += 1,
                }
            }
            Event::MediaData(media) => self.on_media(media),
            Event::MediaEgressStats(stats) if Some(stats.mid) == self.audio_mid => {
                // `loss` is set only when a receiver report came since the last stats.
                if let Some(loss) = stats.loss.filter(|l| l.is_finite()) {
                    let percent = (loss.clamp(0.0, 1.0) * 100.0).ceil() as u8;
                    self.push_event(RtcEvent::LossReport { percent });
                }
            }
            _ => {}
        }
    }

    fn on_media(&mut self, media: MediaData) {
        let codec = RtpCodec::from_str0m(media.params.spec().codec);
        let Some(codec) = codec.filter(|_| Some(media.mid) == self.audio_mid) else {
            self.stats.media_dropped += 1;
            return;
        };
        let first = **media.seq_range.start();
        let last = **media.seq_range.end();
        let lost_before = match self.last_rx_seq {
            Some(prev) if first > prev => {
                u32::try_from(first - prev - 1).map_or(MAX_LOST_BEFORE, |n| n.min(MAX_LOST_BEFORE))
            }
            Some(_) | None => 0,
        };
        self.last_rx_seq = Some(self.last_rx_seq.map_or(last, |prev| prev.max(last)));
        self.push_event(RtcEvent::Audio {
            codec,
            payload: media.data.to_vec(),
            lost_before,
        });
    }

    fn report_disconnected(&mut self) {
        if !self.disconnected {
            self.disconnected = true;
            self.push_event(RtcEvent::Disconnected);
        }
    }

    /// Queues an event; when full, the oldest audio goes first (else the new event is dropped).
    fn push_event(&mut self, event: RtcEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.stats.events_dropped += 1;
            let oldest_audio = self
                .events
                .iter()
                .position(|e| matches!(e, RtcEvent::Audio { .. }));
            match oldest_audio {
                Some(i) => {
                    self.events.remove(i);
                }
                None => return,
            }
        }
        self.events.push_back(event);
    }
}
