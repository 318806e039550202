//! The fake driven by hand-written client frames on a virtual clock.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::*;
use crate::audio::g711;
use crate::sim::speech::{rms, speech_like};

const URL: &str = "wss://api.openai.com/v1/live/sessions";

fn auth() -> Vec<(String, String)> {
    vec![("Authorization".to_owned(), "Bearer sk-test".to_owned())]
}

use crate::tests::origin;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn start_event(format: Value) -> Value {
    json!({
        "type": "session.start",
        "event_id": "start-1",
        "session": {
            "model": "gpt-live-1",
            "instructions": "You are a phone agent.",
            "audio": {"format": format, "output": {"voice": "marin"}},
            "delegation": {"type": "responses", "responses": {
                "model": "gpt-5.6-luna",
                "instructions": "Use the tools.",
                "tools": [{"type": "function", "name": "lookup_order", "description": "Looks up.",
                           "parameters": {"type": "object", "properties": {}}}],
            }},
        },
    })
}

fn pcmu() -> Value {
    json!({"type": "audio/pcmu", "rate": 8000})
}

fn types(evs: &[Value]) -> Vec<&str> {
    evs.iter()
        .map(|e| e["type"].as_str().unwrap_or("?"))
        .collect()
}

fn of_type<'a>(evs: &'a [Value], ty: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["type"] == ty).collect()
}

/// Drives one fake on a virtual clock and keeps every event it sent, with its time.
struct Harness {
    fake: FakeLive,
    base: Instant,
    now: Instant,
    log: Vec<(Duration, Value)>,
    closes: Vec<(Duration, u16)>,
    caller_sample: u64,
}

impl Harness {
    fn connect(script: LiveScript) -> Self {
        let base = origin();
        let mut fake = FakeLive::new(script);
        fake.set_origin(base);
        fake.handle_connect(base, URL, &auth()).unwrap();
        Self {
            fake,
            base,
            now: base,
            log: Vec::new(),
            closes: Vec::new(),
            caller_sample: 0,
        }
    }

    /// Connects and starts a μ-law session.
    fn started(script: LiveScript) -> Self {
        let mut h = Self::connect(script);
        let evs = h.send(start_event(pcmu()));
        assert_eq!(types(&evs)[0], "session.started", "{evs:?}");
        h
    }

    fn drain(&mut self) -> Vec<Value> {
        let at = self.now - self.base;
        let mut evs = Vec::new();
        while let Some(out) = self.fake.poll_output() {
            match out {
                FakeServerOutput::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    self.log.push((at, v.clone()));
                    evs.push(v);
                }
                FakeServerOutput::Close { code, .. } => self.closes.push((at, code)),
            }
        }
        evs
    }

    fn send(&mut self, event: Value) -> Vec<Value> {
        self.fake.handle_text(self.now, &event.to_string());
        self.drain()
    }

    /// Runs every deadline up to `now + d`, each at its own instant.
    fn advance(&mut self, d: Duration) -> Vec<Value> {
        let target = self.now + d;
        let mut evs = Vec::new();
        while let Some(t) = self.fake.poll_timeout().filter(|t| *t <= target) {
            self.now = t;
            self.fake.handle_timeout(t);
            evs.extend(self.drain());
        }
        self.now = target;
        evs
    }

    /// Streams `total` of caller μ-law audio in 20 ms appends, speech or silence.
    fn stream(&mut self, total: Duration, loud: bool) -> Vec<Value> {
        let mut evs = Vec::new();
        for _ in 0..total.as_millis() / 20 {
            let mut samples = [0i16; 160];
            if loud {
                speech_like(8000, 0, self.caller_sample, &mut samples);
            }
            self.caller_sample += 160;
            let bytes: Vec<u8> = samples.iter().map(|&s| g711::ulaw_encode(s)).collect();
            let append =
                json!({"type": "session.input_audio.append", "audio": BASE64.encode(bytes)});
            evs.extend(self.send(append));
            evs.extend(self.advance(ms(20)));
        }
        evs
    }

    fn greet(&mut self) -> Vec<Value> {
        self.send(
            json!({"type": "session.instructions.append", "event_id": "greet",
                         "delegation_id": null, "content": "Greet the caller."}),
        )
    }
}

fn decoded_rms(delta: &Value) -> f32 {
    let bytes = BASE64.decode(delta["delta"].as_str().unwrap()).unwrap();
    let samples: Vec<i16> = bytes.iter().map(|&b| g711::ulaw_decode(b)).collect();
    rms(&samples)
}

fn text_of(evs: &[Value], ty: &str) -> String {
    of_type(evs, ty)
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect()
}

#[test]
fn handshake_checks_path_query_and_key() {
    let base = origin();
    let refused = |url: &str, headers: &[(String, String)], script: LiveScript| {
        let mut fake = FakeLive::new(script);
        fake.handle_connect(base, url, headers)
    };
    let d = LiveScript::default;
    assert_eq!(refused(URL, &[], d()), Err(401));
    let wrong = vec![("Authorization".to_owned(), "Basic abc".to_owned())];
    assert_eq!(refused(URL, &wrong, d()), Err(401));
    let q = "wss://api.openai.com/v1/live/sessions?model=gpt-live-1";
    assert_eq!(refused(q, &auth(), d()), Err(400));
    let realtime = "wss://api.openai.com/v1/realtime?model=gpt-live-1";
    assert_eq!(refused(realtime, &auth(), d()), Err(400));
    assert_eq!(
        refused("wss://api.openai.com/v1/realtime", &auth(), d()),
        Err(404)
    );
    let attach = "wss://api.openai.com/v1/live/sessions/live_1/attach";
    assert_eq!(refused(attach, &auth(), d()), Err(404));
    let script = LiveScript {
        refuse_key: true,
        ..LiveScript::default()
    };
    assert_eq!(refused(URL, &auth(), script), Err(401));
    let script = LiveScript {
        api_key: Some("sk-other".into()),
        ..LiveScript::default()
    };
    assert_eq!(refused(URL, &auth(), script), Err(401));
    assert_eq!(
        refused("ws://127.0.0.1:9/live/sessions", &auth(), d()),
        Ok(())
    );

    let mut fake = FakeLive::new(LiveScript::default());
    assert_eq!(fake.handle_connect(base, URL, &auth()), Ok(()));
    assert_eq!(fake.handle_connect(base, URL, &auth()), Err(409));
    // Nothing is sent before session.start.
    assert_eq!(fake.poll_output(), None);
}

#[test]
fn session_start_must_come_first_and_is_strict() {
    let mut h = Harness::connect(LiveScript::default());
    let evs = h.send(json!({"type": "session.input_audio.append", "audio": "//8="}));
    assert_eq!(types(&evs), ["error"]);
    assert_eq!(evs[0]["error"]["code"], "session_not_started");

    // The Realtime shape is refused field by field, and no session starts.
    let mut bad = start_event(pcmu());
    bad["session"]["voice"] = json!("marin");
    let evs = h.send(bad);
    assert_eq!(types(&evs), ["error"]);
    assert_eq!(evs[0]["error"]["code"], "unknown_parameter");
    assert_eq!(evs[0]["error"]["param"], "session.voice");
    assert_eq!(evs[0]["error"]["client_event_id"], "start-1");
    let mut bad = start_event(json!({"type": "audio/pcmu"}));
    bad["session"]["type"] = json!("realtime");
    assert_eq!(h.send(bad)[0]["error"]["param"], "session.type");
    let evs = h.send(start_event(json!({"type": "audio/pcmu"})));
    assert_eq!(
        evs[0]["error"]["param"], "session.audio.format",
        "rate is required"
    );
    let mut bad = start_event(pcmu());
    bad["session"]["delegation"]["responses"]["tools"][0]["strict_mode"] = json!(true);
    assert_eq!(
        h.send(bad)[0]["error"]["param"],
        "session.delegation.responses.tools[0].strict_mode"
    );
    assert_eq!(
        h.advance(ms(500)),
        Vec::<Value>::new(),
        "no session, no audio"
    );
    assert_eq!(h.fake.report().violations.len(), 5);
    assert!(h.fake.report().started_at.is_none());

    let evs = h.send(start_event(pcmu()));
    // The first chunk is due at once and goes out with the next timeout.
    assert_eq!(types(&evs), ["session.started"]);
    let s = &evs[0]["session"];
    assert_eq!(evs[0]["client_event_id"], "start-1");
    assert!(s["id"].as_str().unwrap().starts_with("live_"));
    assert_eq!(s["status"], "active");
    assert_eq!(s["expires_at"], 1_790_000_000u64 + 3600);
    assert_eq!(s["audio"]["format"], pcmu());
    assert_eq!(s["audio"]["output"]["voice"], "marin");
    assert_eq!(s["delegation"]["type"], "responses");
    let evs = h.send(start_event(pcmu()));
    assert_eq!(
        of_type(&evs, "error")[0]["error"]["code"],
        "session_already_started"
    );
    assert!(h.fake.report().session_start.is_some());
}

#[test]
fn output_is_continuous_real_time_silence_until_greeted() {
    let mut h = Harness::started(LiveScript::default());
    let evs = h.advance(ms(1_000));
    let deltas = of_type(&evs, "session.output_audio.delta");
    // One chunk at start, then one every 100 ms: 11 in the first second, all silent μ-law.
    assert_eq!(deltas.len(), 11);
    for d in &deltas {
        assert!(d.get("event_id").is_none(), "deltas carry no event_id");
        let bytes = BASE64.decode(d["delta"].as_str().unwrap()).unwrap();
        assert_eq!(bytes.len(), 800);
        assert!(bytes.iter().all(|&b| b == 0xFF));
    }
    let chunks = &h.fake.report().chunks;
    assert_eq!(chunks.len(), 11);
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.at, ms(100 * i as u64));
        assert!(!c.speech);
    }
    assert_eq!(h.fake.report().max_chunk_interval(), ms(100));
}

#[test]
fn greeting_speaks_the_first_turn_then_falls_silent() {
    let script = LiveScript {
        turns: vec![LiveTurn {
            text: "Hello, how can I help?".into(),
            audio_ms: 1_000,
            ..LiveTurn::default()
        }],
        ..LiveScript::default()
    };
    let mut h = Harness::started(script);
    h.advance(ms(150));
    let evs = h.greet();
    assert_eq!(types(&evs), ["session.instructions.appended"]);
    assert_eq!(evs[0]["client_event_id"], "greet");
    assert_eq!(evs[0]["start_ms"], 150);
    let evs = h.advance(ms(2_000));
    assert_eq!(
        text_of(&evs, "session.output_transcript.delta"),
        "Hello, how can I help?"
    );
    let r = h.fake.report();
    assert_eq!(r.instructions(), ["Greet the caller."]);
    // Speech from the first chunk after 150 + 300 ms, exactly 1 s of it, then silence.
    let speech: Vec<_> = r.chunks.iter().filter(|c| c.speech).collect();
    assert_eq!(speech.len(), 10);
    assert_eq!(speech[0].at, ms(500));
    assert_eq!(r.speech_ms_sent(), 1_000);
    assert_eq!(r.quiet_after(ms(500)), Some(ms(1_500)));
    assert_eq!(r.turns[0].trigger, TurnTrigger::Greeting);
    assert_eq!(r.turns[0].first_chunk_at, Some(ms(500)));
    assert_eq!(r.turns[0].last_chunk_at, Some(ms(1_400)));
    let loud: Vec<f32> = of_type(&evs, "session.output_audio.delta")
        .iter()
        .map(|d| decoded_rms(d))
        .collect();
    assert!(loud[3..13].iter().all(|&l| l > 1_000.0), "{loud:?}");
    assert!(loud[13..].iter().all(|&l| l == 0.0), "{loud:?}");
    // The transcript's timeline matches the audio's.
    let first = &of_type(&evs, "session.output_transcript.delta")[0];
    assert_eq!(
        (first["start_ms"].as_u64(), first["end_ms"].as_u64()),
        (Some(500), Some(600))
    );
    // A second append does not make it speak again.
    h.greet();
    h.advance(ms(1_000));
    assert_eq!(h.fake.report().turns.len(), 1);
    assert!(h.fake.report().violations.is_empty());
}

#[test]
fn caller_turn_is_transcribed_then_answered() {
    let script = LiveScript {
        turns: vec![
            LiveTurn::default(),
            LiveTurn {
                text: "Your order shipped.".into(),
                audio_ms: 800,
                ..LiveTurn::default()
            },
        ],
        caller_transcripts: vec!["Where is my order?".into()],
        ..LiveScript::default()
    };
    let mut h = Harness::started(script);
    h.greet();
    h.stream(ms(1_500), false);
    let evs = [h.stream(ms(1_000), true), h.stream(ms(1_500), false)].concat();
    let r = h.fake.report();
    assert_eq!(r.caller_speech_started.len(), 1);
    assert_eq!(r.caller_speech_stopped.len(), 1);
    let words = of_type(&evs, "session.input_transcript.delta");
    assert_eq!(
        text_of(&evs, "session.input_transcript.delta"),
        "Where is my order?"
    );
    assert_eq!(words.len(), 4);
    assert_eq!(words[0]["start_ms"], 1_500);
    assert_eq!(words[3]["end_ms"], 2_500);
    assert_eq!(
        text_of(&evs, "session.output_transcript.delta"),
        "Your order shipped."
    );
    let reply = &r.turns[1];
    assert_eq!(reply.trigger, TurnTrigger::CallerTurn);
    let stopped = r.caller_speech_stopped[0];
    let first = reply.first_chunk_at.unwrap();
    assert!(
        first >= stopped + ms(300) && first < stopped + ms(400),
        "{first:?}"
    );
    assert_eq!(r.input_appends, 200);
    assert_eq!(r.input_audio_bytes, 200 * 160);
    assert!((r.input_audio_ms - 4_000.0).abs() < 1e-9);
    assert!(r.input_gaps.is_empty());
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn caller_talking_over_the_model_silences_it_within_a_chunk() {
    let script = LiveScript {
        turns: vec![LiveTurn {
            text: "A long greeting that goes on and on.".into(),
            audio_ms: 5_000,
            ..LiveTurn::default()
        }],
        ..LiveScript::default()
    };
    let mut h = Harness::started(script);
    h.greet();
    h.stream(ms(1_500), false);
    h.stream(ms(600), true);
    let r = h.fake.report();
    let heard = r.caller_speech_started[0];
    assert_eq!(r.interruptions, vec![heard]);
    assert_eq!(r.turns[0].interrupted_at, Some(heard));
    let quiet = r.quiet_after(heard).unwrap();
    assert!(
        quiet <= heard + ms(100),
        "quiet at {quiet:?}, heard at {heard:?}"
    );
    assert!(r.chunks.iter().filter(|c| c.at >= quiet).all(|c| !c.speech));
    assert!(r.turns[0].speech_ms_sent < 5_000);
}

#[test]
fn input_format_gaps_and_odd_pcm() {
    let mut h = Harness::connect(LiveScript::default());
    h.send(start_event(json!({"type": "audio/pcm", "rate": 24000})));
    let evs =
        h.send(json!({"type": "session.input_audio.append", "audio": BASE64.encode([0u8; 3])}));
    assert_eq!(of_type(&evs, "error")[0]["error"]["code"], "invalid_audio");
    let even = json!({"type": "session.input_audio.append", "audio": BASE64.encode([0u8; 960])});
    h.send(even.clone());
    h.advance(ms(20));
    h.send(even.clone());
    h.advance(ms(300));
    h.send(even);
    let r = h.fake.report();
    assert_eq!(r.input_audio_bytes, 3 * 960);
    assert!((r.input_audio_ms - 60.0).abs() < 1e-9);
    assert_eq!(
        r.input_gaps,
        vec![InputGap {
            at: ms(320),
            gap: ms(300)
        }]
    );
    assert_eq!(r.violations.len(), 1);
    // 24 kHz PCM chunks: 100 ms is 4800 bytes.
    let delta = h
        .log
        .iter()
        .find(|(_, e)| e["type"] == "session.output_audio.delta")
        .unwrap();
    assert_eq!(
        BASE64
            .decode(delta.1["delta"].as_str().unwrap())
            .unwrap()
            .len(),
        4_800
    );
}

fn tool_script(calls: usize) -> LiveScript {
    let tool_calls = (0..calls)
        .map(|i| {
            (
                "lookup_order".to_owned(),
                json!({"order_id": format!("44{i}")}),
            )
        })
        .collect();
    LiveScript {
        turns: vec![LiveTurn {
            text: "Let me check.".into(),
            audio_ms: 600,
            tool_calls,
            follow_up: "It shipped Thursday.".into(),
            follow_up_ms: 900,
        }],
        ..LiveScript::default()
    }
}

fn output(call_id: &str) -> Value {
    json!({"type": "response.item.create", "item": {"type": "function_call_output",
           "call_id": call_id, "output": "{\"status\":\"shipped\"}"}})
}

fn nested_types(evs: &[Value]) -> Vec<String> {
    of_type(evs, "response.event")
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn tool_round_trip_through_responses_delegation() {
    let mut h = Harness::started(tool_script(1));
    h.greet();
    let evs = h.advance(ms(700));
    let created = of_type(&evs, "session.delegation.created");
    assert_eq!(created.len(), 1);
    let del = created[0]["delegation"].clone();
    assert_eq!(del["type"], "delegation");
    assert_eq!(del["target"], "responses");
    assert_eq!(created[0]["offset_ms"], 500);
    assert_eq!(
        nested_types(&evs),
        [
            "response.created",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let envelopes = of_type(&evs, "response.event");
    assert!(envelopes.iter().all(|e| e["delegation_id"] == del["id"]));
    let done = &envelopes[4]["event"]["item"];
    assert_eq!(done["type"], "function_call");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["name"], "lookup_order");
    assert_eq!(done["arguments"], "{\"order_id\":\"440\"}");
    assert_eq!(envelopes[0]["event"]["response"]["id"], del["response_id"]);
    let call_id = done["call_id"].as_str().unwrap().to_owned();

    assert_eq!(h.send(output(&call_id)), Vec::<Value>::new(), "no ack");
    let evs = h.send(json!({"type": "response.create"}));
    assert_eq!(nested_types(&evs), ["response.created"]);
    let evs = h.advance(ms(2_000));
    assert_eq!(
        nested_types(&evs),
        ["response.output_text.delta", "response.completed"]
    );
    // The end of the acknowledgement, then the backend's answer in the voice.
    let said = text_of(&evs, "session.output_transcript.delta");
    assert!(said.ends_with("ck.It shipped Thursday."), "{said}");
    let r = h.fake.report();
    assert_eq!(r.function_outputs.len(), 1);
    assert_eq!(r.function_outputs[0].1, call_id);
    assert_eq!(r.response_creates.len(), 1);
    assert_eq!(
        r.delegations[0].calls,
        vec![(call_id, "lookup_order".to_owned())]
    );
    assert!(r.delegations[0].continued_at.is_some());
    assert_eq!(r.turns[1].trigger, TurnTrigger::FollowUp);
    assert_eq!(r.turns[1].speech_ms_sent, 900);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn tool_protocol_violations_are_recorded_and_refused() {
    let mut h = Harness::started(tool_script(2));
    let evs = h.send(json!({"type": "response.create"}));
    assert_eq!(
        of_type(&evs, "error")[0]["error"]["code"],
        "no_pending_response"
    );
    h.greet();
    let evs = h.advance(ms(700));
    let calls: Vec<String> = of_type(&evs, "response.event")
        .iter()
        .filter(|e| e["event"]["type"] == "response.output_item.done")
        .map(|e| e["event"]["item"]["call_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        h.send(output("call_9999"))[0]["error"]["code"],
        "invalid_value"
    );
    h.send(output(&calls[0]));
    assert_eq!(
        h.send(output(&calls[0]))[0]["error"]["code"],
        "invalid_value"
    );
    let evs = h.send(json!({"type": "response.create"}));
    assert_eq!(evs[0]["error"]["code"], "missing_tool_output");
    h.send(output(&calls[1]));
    assert_eq!(
        nested_types(&h.send(json!({"type": "response.create"}))),
        ["response.created"]
    );
    let evs = h.send(json!({"type": "response.create"}));
    assert_eq!(evs[0]["error"]["code"], "no_pending_response");
    // Realtime events and unknown types are refused.
    for ty in [
        "conversation.item.create",
        "response.cancel",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "session.banana",
    ] {
        let evs = h.send(json!({"type": ty}));
        assert_eq!(types(&evs), ["error"], "{ty}");
    }
    let evs = h.send(json!({"type": "session.instructions.append", "content": "x"}));
    assert_eq!(
        evs[0]["error"]["param"], "delegation_id",
        "delegation_id is required"
    );
    let r = h.fake.report();
    assert_eq!(r.function_outputs.len(), 2);
    assert_eq!(r.response_creates.len(), 4);
    assert_eq!(r.violations.len(), 11, "{:#?}", r.violations);
    assert!(
        r.violations
            .iter()
            .any(|v| v.contains("before every output arrived"))
    );
    assert!(r.violations.iter().any(|v| v.contains("more than once")));
    assert!(
        r.violations
            .iter()
            .any(|v| v.contains("no delegation open"))
    );
}

#[test]
fn response_create_before_the_nested_completion_is_refused() {
    let script = LiveScript {
        delegation_complete_delay: ms(500),
        ..tool_script(1)
    };
    let mut h = Harness::started(script);
    h.greet();
    let evs = h.advance(ms(600));
    let done = of_type(&evs, "response.event")
        .into_iter()
        .find(|e| e["event"]["type"] == "response.output_item.done")
        .unwrap()
        .clone();
    h.send(output(done["event"]["item"]["call_id"].as_str().unwrap()));
    let evs = h.send(json!({"type": "response.create"}));
    assert_eq!(evs[0]["error"]["code"], "response_in_progress");
    h.advance(ms(500));
    let evs = h.send(json!({"type": "response.create"}));
    assert_eq!(nested_types(&evs), ["response.created"]);
}

#[test]
fn close_is_answered_with_session_closed_and_usage() {
    let mut h = Harness::started(LiveScript::default());
    h.greet();
    let evs = h.advance(Duration::from_secs(125));
    let usage: Vec<f64> = of_type(&evs, "session.usage.updated")
        .iter()
        .map(|e| e["usage"]["seconds"].as_f64().unwrap())
        .collect();
    assert_eq!(usage, [60.0, 120.0]);
    assert_eq!(
        h.send(json!({"type": "session.close"})),
        Vec::<Value>::new()
    );
    let chunks = h.fake.report().chunks.len();
    let evs = h.advance(ms(150));
    assert_eq!(types(&evs), Vec::<&str>::new(), "quiet while closing");
    let evs = h.advance(ms(100));
    assert_eq!(types(&evs), ["session.closed"]);
    assert_eq!(evs[0]["reason"], "close_requested");
    assert_eq!(evs[0]["usage"]["seconds"], 125.0);
    assert_eq!(h.closes, vec![(ms(125_200), 1000)]);
    let r = h.fake.report();
    assert_eq!(r.chunks.len(), chunks);
    assert_eq!(r.closed_reason.as_deref(), Some("close_requested"));
    assert_eq!(r.close_requested_at, Some(ms(125_000)));
    assert!(!r.closed_without_session_close);
    assert_eq!(h.fake.poll_timeout(), None);
}

#[test]
fn scripted_endings() {
    let script = LiveScript {
        session_max: Duration::from_secs(2),
        inject_errors: vec![(ms(500), "rate_limit_exceeded".into())],
        ..LiveScript::default()
    };
    let mut h = Harness::started(script);
    let evs = h.advance(Duration::from_secs(3));
    assert_eq!(
        of_type(&evs, "error")[0]["error"]["code"],
        "rate_limit_exceeded"
    );
    let closed = of_type(&evs, "session.closed");
    assert_eq!(closed[0]["reason"], "expired");
    assert_eq!(closed[0]["usage"]["seconds"], 2.0);
    assert_eq!(h.closes, vec![(ms(2_000), 1000)]);

    let script = LiveScript {
        close_at: Some((ms(700), "content".into())),
        ..LiveScript::default()
    };
    let mut h = Harness::started(script);
    let evs = h.advance(Duration::from_secs(1));
    assert_eq!(of_type(&evs, "session.closed")[0]["reason"], "content");

    let script = LiveScript {
        drop_socket_at: Some(ms(700)),
        ..LiveScript::default()
    };
    let mut h = Harness::started(script);
    let evs = h.advance(Duration::from_secs(1));
    assert!(of_type(&evs, "session.closed").is_empty());
    assert_eq!(h.closes, vec![(ms(700), 1006)]);
    assert_eq!(h.fake.report().closed_reason, None);
    assert_eq!(h.fake.report().socket_closed_at, Some(ms(700)));

    // The client's close without session.close is noted.
    let mut h = Harness::started(LiveScript::default());
    h.advance(ms(100));
    h.fake.handle_closed(h.now);
    assert!(h.fake.report().closed_without_session_close);
    assert_eq!(h.fake.poll_timeout(), None);
}

#[test]
fn garbage_never_panics() {
    let mut h = Harness::connect(LiveScript::default());
    for text in [
        "",
        "{",
        "null",
        "[]",
        "42",
        "{\"type\":7}",
        "{\"type\":\"session.start\"}",
    ] {
        h.fake.handle_text(h.now, text);
    }
    h.send(start_event(pcmu()));
    let garbage = [
        json!({"type": "session.input_audio.append", "audio": "***"}),
        json!({"type": "session.input_audio.append", "audio": 5}),
        json!({"type": "session.instructions.append", "delegation_id": 3, "content": "x"}),
        json!({"type": "response.item.create", "item": []}),
        json!({"type": "response.item.create", "item": {"type": "function_call_output"}}),
        json!({"type": "response.item.create", "item": {"type": "message"}}),
        json!({"type": "response.create", "response": {}}),
        json!({"type": "session.update", "session": {"model": "x"}}),
        json!({"type": "session.update", "session": {"delegation": {"type": "client"}}}),
    ];
    for g in garbage {
        h.send(g);
    }
    h.advance(ms(500));
    h.fake.handle_timeout(h.base);
    let r = h.fake.report();
    assert_eq!(r.violations.len(), 7 + 9, "{:#?}", r.violations);
    assert!(h.fake.is_open());
}

#[test]
fn same_inputs_same_outputs() {
    let run = || {
        let mut h = Harness::started(tool_script(2));
        h.greet();
        h.stream(ms(2_000), false);
        h.stream(ms(800), true);
        h.stream(ms(1_000), false);
        h.log
    };
    assert_eq!(run(), run());
}
