//! The fake endpoint driven by an offerer `Rtc` (the bridge's role) on a virtual clock.

use core::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::*;
use crate::audio::opus::OpusEncoder;
use crate::sim::fake_realtime::{BufferEvent, ScriptedResponse};
use crate::sim::net::{NetParams, SimNet};
use crate::sim::speech::speech_like;

mod live;
mod realtime;

const BOUNDARY: &str = "barbara-7MA4YWxkTrZu0gW";
const URL: &str = "https://api.openai.com/v1/realtime/calls";

fn client_addr() -> SocketAddr {
    "10.0.0.1:50000".parse().unwrap()
}

fn server_addr() -> SocketAddr {
    "10.0.0.2:3478".parse().unwrap()
}

use crate::tests::origin;

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
    /// The payloads of `media`.
    payloads: Vec<Vec<u8>>,
    talk_sample: u64,
    talk_ts: u64,
    encoder: OpusEncoder,
}

impl Harness {
    fn new(script: RealtimeScript, mode: WebRtcFakeMode, offer: Offer, net: NetParams) -> Self {
        let fake = FakeRealtimeWebRtc::new(script, mode, server_addr());
        Self::created(fake, offer, net, |fake, base, sdp| {
            let answer = fake.handle_http(
                base,
                "POST",
                URL,
                &headers(),
                &multipart(sdp, &session_json()),
            );
            assert_eq!(answer.0, 201, "{}", String::from_utf8_lossy(&answer.2));
            String::from_utf8(answer.2).unwrap()
        })
    }

    /// The offerer and `fake`, connected by `create`, which posts the offer and returns the
    /// SDP answer.
    fn created(
        mut fake: FakeRealtimeWebRtc,
        offer: Offer,
        net: NetParams,
        create: impl FnOnce(&mut FakeRealtimeWebRtc, Instant, &str) -> String,
    ) -> Self {
        let base = origin();
        fake.set_origin(base);
        let (rtc, mid, cid, pending, sdp) = offerer(base, offer);
        let answer = create(&mut fake, base, &sdp);
        let answer = SdpAnswer::from_sdp_string(&answer).expect("the answer parses");
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
            payloads: Vec::new(),
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
                self.payloads.push(d.data.to_vec());
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
