//! Live sessions: `POST /v1/live/sessions`, a `FakeLive` brain.

use super::*;
use crate::audio::g711;
use crate::sim::fake_live::LiveTurn;
use crate::sim::speech::rms;

const LIVE_URL: &str = "https://api.openai.com/v1/live/sessions";

fn json_headers() -> Vec<(String, String)> {
    vec![
        ("Authorization".into(), "Bearer sk-test".into()),
        ("Content-Type".into(), "application/json".into()),
    ]
}

fn live_session() -> Value {
    json!({
        "model": "gpt-live-1",
        "instructions": "Be brief.",
        "audio": {"output": {"voice": "marin"}},
        "delegation": {"type": "responses", "responses": {"model": "gpt-5.6-luna", "tools": []}},
    })
}

fn live_body(sdp: &str, session: &Value) -> Vec<u8> {
    json!({"session": session, "transport": {"type": "webrtc", "sdp": sdp}})
        .to_string()
        .into_bytes()
}

fn live_mode(greeting_ms: u32) -> WebRtcFakeMode {
    WebRtcFakeMode {
        live_script: Some(LiveScript {
            turns: vec![LiveTurn {
                text: "Hello, how can I help?".into(),
                audio_ms: greeting_ms,
                ..LiveTurn::default()
            }],
            record_input_audio: true,
            ..LiveScript::default()
        }),
        ..WebRtcFakeMode::default()
    }
}

impl Harness {
    /// An offerer connected to a Live session created with [`live_session`].
    fn live(mode: WebRtcFakeMode, offer: Offer) -> Self {
        let fake = FakeRealtimeWebRtc::new(script(600), mode, server_addr());
        Self::created(fake, offer, NetParams::default(), |fake, base, sdp| {
            let body = live_body(sdp, &live_session());
            let answer = fake.handle_http(base, "POST", LIVE_URL, &json_headers(), &body);
            assert_eq!(answer.0, 201, "{}", String::from_utf8_lossy(&answer.2));
            let v: Value = serde_json::from_slice(&answer.2).unwrap();
            v["transport"]["sdp"].as_str().unwrap().to_owned()
        })
    }

    /// Sends 20 ms μ-law frames of `bytes` (160 each) in real time.
    fn talk_pcmu(&mut self, bytes: &[u8]) {
        let pt = self
            .rtc
            .writer(self.mid)
            .unwrap()
            .payload_params()
            .find(|p| p.spec().codec == Codec::PCMU)
            .unwrap()
            .pt();
        for frame in bytes.chunks(160) {
            let time = MediaTime::new(self.talk_ts, Frequency::EIGHT_KHZ);
            self.talk_ts += 160;
            let now = self.now;
            self.rtc
                .writer(self.mid)
                .unwrap()
                .write(pt, now, time, frame.to_vec())
                .unwrap();
            self.drain_offerer();
            self.run_for(ms(20));
        }
    }

    fn live_report(&self) -> LiveReport {
        self.fake.report().live().cloned().expect("a Live session")
    }
}

#[test]
fn live_creation_answers_201_json_with_the_session_and_an_sdp_answer() {
    fastrand::seed(1);
    let base = origin();
    let mut fake = FakeRealtimeWebRtc::new(script(600), live_mode(600), server_addr());
    let (mut rtc, _, _, pending, sdp) = offerer(base, Offer::OpusAndPcmu);
    let body = live_body(&sdp, &live_session());
    let (status, headers, answer) =
        fake.handle_http(base, "POST", LIVE_URL, &json_headers(), &body);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(
        headers,
        [("Content-Type".to_owned(), "application/json".to_owned())]
    );
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["session"]["id"], "live_rtc_0001");
    assert_eq!(answer["session"]["object"], "live.session");
    assert_eq!(answer["session"]["model"], "gpt-live-1");
    assert_eq!(answer["transport"]["type"], "webrtc");
    let text = answer["transport"]["sdp"].as_str().unwrap();
    assert!(
        text.contains("opus/48000/2") && text.contains("PCMU/8000"),
        "{text}"
    );
    assert!(text.contains("a=setup:active"), "{text}");
    let parsed = SdpAnswer::from_sdp_string(text).unwrap();
    rtc.sdp_api().accept_answer(pending, parsed).unwrap();
    let report = fake.report();
    let call = &report.calls[0];
    assert_eq!(call.call_id, "live_rtc_0001");
    assert_eq!(call.session.as_ref(), Some(&live_session()));
    let live = call.live.as_ref().unwrap();
    assert_eq!(live.session_id.as_deref(), Some("live_rtc_0001"));
    assert_eq!(
        live.started_at, None,
        "session.started waits for the channel"
    );
    assert!(
        report.all_violations().is_empty(),
        "{:?}",
        report.all_violations()
    );
    // The Realtime hangup endpoint does not know Live sessions.
    let hangup = "https://api.openai.com/v1/realtime/calls/live_rtc_0001/hangup";
    assert_eq!(
        fake.handle_http(base, "POST", hangup, &json_headers(), b"")
            .0,
        404
    );
}

#[test]
fn live_creation_refusals_carry_the_documented_error_json() {
    fastrand::seed(1);
    let base = origin();
    let (_, _, _, _, sdp) = offerer(base, Offer::OpusAndPcmu);
    let post = |mode: WebRtcFakeMode, h: &[(String, String)], body: &[u8]| {
        let mut fake = FakeRealtimeWebRtc::new(script(600), mode, server_addr());
        let answer = fake.handle_http(base, "POST", LIVE_URL, h, body);
        (answer, fake.report())
    };
    let ok = WebRtcFakeMode::default;
    let refused = |body: Vec<u8>| {
        let (a, r) = post(ok(), &json_headers(), &body);
        assert_eq!(a.0, 400, "{}", String::from_utf8_lossy(&a.2));
        assert!(r.calls.is_empty());
        assert_eq!(r.all_violations().len(), 1, "{:?}", r.all_violations());
        let e = error_of(&a);
        (
            e["code"].as_str().unwrap_or("").to_owned(),
            e["param"].as_str().map(str::to_owned),
        )
    };
    let pair = |code: &str, param: Option<&str>| (code.to_owned(), param.map(str::to_owned));

    let mut with_format = live_session();
    with_format["audio"]["format"] = json!({"type": "audio/pcmu", "rate": 8000});
    assert_eq!(
        refused(live_body(&sdp, &with_format)),
        pair("unknown_parameter", Some("session.audio.format"))
    );
    let mut realtime = live_session();
    realtime["type"] = json!("realtime");
    assert_eq!(
        refused(live_body(&sdp, &realtime)),
        pair("unknown_parameter", Some("session.type"))
    );
    let no_transport = json!({"session": live_session()}).to_string().into_bytes();
    assert_eq!(
        refused(no_transport),
        pair("missing_required_parameter", Some("transport"))
    );
    let sip = json!({"session": live_session(), "transport": {"type": "sip", "sdp": sdp}});
    assert_eq!(
        refused(sip.to_string().into_bytes()),
        pair("invalid_value", Some("transport.type"))
    );
    let no_sdp = json!({"session": live_session(), "transport": {"type": "webrtc"}});
    assert_eq!(
        refused(no_sdp.to_string().into_bytes()),
        pair("missing_required_parameter", Some("transport.sdp"))
    );
    let no_session = json!({"transport": {"type": "webrtc", "sdp": sdp}});
    assert_eq!(
        refused(no_session.to_string().into_bytes()),
        pair("missing_required_parameter", Some("session"))
    );
    let extra = json!({"session": live_session(), "transport": {"type": "webrtc", "sdp": sdp},
                       "model": "gpt-live-1"});
    assert_eq!(
        refused(extra.to_string().into_bytes()),
        pair("unknown_parameter", Some("model"))
    );
    assert_eq!(refused(b"{not json".to_vec()).0, "invalid_json");
    assert_eq!(
        refused(live_body("v=0", &live_session())).0,
        "invalid_offer"
    );

    let body = live_body(&sdp, &live_session());
    let multipart_type = headers();
    let (a, _) = post(ok(), &multipart_type, &body);
    assert_eq!(a.0, 400);
    let no_auth = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    let (a, r) = post(ok(), &no_auth, &body);
    assert_eq!(
        (a.0, error_of(&a)["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert_eq!(r.violations.len(), 1);
    let refuse = WebRtcFakeMode {
        refuse_with: Some(401),
        ..WebRtcFakeMode::default()
    };
    let (a, r) = post(refuse, &json_headers(), &body);
    assert_eq!(
        (a.0, error_of(&a)["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert!(r.calls.is_empty() && r.violations.is_empty());

    // Opus only: G.711 leaves the answer; a G.711-only offer is refused.
    let opus_only = WebRtcFakeMode {
        opus_only: true,
        ..WebRtcFakeMode::default()
    };
    let (a, _) = post(opus_only.clone(), &json_headers(), &body);
    let v: Value = serde_json::from_slice(&a.2).unwrap();
    let text = v["transport"]["sdp"].as_str().unwrap();
    assert!(
        text.contains("opus/48000/2") && !text.contains("PCMU"),
        "{text}"
    );
    let (_, _, _, _, pcmu_sdp) = offerer(base, Offer::PcmuOnly);
    let (a, _) = post(
        opus_only,
        &json_headers(),
        &live_body(&pcmu_sdp, &live_session()),
    );
    assert_eq!(a.0, 400);
}

#[test]
fn live_session_starts_on_the_channel_and_streams_paced_rtp_silence_included() {
    fastrand::seed(1);
    let mut h = Harness::live(live_mode(1_000), Offer::OpusAndPcmu);
    h.connect();
    let (started_at, started) = h.first("session.started");
    assert_eq!(h.types()[0], "session.started");
    assert_eq!(started["session"]["id"], "live_rtc_0001");
    // RTP flows from session.started on, one packet every 20 ms, speech or not.
    let first = h.media[0].0;
    assert!(first >= started_at, "{first:?} {started_at:?}");
    let before = h.media.len();
    h.run_for(ms(1_000));
    let count = h.media.len();
    assert_eq!(count - before, 50, "a packet every 20 ms");
    for w in h.media.windows(2) {
        assert_eq!(w[1].2 - w[0].2, 960, "Opus RTP clock: 960 ticks per 20 ms");
    }
    let quiet = h.payloads.iter().map(Vec::len).max().unwrap();
    // The greeting: speech packets (bigger Opus frames) after the instruction.
    h.send(
        json!({"type": "session.instructions.append", "delegation_id": null,
                  "content": "Greet the caller."}),
    );
    h.run_for(ms(2_000));
    let loud = h.payloads[count..]
        .iter()
        .filter(|p| p.len() > quiet + 10)
        .count();
    assert!(
        (45..=52).contains(&loud),
        "{loud} speech packets for 1 s of speech"
    );
    assert!(!h.types().contains(&"session.output_audio.delta"));
    let transcript: String = h
        .events
        .iter()
        .filter(|(_, e)| e["type"] == "session.output_transcript.delta")
        .map(|(_, e)| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(transcript, "Hello, how can I help?");
    let report = h.fake.report();
    let call = &report.calls[0];
    let in_flight = call.rtp_out - h.media.len() as u64;
    assert!(in_flight <= 2, "{in_flight} packets on the wire");
    assert_eq!(call.live.as_ref().unwrap().speech_ms_sent(), 1_000);
    assert!(
        report.all_violations().is_empty(),
        "{:?}",
        report.all_violations()
    );
}

#[test]
fn caller_audio_over_rtp_is_heard_and_kept_byte_for_byte() {
    fastrand::seed(1);
    let mut h = Harness::live(live_mode(400), Offer::PcmuOnly);
    h.connect();
    let mut sent = Vec::new();
    for k in 0..100u64 {
        let mut pcm = [0i16; 160];
        if (20..60).contains(&k) {
            speech_like(8000, 0, k * 160, &mut pcm);
        }
        sent.extend(pcm.iter().map(|&s| g711::ulaw_encode(s)));
    }
    h.talk_pcmu(&sent);
    h.run_for(ms(1_500));
    let report = h.fake.report();
    let call = &report.calls[0];
    assert_eq!(call.codec, AudioCodec::Pcmu);
    assert_eq!(call.codec_in, Some(AudioCodec::Pcmu));
    assert_eq!(call.rtp_payload_in, sent, "RTP carried the bytes unchanged");
    let live = call.live.as_ref().unwrap();
    assert_eq!(live.caller_speech_started.len(), 1);
    assert_eq!(live.caller_speech_stopped.len(), 1);
    assert!(live.input_gaps.is_empty(), "{:?}", live.input_gaps);
    assert_eq!(live.input_audio_bytes, 2 * sent.len() as u64);
    // Its answer came back as PCMU, loud.
    assert!(
        h.media
            .iter()
            .all(|(_, pt, _, len)| **pt == 0 && *len == 160)
    );
    let loud = h
        .payloads
        .iter()
        .filter(|p| rms(&p.iter().map(|&b| g711::ulaw_decode(b)).collect::<Vec<_>>()) > 300.0)
        .count();
    // Not greeted, the model answers with its first scripted turn (400 ms).
    assert_eq!(loud, 20);
    assert!(
        report.all_violations().is_empty(),
        "{:?}",
        report.all_violations()
    );
}

#[test]
fn start_and_append_on_the_channel_are_violations() {
    fastrand::seed(1);
    let mut h = Harness::live(live_mode(400), Offer::OpusAndPcmu);
    h.connect();
    h.send(json!({"type": "session.start", "session": live_session()}));
    h.send(json!({"type": "session.input_audio.append", "audio": "AAAA"}));
    h.run_for(ms(100));
    let codes: Vec<&str> = h
        .events
        .iter()
        .filter(|(_, e)| e["type"] == "error")
        .map(|(_, e)| e["error"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["session_already_started", "invalid_value"]);
    assert_eq!(h.fake.report().all_violations().len(), 2);
}

#[test]
fn session_close_is_answered_then_the_fake_closes_the_connection() {
    fastrand::seed(1);
    let mut h = Harness::live(live_mode(400), Offer::OpusAndPcmu);
    h.connect();
    h.run_for(ms(500));
    h.send(json!({"type": "session.close"}));
    let asked = h.at();
    h.run_for(ms(2_000));
    let (closed_at, closed) = h.first("session.closed");
    assert_eq!(closed["reason"], "close_requested");
    assert!(closed_at >= asked + ms(200), "{closed_at:?}");
    // The offerer did not close: the fake does, after its grace period.
    assert!(h.closed, "the offerer saw the DTLS close");
    let report = h.fake.report();
    let call = &report.calls[0];
    let peer_closed = call.closed_at.unwrap();
    assert!(
        peer_closed >= closed_at + ms(400),
        "{peer_closed:?} {closed_at:?}"
    );
    assert_eq!(
        h.live_report().closed_reason.as_deref(),
        Some("close_requested")
    );
    assert_eq!(h.fake.poll_timeout(), None);
}

#[test]
fn drop_after_silences_a_live_session() {
    fastrand::seed(1);
    let mode = WebRtcFakeMode {
        drop_after: Some(ms(1_500)),
        ..live_mode(400)
    };
    let mut h = Harness::live(mode, Offer::OpusAndPcmu);
    h.connect();
    h.run_for(ms(3_000));
    let sent = h.down.stats().sent;
    h.run_for(ms(2_000));
    assert_eq!(h.down.stats().sent, sent, "nothing after the drop");
    let report = h.fake.report();
    let call = &report.calls[0];
    let dropped = call.dropped_at.unwrap();
    assert_eq!(dropped, call.connected_at.unwrap() + ms(1_500));
    assert_eq!(h.live_report().transport_lost_at, Some(dropped));
    assert!(!h.live_report().closed_by_client);
    assert!(h.media.last().unwrap().0 <= dropped + ms(40));
    assert_eq!(h.fake.poll_timeout(), None);
}

/// Connect, a greeting, caller speech: the event and RTP trace.
fn live_trace() -> Vec<String> {
    fastrand::seed(1);
    let mut h = Harness::live(live_mode(800), Offer::OpusAndPcmu);
    h.connect();
    h.send(json!({"type": "session.instructions.append", "delegation_id": null, "content": "Hi"}));
    h.run_for(ms(1_500));
    h.talk(true, 600);
    h.talk(false, 1_000);
    h.run_for(ms(1_000));
    let mut trace: Vec<String> = h
        .events
        .iter()
        .map(|(t, e)| format!("{t:?} {}", e["type"]))
        .collect();
    trace.extend(
        h.media
            .iter()
            .map(|(t, pt, ts, len)| format!("{t:?} {pt} {ts} {len}")),
    );
    trace
}

#[test]
fn live_sessions_are_deterministic() {
    let a = live_trace();
    assert_eq!(a, live_trace());
    assert!(
        a.iter()
            .any(|l| l.contains("session.input_transcript.delta"))
    );
}

#[test]
fn garbage_creation_bodies_are_refused_never_panic() {
    fastrand::seed(1);
    let base = origin();
    let mut fake = FakeRealtimeWebRtc::new(script(600), live_mode(400), server_addr());
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0xff, 0xfe, 0x00],
        b"null".to_vec(),
        b"[]".to_vec(),
        br#"{"session": 5, "transport": {"type": "webrtc", "sdp": "v=0"}}"#.to_vec(),
        br#"{"session": {}, "transport": "webrtc"}"#.to_vec(),
        br#"{"session": {}, "transport": {"type": 7, "sdp": 1}}"#.to_vec(),
        br#"{"session": {"model": "gpt-live-1"}, "transport": {"type": "webrtc", "sdp": "m=audio"}}"#
            .to_vec(),
        "{\"session\":{\"model\":\"gpt-live-1\"},\"transport\":{\"type\":\"webrtc\",\"sdp\":\"\u{0}m=audio\u{1F600}\"}}"
            .as_bytes()
            .to_vec(),
    ];
    for body in &bodies {
        let (status, _, answer) = fake.handle_http(base, "POST", LIVE_URL, &json_headers(), body);
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));
        error_of(&(status, Vec::new(), answer));
    }
    let report = fake.report();
    assert!(report.calls.is_empty());
    assert_eq!(report.violations.len(), bodies.len());
    // Datagrams that are not for any call are counted, not a crash.
    let garbage = [0u8, 1, 2, 3, 0x80, 0xff];
    fake.handle_udp(base, client_addr(), server_addr(), &garbage);
    fake.handle_udp(base, client_addr(), server_addr(), &[]);
    let report = fake.report();
    assert_eq!(report.udp_malformed + report.udp_ignored, 2);
}
