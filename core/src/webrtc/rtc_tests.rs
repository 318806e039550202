//! `RtcLeg` against a plain `str0m::Rtc` answerer, in memory, on a virtual clock.
//!
//! The answerer plays OpenAI: it accepts our offer and answers `a=setup:active` (it becomes the
//! DTLS client), with a host candidate on another loopback address. Datagrams cross two
//! in-memory queues with a fixed one-way latency.

use core::net::SocketAddr;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Reason, Rtc, RtcConfig};

use super::rtc::{MAX_MESSAGE_BYTES, MAX_QUEUED_EVENTS, RtcError, RtcEvent, RtcLeg, RtpCodec};

const LATENCY: Duration = Duration::from_millis(10);

fn leg_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40_000))
}

fn answerer_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 2], 3478))
}

fn base() -> Instant {
    crate::tests::origin()
}

/// One datagram in flight.
#[derive(Debug)]
struct Datagram {
    at: Instant,
    source: SocketAddr,
    destination: SocketAddr,
    contents: Vec<u8>,
}

/// An RTP (not RTCP) packet, by the RFC 7983 / RFC 5761 demultiplexing rules.
fn is_rtp(d: &[u8]) -> bool {
    match d {
        [b0, b1, ..] => (128..192).contains(b0) && !(64..96).contains(&(b1 & 0x7f)),
        _ => false,
    }
}

/// What OpenAI's answerer offers: Opus, PCMU, PCMA.
fn openai_codecs() -> RtcConfig {
    Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .enable_pcmu(true, false)
        .enable_pcma(true, false)
}

/// The answerer: a plain str0m `Rtc`, like OpenAI's side.
struct Answerer {
    rtc: Rtc,
    timeout: Option<Instant>,
    mid: Option<Mid>,
    channel: Option<ChannelId>,
    events: Vec<(Duration, Event)>,
    /// Media time of the next frame it writes (48 kHz).
    media_time: u64,
}

impl Answerer {
    /// An answerer with OpenAI's codecs.
    fn new(now: Instant) -> Self {
        Self::with_config(now, openai_codecs())
    }

    fn with_config(now: Instant, config: RtcConfig) -> Self {
        let mut rtc = config.build(now);
        rtc.add_local_candidate(Candidate::host(answerer_addr(), "udp").unwrap())
            .unwrap();
        Answerer {
            rtc,
            timeout: None,
            mid: None,
            channel: None,
            events: Vec::new(),
            media_time: 0,
        }
    }
}

/// Leg and answerer wired together through two delay lines.
struct Sim {
    base: Instant,
    now: Instant,
    leg: RtcLeg,
    answerer: Answerer,
    to_leg: VecDeque<Datagram>,
    to_answerer: VecDeque<Datagram>,
    leg_events: Vec<(Duration, RtcEvent)>,
    /// Drop this many RTP packets on their way to the leg.
    drop_rtp_to_leg: u32,
    /// Drop everything on its way to the leg.
    cut_to_leg: bool,
    /// Leave the leg's events in its queue.
    hold_leg_events: bool,
    /// The leg was closed: it may refuse what still arrives.
    leg_closed: bool,
    steps: u64,
}

impl Sim {
    fn new() -> Self {
        Self::with_answerer(openai_codecs())
    }

    /// A sim whose answerer is built from `config`.
    fn with_answerer(config: RtcConfig) -> Self {
        let base = base();
        let leg = RtcLeg::new(base, &[leg_addr()]).unwrap();
        let answerer = Answerer::with_config(base, config);
        let mut sim = Sim {
            base,
            now: base,
            leg,
            answerer,
            to_leg: VecDeque::new(),
            to_answerer: VecDeque::new(),
            leg_events: Vec::new(),
            drop_rtp_to_leg: 0,
            cut_to_leg: false,
            leg_closed: false,
            hold_leg_events: false,
            steps: 0,
        };
        sim.collect_leg();
        sim.drain_answerer();
        sim
    }

    /// Offer, answer (`setup:active` when `active`), apply; returns the leg's send codec.
    fn negotiate(&mut self, active: bool) -> Result<RtpCodec, RtcError> {
        let offer = self.leg.create_offer(self.now).unwrap();
        assert!(offer.contains("a=setup:actpass"), "{offer}");
        let answer = self.answer(&offer, active);
        if active {
            assert!(answer.contains("a=setup:active"), "{answer}");
        }
        let codec = self.leg.accept_answer(self.now, &answer, None);
        self.collect_leg();
        codec
    }

    /// The answerer's answer to `offer`. To answer `setup:active` as OpenAI does, it is shown
    /// the offer with `actpass` replaced by `passive`, so that str0m takes the active role.
    fn answer(&mut self, offer: &str, active: bool) -> String {
        let seen = if active {
            offer.replace("a=setup:actpass", "a=setup:passive")
        } else {
            offer.to_string()
        };
        let offer = SdpOffer::from_sdp_string(&seen).unwrap();
        let answer = self.answerer.rtc.sdp_api().accept_offer(offer).unwrap();
        self.drain_answerer();
        answer.to_sdp_string()
    }

    fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    fn collect_leg(&mut self) {
        while let Some(t) = self.leg.poll_transmit() {
            assert_eq!(t.source, leg_addr());
            self.to_answerer.push_back(Datagram {
                at: self.now + LATENCY,
                source: t.source,
                destination: t.destination,
                contents: t.contents,
            });
        }
        if self.hold_leg_events {
            return;
        }
        while let Some(e) = self.leg.poll_event() {
            self.leg_events.push((self.now - self.base, e));
        }
    }

    fn drain_answerer(&mut self) {
        let now = self.now;
        let mut rounds = 0;
        loop {
            match self.answerer.rtc.poll_output().unwrap() {
                Output::Timeout(t) => {
                    if self.answerer.rtc.last_timeout_reason() == Reason::NotHappening {
                        self.answerer.timeout = None;
                        break;
                    }
                    if t <= now && rounds < 8 {
                        rounds += 1;
                        self.answerer.rtc.handle_input(Input::Timeout(now)).unwrap();
                        continue;
                    }
                    // The str0m test harness forces time forward the same way.
                    self.answerer.timeout = Some(t.max(now + Duration::from_millis(1)));
                    break;
                }
                Output::Transmit(t) => {
                    let contents: Vec<u8> = t.contents.into();
                    if self.cut_to_leg {
                        continue;
                    }
                    if self.drop_rtp_to_leg > 0 && is_rtp(&contents) {
                        self.drop_rtp_to_leg -= 1;
                        continue;
                    }
                    self.to_leg.push_back(Datagram {
                        at: now + LATENCY,
                        source: t.source,
                        destination: t.destination,
                        contents,
                    });
                }
                Output::Event(e) => {
                    match &e {
                        Event::MediaAdded(m) => self.answerer.mid = Some(m.mid),
                        Event::ChannelOpen(id, _) => self.answerer.channel = Some(*id),
                        _ => {}
                    }
                    self.answerer.events.push((now - self.base, e));
                }
            }
        }
    }

    /// The time of the next thing to happen.
    fn next_time(&self) -> Option<Instant> {
        [
            self.leg.poll_timeout(),
            self.answerer.timeout,
            self.to_leg.front().map(|d| d.at),
            self.to_answerer.front().map(|d| d.at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Does the earliest thing; false if nothing is scheduled.
    fn step(&mut self) -> bool {
        let Some(next) = self.next_time() else {
            return false;
        };
        self.now = self.now.max(next);
        self.steps += 1;
        let now = self.now;
        let mut leg_stepped = false;
        if self.to_answerer.front().is_some_and(|d| d.at <= now) {
            let d = self.to_answerer.pop_front().unwrap();
            let input = Input::Receive(
                now,
                Receive {
                    proto: Protocol::Udp,
                    source: d.source,
                    destination: d.destination,
                    contents: d.contents.as_slice().try_into().unwrap(),
                },
            );
            if self.answerer.rtc.accepts(&input) {
                self.answerer.rtc.handle_input(input).unwrap();
            }
            self.drain_answerer();
        } else if self.to_leg.front().is_some_and(|d| d.at <= now) {
            let d = self.to_leg.pop_front().unwrap();
            let took = self
                .leg
                .handle_udp(now, d.source, d.destination, &d.contents);
            assert!(
                took || self.leg_closed,
                "the leg refused a datagram from the answerer"
            );
        } else if self.answerer.timeout.is_some_and(|t| t <= now) {
            self.answerer.rtc.handle_input(Input::Timeout(now)).unwrap();
            self.drain_answerer();
        } else {
            self.leg.handle_timeout(now);
            leg_stepped = true;
        }
        // After an input the leg's deadline is past `now`: a runtime never spins on it.
        assert!(
            !leg_stepped || self.leg.poll_timeout().is_none_or(|t| t > now),
            "leg deadline stuck at {:?}",
            self.elapsed()
        );
        self.collect_leg();
        true
    }

    /// Steps until `pred` holds on the leg's events, at most `limit` of simulated time.
    fn run_until(&mut self, limit: Duration, pred: impl Fn(&[(Duration, RtcEvent)]) -> bool) {
        while !pred(&self.leg_events) {
            assert!(
                self.elapsed() <= limit,
                "not reached after {:?}",
                self.elapsed()
            );
            assert!(self.step(), "nothing scheduled");
        }
    }

    /// Does everything due up to `until`, then sets the clock to it.
    fn advance_to(&mut self, until: Instant) {
        while self.next_time().is_some_and(|t| t <= until) {
            self.step();
        }
        self.now = self.now.max(until);
    }

    fn connect(&mut self) {
        self.run_until(Duration::from_millis(200), |e| {
            has(e, &RtcEvent::Connected) && has(e, &RtcEvent::ChannelOpen)
        });
        // Let the answerer see its side of the channel open too.
        let limit = self.now + Duration::from_millis(100);
        while self.answerer.channel.is_none() {
            assert!(self.now < limit);
            self.step();
        }
    }

    fn answerer_send_text(&mut self, binary: bool, data: &[u8]) {
        self.answerer
            .rtc
            .handle_input(Input::Timeout(self.now))
            .unwrap();
        self.drain_answerer();
        let id = self.answerer.channel.unwrap();
        let ok = self
            .answerer
            .rtc
            .channel(id)
            .unwrap()
            .write(binary, data)
            .unwrap();
        assert!(ok);
        self.drain_answerer();
    }

    fn answerer_send_opus(&mut self, payload: &[u8]) {
        self.answerer
            .rtc
            .handle_input(Input::Timeout(self.now))
            .unwrap();
        self.drain_answerer();
        let mid = self.answerer.mid.unwrap();
        let writer = self.answerer.rtc.writer(mid).unwrap();
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .unwrap()
            .pt();
        let time = MediaTime::new(self.answerer.media_time, Frequency::FORTY_EIGHT_KHZ);
        self.answerer.media_time += 960;
        writer.write(pt, self.now, time, payload.to_vec()).unwrap();
        self.drain_answerer();
    }

    fn answerer_texts(&self) -> Vec<String> {
        self.answerer
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ChannelData(d) if !d.binary => String::from_utf8(d.data.clone()).ok(),
                _ => None,
            })
            .collect()
    }

    fn leg_audio(&self) -> Vec<(RtpCodec, Vec<u8>, u32)> {
        self.leg_events
            .iter()
            .filter_map(|(_, e)| match e {
                RtcEvent::Audio {
                    codec,
                    payload,
                    lost_before,
                } => Some((*codec, payload.clone(), *lost_before)),
                _ => None,
            })
            .collect()
    }
}

fn has(events: &[(Duration, RtcEvent)], want: &RtcEvent) -> bool {
    events.iter().any(|(_, e)| e == want)
}

fn time_of(events: &[(Duration, RtcEvent)], want: &RtcEvent) -> Duration {
    events.iter().find(|(_, e)| e == want).unwrap().0
}

/// `n` Opus packets of a 440 Hz sine, 20 ms each, encoded at 8 kHz like a phone leg.
fn opus_frames(n: usize) -> Vec<Vec<u8>> {
    let mut enc = opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    (0..n)
        .map(|k| {
            let pcm: Vec<i16> = (0..160)
                .map(|i| {
                    let t = (k * 160 + i) as f32 / 8000.0;
                    (8000.0 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()) as i16
                })
                .collect();
            enc.encode_vec(&pcm, 400).unwrap()
        })
        .collect()
}

#[test]
fn connects_and_opens_the_channel_quickly() {
    fastrand::seed(1);
    let mut sim = Sim::new();
    assert_eq!(sim.negotiate(true), Ok(RtpCodec::Opus));
    sim.connect();
    let connected = time_of(&sim.leg_events, &RtcEvent::Connected);
    let open = time_of(&sim.leg_events, &RtcEvent::ChannelOpen);
    assert!(connected <= Duration::from_millis(200), "{connected:?}");
    assert!(open <= Duration::from_millis(200), "{open:?}");
    assert!(connected <= open);
    assert_eq!(sim.leg.stats().stuck_timeouts, 0);
    eprintln!(
        "connected at {connected:?}, channel open at {open:?}, {} steps",
        sim.steps
    );
}

#[test]
fn text_both_ways_and_binary_dropped() {
    fastrand::seed(2);
    let mut sim = Sim::new();
    sim.negotiate(true).unwrap();
    sim.connect();

    sim.leg
        .send_text(sim.now, r#"{"type":"session.update"}"#)
        .unwrap();
    sim.collect_leg();
    sim.advance_to(sim.now + Duration::from_millis(50));
    assert_eq!(sim.answerer_texts(), vec![r#"{"type":"session.update"}"#]);

    sim.answerer_send_text(true, b"\x00binary");
    sim.answerer_send_text(false, "{\"type\":\"session.created\"} ✓".as_bytes());
    sim.advance_to(sim.now + Duration::from_millis(50));
    let texts: Vec<&RtcEvent> = sim
        .leg_events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| matches!(e, RtcEvent::ChannelText(_)))
        .collect();
    assert_eq!(
        texts,
        vec![&RtcEvent::ChannelText(
            "{\"type\":\"session.created\"} ✓".into()
        )]
    );
    assert_eq!(sim.leg.stats().messages_dropped, 1);

    // The largest message OpenAI takes goes through whole; one byte more is refused locally.
    let big = "x".repeat(MAX_MESSAGE_BYTES);
    sim.leg.send_text(sim.now, &big).unwrap();
    sim.collect_leg();
    let too_big = "x".repeat(MAX_MESSAGE_BYTES + 1);
    assert!(matches!(
        sim.leg.send_text(sim.now, &too_big),
        Err(RtcError::Channel(_))
    ));
    sim.advance_to(sim.now + Duration::from_millis(200));
    assert_eq!(
        sim.answerer_texts().last().map(String::len),
        Some(MAX_MESSAGE_BYTES)
    );
}

#[test]
fn opus_from_the_answerer_arrives_in_order_and_counts_losses() {
    fastrand::seed(3);
    let mut sim = Sim::new();
    sim.negotiate(true).unwrap();
    sim.connect();
    let frames = opus_frames(50);
    let start = sim.now;
    for (k, frame) in frames.iter().enumerate() {
        sim.advance_to(start + Duration::from_millis(20 * k as u64));
        sim.answerer_send_opus(frame);
    }
    sim.advance_to(sim.now + Duration::from_millis(300));
    let audio = sim.leg_audio();
    assert_eq!(audio.len(), 50);
    for ((codec, payload, lost), sent) in audio.iter().zip(&frames) {
        assert_eq!(*codec, RtpCodec::Opus);
        assert_eq!(payload, sent);
        assert_eq!(*lost, 0);
    }

    // Three packets lost in transit: the next one says so.
    let start = sim.now;
    let more = opus_frames(20);
    for (k, frame) in more.iter().enumerate() {
        sim.advance_to(start + Duration::from_millis(20 * k as u64));
        if k == 5 {
            sim.drop_rtp_to_leg = 3;
        }
        sim.answerer_send_opus(frame);
    }
    sim.advance_to(sim.now + Duration::from_millis(300));
    let audio = &sim.leg_audio()[50..];
    assert_eq!(audio.len(), 17);
    let lost: Vec<u32> = audio.iter().map(|a| a.2).collect();
    let mut want = vec![0; 17];
    want[5] = 3;
    assert_eq!(lost, want);
    assert_eq!(audio[5].1, more[8]);

    // A long gap is capped.
    let start = sim.now;
    sim.drop_rtp_to_leg = 60;
    for (k, frame) in opus_frames(65).iter().enumerate() {
        sim.advance_to(start + Duration::from_millis(20 * k as u64));
        sim.answerer_send_opus(frame);
    }
    sim.advance_to(sim.now + Duration::from_millis(300));
    let audio = &sim.leg_audio()[67..];
    let lost: Vec<u32> = audio.iter().map(|a| a.2).collect();
    assert_eq!(lost, vec![50, 0, 0, 0, 0]);
    eprintln!("after losses: {:?}", sim.leg.stats());
}

#[test]
fn a_caller_that_does_not_poll_events_loses_the_oldest_audio_only() {
    fastrand::seed(12);
    let mut sim = Sim::new();
    sim.negotiate(true).unwrap();
    sim.connect();
    sim.hold_leg_events = true;
    let frames = opus_frames(600);
    let start = sim.now;
    for (k, frame) in frames.iter().enumerate() {
        sim.advance_to(start + Duration::from_millis(20 * k as u64));
        sim.answerer_send_opus(frame);
    }
    sim.answerer_send_text(false, b"last");
    sim.advance_to(sim.now + Duration::from_millis(300));
    sim.hold_leg_events = false;
    sim.collect_leg();
    let audio = sim.leg_audio();
    assert_eq!(audio.len(), MAX_QUEUED_EVENTS - 1);
    assert_eq!(audio.last().unwrap().1, frames[599]);
    assert!(has(&sim.leg_events, &RtcEvent::ChannelText("last".into())));
    assert_eq!(
        sim.leg.stats().events_dropped,
        600 + 1 - MAX_QUEUED_EVENTS as u64
    );
}

#[test]
fn a_pcmu_only_answer_selects_pcmu_and_our_frames_arrive_as_pcmu() {
    fastrand::seed(4);
    let mut sim = Sim::with_answerer(Rtc::builder().clear_codecs().enable_pcmu(true, false));
    // This answerer keeps str0m's own role choice (setup:passive): both roles work.
    assert_eq!(sim.negotiate(false), Ok(RtpCodec::Pcmu));
    assert_eq!(sim.leg.send_codec(), Some(RtpCodec::Pcmu));
    // Before Connected, audio is dropped silently.
    sim.leg.send_audio(sim.now, vec![0xff; 160]).unwrap();
    sim.collect_leg();
    sim.connect();
    let start = sim.now;
    for k in 0..10u8 {
        sim.advance_to(start + Duration::from_millis(20 * u64::from(k)));
        sim.leg.send_audio(sim.now, vec![k; 160]).unwrap();
        sim.collect_leg();
    }
    sim.advance_to(sim.now + Duration::from_millis(100));
    let media: Vec<(Codec, u64, Vec<u8>)> = sim
        .answerer
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::MediaData(m) => Some((m.params.spec().codec, m.time.numer(), m.data.to_vec())),
            _ => None,
        })
        .collect();
    assert_eq!(media.len(), 10, "{media:?}");
    for (k, (codec, time, data)) in media.iter().enumerate() {
        assert_eq!(*codec, Codec::PCMU);
        assert_eq!(data, &vec![k as u8; 160]);
        if k > 0 {
            assert_eq!(time - media[k - 1].1, 160);
        }
    }
}

#[test]
fn an_answer_without_our_codecs_is_no_codec() {
    fastrand::seed(13);
    let mut sim = Sim::with_answerer(Rtc::builder().clear_codecs().enable_g722(true, false));
    assert_eq!(sim.negotiate(true), Err(RtcError::NoCodec));
    assert_eq!(sim.leg.send_codec(), None);
    // The data channel still comes up; audio is dropped.
    sim.connect();
    sim.leg.send_audio(sim.now, vec![0; 160]).unwrap();
    sim.leg.send_text(sim.now, "no audio").unwrap();
    sim.collect_leg();
    sim.advance_to(sim.now + Duration::from_millis(100));
    assert_eq!(sim.answerer_texts(), vec!["no audio"]);
}

#[test]
fn garbage_answers_are_refused_without_panicking() {
    fastrand::seed(5);
    let now = base();
    let mut leg = RtcLeg::new(now, &[leg_addr()]).unwrap();
    assert!(matches!(
        leg.accept_answer(now, "v=0", None),
        Err(RtcError::BadAnswer(_))
    ));
    leg.create_offer(now).unwrap();
    for garbage in [
        "",
        "garbage",
        "v=0\r\n",
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
    ] {
        assert!(
            matches!(
                leg.accept_answer(now, garbage, None),
                Err(RtcError::BadAnswer(_))
            ),
            "{garbage:?}"
        );
    }
    assert!(leg.create_offer(now).is_err(), "one offer per leg");

    // Mutated real answers: any outcome but a panic.
    let mut outcomes = [0u32; 4];
    let cases: u64 = std::env::var("SDP_CASES").map_or(60, |v| v.parse().unwrap());
    for case in 0..cases {
        fastrand::seed(100 + case);
        let mut leg = RtcLeg::new(now, &[leg_addr()]).unwrap();
        let offer = leg.create_offer(now).unwrap();
        let mut answerer_rtc = Answerer::new(now).rtc;
        let offer = SdpOffer::from_sdp_string(&offer).unwrap();
        let answer = answerer_rtc
            .sdp_api()
            .accept_offer(offer)
            .unwrap()
            .to_sdp_string();
        let mutated = mutate(&answer);
        match leg.accept_answer(now, &mutated, None) {
            Ok(_) => outcomes[0] += 1,
            Err(RtcError::BadAnswer(_)) => outcomes[1] += 1,
            Err(RtcError::NoCodec) => outcomes[2] += 1,
            Err(_) => outcomes[3] += 1,
        }
        leg.handle_timeout(now + Duration::from_secs(1));
        while leg.poll_transmit().is_some() {}
        while leg.poll_event().is_some() {}
    }
    assert_eq!(outcomes[3], 0, "{outcomes:?}");
    eprintln!("mutated answers: ok/bad/nocodec = {outcomes:?}");

    // Parse failures leave the offer pending: a good answer still works.
    fastrand::seed(6);
    let mut leg = RtcLeg::new(now, &[leg_addr()]).unwrap();
    let offer = leg.create_offer(now).unwrap();
    for line in [
        "m=audio 9 UDP/TLS/RTP/SAVPF",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=sendrecv",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=candidate:",
        "a=setup:actpass",
    ] {
        assert!(offer.contains(line), "{line} not in {offer}");
    }
    assert!(leg.accept_answer(now, "nonsense", None).is_err());
    let mut answerer = Answerer::new(now);
    let answer = answerer
        .rtc
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&offer).unwrap())
        .unwrap();
    assert_eq!(
        leg.accept_answer(now, &answer.to_sdp_string(), None),
        Ok(RtpCodec::Opus)
    );
    assert!(matches!(
        leg.accept_answer(now, &answer.to_sdp_string(), None),
        Err(RtcError::BadAnswer(_))
    ));
}

/// A few random edits to the lines of an SDP.
fn mutate(sdp: &str) -> String {
    let mut lines: Vec<String> = sdp.lines().map(str::to_string).collect();
    for _ in 0..fastrand::usize(1..4) {
        if lines.is_empty() {
            break;
        }
        let i = fastrand::usize(..lines.len());
        match fastrand::u8(..5) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let line = lines[i].clone();
                lines.insert(i, line);
            }
            2 => {
                let cut = fastrand::usize(..=lines[i].len());
                lines[i] = lines[i].chars().take(cut).collect();
            }
            3 => {
                let mut bytes = lines[i].clone().into_bytes();
                if !bytes.is_empty() {
                    let j = fastrand::usize(..bytes.len());
                    bytes[j] = fastrand::u8(32..127);
                }
                lines[i] = String::from_utf8(bytes).unwrap();
            }
            _ => {
                let n = fastrand::u32(..100_000);
                lines[i] = lines[i]
                    .split(' ')
                    .map(|w| {
                        if fastrand::bool() {
                            n.to_string()
                        } else {
                            w.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        }
    }
    lines.join("\r\n") + "\r\n"
}

#[test]
fn garbage_datagrams_are_ignored() {
    fastrand::seed(7);
    let mut sim = Sim::new();
    // Before any answer: nothing is accepted.
    for _ in 0..50 {
        let d: Vec<u8> = (0..fastrand::usize(..300))
            .map(|_| fastrand::u8(..))
            .collect();
        assert!(!sim.leg.handle_udp(sim.now, answerer_addr(), leg_addr(), &d));
    }
    sim.negotiate(true).unwrap();
    sim.connect();
    let stranger = SocketAddr::from(([10, 9, 8, 7], 1234));
    for i in 0..3000usize {
        let len = fastrand::usize(..400);
        let mut d: Vec<u8> = (0..len).map(|_| fastrand::u8(..)).collect();
        if let Some(b) = d.first_mut() {
            // Aim at every demultiplexing class: STUN, DTLS, RTP/RTCP.
            *b = match i % 4 {
                0 => fastrand::u8(..2),
                1 => fastrand::u8(20..64),
                2 => fastrand::u8(128..192),
                _ => *b,
            };
        }
        let from = if i % 5 == 0 {
            stranger
        } else {
            answerer_addr()
        };
        let took = sim.leg.handle_udp(sim.now, from, leg_addr(), &d);
        if from == stranger {
            assert!(!took);
        }
        sim.collect_leg();
    }
    // Time going backwards is clamped, not trusted.
    let deadline = sim.leg.poll_timeout();
    sim.leg.handle_timeout(sim.base);
    assert!(!sim.leg.handle_udp(sim.base, stranger, leg_addr(), &[0; 20]));
    sim.leg.send_audio(sim.base, vec![0; 20]).unwrap();
    sim.collect_leg();
    assert!(sim.leg.poll_timeout() >= deadline.min(Some(sim.now)));
    // The connection survives: text still flows.
    sim.leg.send_text(sim.now, "still here").unwrap();
    sim.collect_leg();
    sim.advance_to(sim.now + Duration::from_millis(100));
    assert_eq!(sim.answerer_texts(), vec!["still here"]);
    assert!(!has(&sim.leg_events, &RtcEvent::Disconnected));
    eprintln!("after garbage: {:?}", sim.leg.stats());
}

#[test]
fn silence_from_the_answerer_ends_in_disconnected() {
    fastrand::seed(8);
    let mut sim = Sim::new();
    sim.negotiate(true).unwrap();
    sim.connect();
    let cut = sim.elapsed();
    sim.cut_to_leg = true;
    sim.to_leg.clear();
    sim.run_until(Duration::from_secs(60), |e| has(e, &RtcEvent::Disconnected));
    let after = time_of(&sim.leg_events, &RtcEvent::Disconnected) - cut;
    eprintln!(
        "Disconnected {after:?} after the answerer went silent ({} steps)",
        sim.steps
    );
    // Audio is dropped from now on, and close is quiet.
    sim.leg.send_audio(sim.now, vec![1; 20]).unwrap();
    sim.leg.close(sim.now);
    assert_eq!(sim.leg.poll_timeout(), None);
    sim.leg.close(sim.now);
    assert!(
        !sim.leg
            .handle_udp(sim.now, answerer_addr(), leg_addr(), &[0; 20])
    );
}

#[test]
fn close_sends_goodbyes_and_stops() {
    fastrand::seed(9);
    let mut sim = Sim::new();
    sim.negotiate(true).unwrap();
    sim.connect();
    sim.collect_leg();
    let queued = sim.to_answerer.len();
    sim.leg.close(sim.now);
    sim.leg_closed = true;
    sim.collect_leg();
    assert!(sim.to_answerer.len() > queued, "close_notify goes out");
    assert_eq!(sim.leg.poll_timeout(), None);
    assert!(matches!(
        sim.leg.send_text(sim.now, "x"),
        Err(RtcError::Channel(_))
    ));
    assert_eq!(sim.leg.send_audio(sim.now, vec![1; 20]), Ok(()));
    sim.leg.handle_timeout(sim.now + Duration::from_secs(5));
    sim.collect_leg();
    assert!(!has(&sim.leg_events, &RtcEvent::Disconnected));
    // The answerer hears about it.
    sim.advance_to(sim.now + Duration::from_millis(100));
    assert!(
        sim.answerer
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::Closed | Event::ChannelClose(_))),
        "{:?}",
        sim.answerer
            .events
            .iter()
            .map(|(_, e)| format!("{e:?}"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn local_addresses_are_checked() {
    let now = base();
    assert!(RtcLeg::new(now, &[]).is_err());
    assert!(RtcLeg::new(now, &["0.0.0.0:5000".parse().unwrap()]).is_err());
    assert!(RtcLeg::new(now, &[leg_addr(), "[::1]:5000".parse().unwrap()]).is_ok());
}

/// Connect, talk, send audio, go silent: the leg's event trace with times.
fn scripted_run(seed: u64) -> Vec<String> {
    fastrand::seed(seed);
    let mut sim = Sim::new();
    sim.negotiate(true).unwrap();
    sim.connect();
    sim.leg.send_text(sim.now, "hello").unwrap();
    sim.collect_leg();
    let start = sim.now;
    for (k, frame) in opus_frames(10).iter().enumerate() {
        sim.advance_to(start + Duration::from_millis(20 * k as u64));
        sim.answerer_send_opus(frame);
        sim.leg.send_audio(sim.now, frame.clone()).unwrap();
        sim.collect_leg();
    }
    sim.answerer_send_text(false, b"bye");
    sim.advance_to(sim.now + Duration::from_secs(2));
    sim.leg_events
        .iter()
        .map(|(t, e)| format!("{t:?} {e:?}"))
        .chain([format!("steps {}", sim.steps)])
        .collect()
}

#[test]
fn the_same_run_twice_gives_the_same_timings() {
    let a = scripted_run(11);
    let b = scripted_run(11);
    assert_eq!(a, b);
    assert!(a.len() > 12);
}
