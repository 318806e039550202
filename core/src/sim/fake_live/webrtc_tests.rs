//! The brain in WebRTC mode, driven by hand: session checks, `session.started` on channel
//! open, samples in, paced frames out, and what does not belong on the data channel.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::sim::fake_realtime::AudioFrame;
use crate::sim::speech::{rms, speech_like};

use crate::tests::origin;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn media_session() -> Value {
    json!({
        "model": "gpt-live-1",
        "instructions": "You are a phone agent.",
        "audio": {"output": {"voice": "marin"}},
        "delegation": {"type": "responses", "responses": {
            "model": "gpt-5.6-luna",
            "tools": [{"type": "function", "name": "lookup_order",
                       "parameters": {"type": "object", "properties": {}}}],
        }},
    })
}

fn script() -> LiveScript {
    LiveScript {
        turns: vec![
            LiveTurn {
                text: "Hello, how can I help?".into(),
                audio_ms: 1_000,
                ..LiveTurn::default()
            },
            LiveTurn {
                text: "Sure.".into(),
                audio_ms: 400,
                ..LiveTurn::default()
            },
        ],
        ..LiveScript::default()
    }
}

/// One brain on a virtual clock; keeps its events and frames with their times.
struct Brain {
    fake: FakeLive,
    base: Instant,
    now: Instant,
    events: Vec<(Duration, Value)>,
    frames: Vec<(Duration, AudioFrame)>,
    closes: Vec<(Duration, u16)>,
    caller_sample: u64,
}

impl Brain {
    fn new(rate: u32) -> Self {
        let base = origin();
        let mut fake =
            FakeLive::new_webrtc(base, script(), &media_session(), rate, "live_rtc_0001").unwrap();
        fake.set_origin(base);
        Self {
            fake,
            base,
            now: base,
            events: Vec::new(),
            frames: Vec::new(),
            closes: Vec::new(),
            caller_sample: 0,
        }
    }

    fn drain(&mut self) {
        let at = self.now - self.base;
        while let Some(out) = self.fake.poll_output() {
            match out {
                FakeServerOutput::Text(t) => {
                    self.events.push((at, serde_json::from_str(&t).unwrap()));
                }
                FakeServerOutput::Close { code, .. } => self.closes.push((at, code)),
            }
        }
        while let Some(f) = self.fake.poll_audio_frame() {
            self.frames.push((at, f));
        }
    }

    fn send(&mut self, event: Value) {
        self.fake.handle_text(self.now, &event.to_string());
        self.drain();
    }

    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(t) = self.fake.poll_timeout().filter(|t| *t <= target) {
            self.now = t;
            self.fake.handle_timeout(t);
            self.drain();
        }
        self.now = target;
    }

    /// Caller audio at 8 kHz in 20 ms frames, speech or silence.
    fn talk(&mut self, total: Duration, loud: bool) {
        for _ in 0..total.as_millis() / 20 {
            let mut samples = [0i16; 160];
            if loud {
                speech_like(8000, 0, self.caller_sample, &mut samples);
            }
            self.caller_sample += 160;
            self.fake.handle_input_samples(self.now, &samples, 8000);
            self.drain();
            self.advance(ms(20));
        }
    }

    fn types(&self) -> Vec<&str> {
        self.events
            .iter()
            .map(|(_, e)| e["type"].as_str().unwrap_or("?"))
            .collect()
    }
}

#[test]
fn media_session_is_checked_strictly_and_format_is_refused() {
    let base = origin();
    let make = |session: Value| {
        FakeLive::new_webrtc(base, LiveScript::default(), &session, 24000, "live_rtc_1")
    };
    let fake = make(media_session()).unwrap();
    assert!(fake.is_webrtc());
    assert_eq!(fake.output_rate_hz(), Some(24000));
    let resource = fake.session_resource();
    assert_eq!(resource["id"], "live_rtc_1");
    assert_eq!(resource["audio"], json!({"output": {"voice": "marin"}}));
    assert_eq!(fake.report().session_start, Some(media_session()));

    let mut with_format = media_session();
    with_format["audio"]["format"] = json!({"type": "audio/pcmu", "rate": 8000});
    let e = make(with_format).unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.param.as_deref()),
        ("unknown_parameter", Some("session.audio.format"))
    );
    let mut realtime = media_session();
    realtime["type"] = json!("realtime");
    assert_eq!(
        make(realtime).unwrap_err().param.as_deref(),
        Some("session.type")
    );
    let mut model = media_session();
    model["model"] = json!("gpt-realtime");
    assert_eq!(make(model).unwrap_err().code, "invalid_model");
    assert_eq!(make(json!("x")).unwrap_err().code, "invalid_type");

    // The WebRTC-only fields are accepted and echoed; bad values are not.
    let mut idle = media_session();
    idle["idle_timeout_s"] = json!(30);
    idle["wake_policy"] = json!({"type": "speech", "vad_threshold": 0.4});
    let fake = make(idle).unwrap();
    assert_eq!(fake.session_resource()["idle_timeout_s"], 30);
    let mut bad = media_session();
    bad["wake_policy"] = json!({"type": "speech", "vad_threshold": 2});
    assert_eq!(
        make(bad).unwrap_err().param.as_deref(),
        Some("session.wake_policy")
    );

    // Prior input must be text messages.
    let mut input = media_session();
    input["input"] = json!([{"type": "message", "role": "user",
                             "content": [{"type": "input_text", "text": "Hi"}]}]);
    assert!(make(input).is_ok());
    let mut input = media_session();
    input["input"] =
        json!([{"role": "assistant", "content": [{"type": "input_text", "text": "Hi"}]}]);
    assert_eq!(
        make(input).unwrap_err().param.as_deref(),
        Some("session.input[0]")
    );
}

#[test]
fn session_started_waits_for_the_channel_then_frames_flow_at_real_time_pace() {
    let mut b = Brain::new(24000);
    b.advance(ms(500));
    assert!(
        b.events.is_empty() && b.frames.is_empty(),
        "nothing before the channel"
    );
    b.fake.handle_channel_open(b.now);
    b.drain();
    assert_eq!(b.types(), ["session.started"]);
    let started = &b.events[0].1;
    assert_eq!(started["session"]["id"], "live_rtc_0001");
    assert!(started.get("client_event_id").is_none());
    b.advance(ms(1_000));
    // One 20 ms frame of silence every 20 ms, from session.started on.
    assert_eq!(b.frames.len(), 51, "{}", b.frames.len());
    for (i, (at, f)) in b.frames.iter().enumerate() {
        assert_eq!(*at, ms(500) + ms(20) * i as u32);
        assert_eq!(f.samples.len(), 480);
        assert_eq!(rms(&f.samples), 0.0);
    }
    // A second channel open changes nothing.
    b.fake.handle_channel_open(b.now);
    b.drain();
    assert_eq!(b.types(), ["session.started"]);
}

#[test]
fn greeting_speaks_in_frames_and_the_transcript_goes_on_the_channel() {
    let mut b = Brain::new(8000);
    b.fake.handle_channel_open(b.now);
    b.drain();
    b.send(
        json!({"type": "session.instructions.append", "delegation_id": null,
                  "content": "Greet the caller."}),
    );
    b.advance(ms(2_000));
    let loud: Vec<Duration> = b
        .frames
        .iter()
        .filter(|(_, f)| rms(&f.samples) > 300.0)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(loud.len(), 50, "1 s of speech in 20 ms frames");
    assert_eq!(loud[0], ms(300), "response_delay after the instruction");
    for w in loud.windows(2) {
        assert_eq!(w[1] - w[0], ms(20));
    }
    assert!(b.frames.iter().all(|(_, f)| f.samples.len() == 160));
    assert!(!b.types().contains(&"session.output_audio.delta"));
    let pieces: Vec<&Value> = b
        .events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["type"] == "session.output_transcript.delta")
        .collect();
    let text: String = pieces
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello, how can I help?");
    assert_eq!(pieces.len(), 10, "one fragment per 100 ms of speech");
    assert_eq!(
        (pieces[0]["start_ms"].as_u64(), pieces[0]["end_ms"].as_u64()),
        (Some(300), Some(400))
    );
    assert_eq!(b.fake.report().speech_ms_sent(), 1_000);
}

#[test]
fn caller_samples_feed_the_vad_and_get_an_answer() {
    let mut b = Brain::new(24000);
    b.fake.handle_channel_open(b.now);
    b.drain();
    b.talk(ms(200), false);
    b.talk(ms(800), true);
    b.talk(ms(1_000), false);
    b.advance(ms(1_000));
    let report = b.fake.report();
    assert_eq!(report.caller_speech_started.len(), 1);
    assert_eq!(report.caller_speech_stopped.len(), 1);
    assert!((report.input_audio_ms - 2_000.0).abs() < 1e-6);
    assert_eq!(report.input_audio_bytes, 2 * 8 * 2_000);
    assert!(report.input_gaps.is_empty(), "{:?}", report.input_gaps);
    assert_eq!(report.turns.len(), 1);
    assert_eq!(report.turns[0].trigger, TurnTrigger::CallerTurn);
    assert!(b.types().contains(&"session.input_transcript.delta"));
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}

#[test]
fn start_and_append_on_the_channel_are_violations() {
    let mut b = Brain::new(24000);
    b.send(json!({"type": "session.instructions.append", "delegation_id": null, "content": "x"}));
    assert_eq!(
        b.fake.report().violations.len(),
        1,
        "before the channel opened"
    );
    b.fake.handle_channel_open(b.now);
    b.drain();
    b.send(json!({"type": "session.start", "session": media_session()}));
    b.send(json!({"type": "session.input_audio.append", "audio": "AAAA"}));
    let errors: Vec<&Value> = b
        .events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["type"] == "error")
        .collect();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["error"]["code"], "session_already_started");
    assert_eq!(errors[1]["error"]["code"], "invalid_value");
    assert_eq!(b.fake.report().violations.len(), 3);
}

#[test]
fn close_answers_on_the_channel_and_a_lost_transport_stops_everything() {
    let mut b = Brain::new(24000);
    b.fake.handle_channel_open(b.now);
    b.drain();
    b.advance(ms(1_000));
    b.send(json!({"type": "session.close"}));
    b.advance(ms(500));
    assert_eq!(b.types().last(), Some(&"session.closed"));
    assert_eq!(b.closes, [(ms(1_200), 1000)]);
    let report = b.fake.report();
    assert_eq!(report.closed_reason.as_deref(), Some("close_requested"));
    assert_eq!(b.fake.poll_timeout(), None);

    let mut b = Brain::new(24000);
    b.fake.handle_channel_open(b.now);
    b.drain();
    b.advance(ms(1_000));
    let frames = b.frames.len();
    b.fake.handle_transport_lost(b.now);
    b.advance(ms(1_000));
    assert_eq!(b.frames.len(), frames);
    let report = b.fake.report();
    assert_eq!(report.transport_lost_at, Some(ms(1_000)));
    assert!(!report.closed_by_client);
    assert_eq!(b.fake.poll_timeout(), None);
}

#[test]
fn input_history_goes_on_with_the_script() {
    let mut fake = FakeLive::new(script());
    let base = origin();
    let auth = vec![("Authorization".to_owned(), "Bearer sk".to_owned())];
    fake.handle_connect(base, "wss://api.openai.com/v1/live/sessions", &auth)
        .unwrap();
    let mut session = media_session();
    session["audio"] = json!({"format": {"type": "audio/pcmu", "rate": 8000}});
    session["input"] = json!([
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]},
    ]);
    let start = json!({"type": "session.start", "session": session});
    fake.handle_text(base, &start.to_string());
    // The greeting is over: an instruction no longer starts turn 0.
    let append = json!({"type": "session.instructions.append", "delegation_id": null,
                        "content": "The caller pressed 4."});
    fake.handle_text(base, &append.to_string());
    fake.handle_timeout(base + ms(1_000));
    assert!(fake.report().turns.is_empty(), "{:?}", fake.report().turns);
    assert!(fake.report().violations.is_empty());
}
