//! A Live call driven by hand, frame by frame: the wire sequence the bridge owes the Live API.
//! Whole calls against the fake Live server are in the scenario tests.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Backend, Call, CallConfig, EndReason, Event, Leg, Output, WsMessage};

const START: &str = r#"{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1","customParameters":{"To":"+15550001"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;

struct Harness {
    call: Call,
    t0: Instant,
    to_model: Vec<Value>,
    to_phone: Vec<Value>,
    events: Vec<Event>,
    model_closed: bool,
}

impl Harness {
    fn new(config: CallConfig) -> Self {
        let t0 = crate::tests::origin();
        let call = Call::new(config, [3; 32], t0, Duration::from_secs(1_790_000_000)).unwrap();
        Harness {
            call,
            t0,
            to_model: Vec::new(),
            to_phone: Vec::new(),
            events: Vec::new(),
            model_closed: false,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn drain(&mut self) -> Vec<Output> {
        let mut all = Vec::new();
        while let Some(output) = self.call.poll_output() {
            match &output {
                Output::Send {
                    leg: Leg::Model,
                    text,
                } => self.to_model.push(serde_json::from_str(text).unwrap()),
                Output::Send {
                    leg: Leg::Phone,
                    text,
                } => self.to_phone.push(serde_json::from_str(text).unwrap()),
                Output::Close { leg: Leg::Model } => self.model_closed = true,
                Output::Event(e) => self.events.push(e.clone()),
                _ => {}
            }
            all.push(output);
        }
        all
    }

    fn phone(&mut self, ms: u64, text: &str) -> Vec<Output> {
        self.call
            .handle_ws_message(self.at(ms), Leg::Phone, WsMessage::Text(text));
        self.drain()
    }

    fn model(&mut self, ms: u64, event: Value) -> Vec<Output> {
        let text = event.to_string();
        self.call
            .handle_ws_message(self.at(ms), Leg::Model, WsMessage::Text(&text));
        self.drain()
    }

    fn sent_types(&self) -> Vec<&str> {
        self.to_model
            .iter()
            .filter_map(|v| v["type"].as_str())
            .filter(|t| *t != "session.input_audio.append")
            .collect()
    }

    /// Starts the stream and the session; returns the `session.start` frame.
    fn started(&mut self) -> Value {
        let outputs = self.phone(0, START);
        let connect = outputs
            .iter()
            .find_map(|o| match o {
                Output::Connect(c) => Some(c.clone()),
                _ => None,
            })
            .expect("connects to the Live API");
        assert_eq!(connect.url, "wss://api.openai.com/v1/live/sessions");
        assert!(
            connect
                .headers
                .iter()
                .any(|(k, v)| k == "Authorization" && v == "Bearer sk-test")
        );
        // Caller audio before the session exists is held, not sent.
        let media = media_frame(0x7E);
        self.phone(20, &media);
        self.call.handle_ws_opened(self.at(90), Leg::Model);
        self.drain();
        let start = self.to_model[0].clone();
        assert_eq!(start["type"], "session.start");
        self.model(
            150,
            json!({"type":"session.started","event_id":"evt_1","session":{"id":"live_1","status":"active","expires_at":1_790_003_600}}),
        );
        start
    }
}

fn live_config() -> CallConfig {
    let mut config = CallConfig::new("sk-test");
    config.backend = Backend::Live;
    config
}

fn media_frame(byte: u8) -> String {
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD.encode([byte; 160]);
    json!({"event":"media","streamSid":"MZ1","media":{"payload":payload}}).to_string()
}

fn speech_delta(ms: usize) -> Value {
    use base64::Engine as _;
    // μ-law 0x20 is loud; 8 bytes per ms.
    let delta = base64::engine::general_purpose::STANDARD.encode(vec![0x20u8; ms * 8]);
    json!({"type":"session.output_audio.delta","delta":delta})
}

#[test]
fn live_session_starts_with_passthrough_format_then_greets_and_releases_held_audio() {
    let mut h = Harness::new(live_config());
    let start = h.started();
    let session = &start["session"];
    assert_eq!(session["model"], "gpt-live-1");
    assert_eq!(
        session["audio"]["format"],
        json!({"type":"audio/pcmu","rate":8000})
    );
    assert_eq!(session["delegation"]["type"], "responses");
    let tools: Vec<&str> = session["delegation"]["responses"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["end_call", "transfer_call", "send_dtmf"]);
    assert!(h.events.contains(&Event::ModelReady {
        transport: "live/websocket"
    }));
    // The held frame went out unchanged, then the greeting instruction.
    let append = h
        .to_model
        .iter()
        .find(|v| v["type"] == "session.input_audio.append")
        .unwrap();
    assert_eq!(append["audio"], media_frame_payload(0x7E));
    assert_eq!(
        h.sent_types(),
        ["session.start", "session.instructions.append"]
    );
}

fn media_frame_payload(byte: u8) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([byte; 160])
}

#[test]
fn model_speech_goes_to_the_caller_at_once_and_silence_between_runs_does_not() {
    let mut h = Harness::new(live_config());
    h.started();
    h.to_phone.clear();
    h.model(200, speech_delta(100));
    let media = h.to_phone.iter().filter(|v| v["event"] == "media").count();
    assert_eq!(
        media, 5,
        "100 ms of speech is five 20 ms frames, sent at once"
    );
    assert!(h.to_phone.iter().any(|v| v["event"] == "mark"));
    // Far from the run: pure silence is not forwarded.
    h.call.handle_timeout(h.at(1000));
    h.drain();
    h.to_phone.clear();
    use base64::Engine as _;
    let silence = base64::engine::general_purpose::STANDARD.encode([0xFFu8; 800]);
    h.model(
        1100,
        json!({"type":"session.output_audio.delta","delta":silence}),
    );
    assert!(h.to_phone.iter().all(|v| v["event"] != "media"));
}

#[test]
fn two_delegated_calls_get_one_output_each_then_one_response_create() {
    let mut config = live_config();
    config.tools.push(crate::ToolSpec {
        name: "lookup_order".to_owned(),
        description: "Finds an order".to_owned(),
        parameters: json!({"type":"object","properties":{}}),
        timeout: Duration::from_secs(5),
        webhook: None,
        filler: None,
    });
    let mut h = Harness::new(config);
    h.started();
    h.model(
        300,
        json!({"type":"session.delegation.created","event_id":"e","offset_ms":250,"delegation":{"id":"del_1","type":"delegation","target":"responses","response_id":"resp_1"}}),
    );
    let call = |id: &str| json!({"type":"response.event","delegation_id":"del_1","event":{"type":"response.output_item.done","output_index":0,"item":{"type":"function_call","id":format!("fc_{id}"),"status":"completed","call_id":id,"name":"lookup_order","arguments":"{}"}}});
    let mut tool_calls = Vec::new();
    for (ms, id) in [(320, "call_1"), (330, "call_2"), (335, "call_1")] {
        for o in h.model(ms, call(id)) {
            if let Output::ToolCall(c) = o {
                tool_calls.push(c.id);
            }
        }
    }
    assert_eq!(tool_calls.len(), 2, "a repeated call id is one call");
    h.model(
        340,
        json!({"type":"response.event","delegation_id":"del_1","event":{"type":"response.completed","response":{"id":"resp_1","status":"completed","output":[]}}}),
    );
    assert!(!h.sent_types().contains(&"response.create"));
    h.call.handle_tool_result(
        h.at(400),
        &tool_calls[0],
        crate::ToolResult {
            output: "one".to_owned(),
            action: crate::ToolAction::None,
        },
    );
    h.drain();
    assert!(!h.sent_types().contains(&"response.create"));
    h.call.handle_tool_result(
        h.at(500),
        &tool_calls[1],
        crate::ToolResult {
            output: "two".to_owned(),
            action: crate::ToolAction::None,
        },
    );
    h.drain();
    assert_eq!(
        h.sent_types()[2..],
        [
            "response.item.create",
            "response.item.create",
            "response.create"
        ]
    );
}

#[test]
fn caller_hang_up_closes_the_session_and_ends_after_session_closed() {
    let mut h = Harness::new(live_config());
    h.started();
    h.phone(
        1000,
        r#"{"event":"stop","streamSid":"MZ1","stop":{"callSid":"CA1"}}"#,
    );
    assert_eq!(h.sent_types().last(), Some(&"session.close"));
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, Event::CallEnded { .. })),
        "the call waits for session.closed"
    );
    assert!(h.call.end_reason().is_none());
    h.model(
        1200,
        json!({"type":"session.closed","event_id":"evt_9","reason":"close_requested","session":{"id":"live_1"},"usage":{"seconds":1.2}}),
    );
    assert!(h.model_closed);
    let n = h.events.len();
    assert_eq!(
        h.events[n - 2..],
        [
            Event::ModelSessionClosed {
                reason: "close_requested".to_owned(),
                billed_seconds: Some(1.2)
            },
            Event::CallEnded {
                reason: EndReason::CallerStopped
            }
        ]
    );
}

#[test]
fn session_closed_wait_is_bounded() {
    let mut h = Harness::new(live_config());
    h.started();
    h.phone(
        1000,
        r#"{"event":"stop","streamSid":"MZ1","stop":{"callSid":"CA1"}}"#,
    );
    let deadline = h.call.poll_timeout().unwrap();
    assert_eq!(deadline, h.at(1000) + Duration::from_secs(5));
    h.call.handle_timeout(deadline);
    h.drain();
    assert!(h.model_closed);
    assert_eq!(h.call.end_reason(), Some(&EndReason::CallerStopped));
}

#[test]
fn server_expiry_ends_the_call_with_its_reason() {
    let mut h = Harness::new(live_config());
    h.started();
    h.model(
        5000,
        json!({"type":"session.closed","event_id":"e","reason":"expired","session":{"id":"live_1"},"usage":{"seconds":5.0}}),
    );
    assert_eq!(
        h.call.end_reason(),
        Some(&EndReason::ModelSessionClosed("expired".to_owned()))
    );
    assert!(!h.sent_types().contains(&"session.close"));
}

#[test]
fn caller_keys_reach_the_model_as_instructions_without_cutting_its_audio() {
    let mut h = Harness::new(live_config());
    h.started();
    h.model(200, speech_delta(100));
    h.to_phone.clear();
    for (ms, d) in [(300, "4"), (350, "2"), (400, "#")] {
        h.phone(
            ms,
            &json!({"event":"dtmf","streamSid":"MZ1","dtmf":{"digit":d}}).to_string(),
        );
    }
    assert!(h.to_phone.iter().all(|v| v["event"] != "clear"));
    let last = h
        .to_model
        .iter()
        .rfind(|v| v["type"] == "session.instructions.append")
        .unwrap();
    assert!(last["content"].as_str().unwrap().contains("42#"));
    assert!(last["delegation_id"].is_null());
}

#[test]
fn backend_is_chosen_by_the_called_number() {
    let mut config = CallConfig::new("sk-test");
    config
        .backend_by_number
        .insert("+15550001".to_owned(), Backend::Live);
    let mut h = Harness::new(config.clone());
    let outputs = h.phone(0, START);
    assert!(outputs.iter().any(
        |o| matches!(o, Output::Connect(c) if c.url.ends_with("/live/sessions"))
            || matches!(o, Output::Http { request, .. } if request.url.ends_with("/live/sessions"))
    ));
    config.backend_by_number.clear();
    config.transport = crate::TransportChoice::WebSocket;
    let mut h = Harness::new(config);
    let outputs = h.phone(0, START);
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Connect(c) if c.url.contains("/realtime?model=")))
    );
}

#[test]
fn webrtc_first_creates_the_session_with_json_then_falls_back_to_the_websocket() {
    let mut config = live_config();
    config.transport = crate::TransportChoice::Auto;
    config.webrtc.local_addrs = vec![core::net::SocketAddr::from(([127, 0, 0, 1], 40_000))];
    let mut h = Harness::new(config);
    let outputs = h.phone(0, START);
    let (id, request) = outputs
        .iter()
        .find_map(|o| match o {
            Output::Http { id, request } => Some((*id, request.clone())),
            _ => None,
        })
        .expect("the session is created over HTTP");
    assert_eq!(request.url, "https://api.openai.com/v1/live/sessions");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["transport"]["type"], "webrtc");
    assert!(
        body["transport"]["sdp"]
            .as_str()
            .unwrap()
            .starts_with("v=0")
    );
    assert_eq!(body["session"]["model"], "gpt-live-1");
    assert!(
        body["session"]["audio"].get("format").is_none(),
        "the media path negotiates the codec"
    );
    // OpenAI refuses: the call goes on over the Live WebSocket.
    h.call.handle_http_response(
        h.at(100),
        id,
        Ok(crate::HttpResponse {
            status: 403,
            headers: Vec::new(),
            body: br#"{"error":{"message":"WebRTC is not enabled"}}"#.to_vec(),
        }),
    );
    let outputs = h.drain();
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::Fallback { from: "live/webrtc", to: "live/websocket", reason } if reason.contains("403")
    )));
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Connect(c) if c.url.ends_with("/live/sessions")))
    );
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let mut config = CallConfig::new("sk-secret-key-123");
    config.signalwire = Some(crate::SignalWireRest {
        space_url: "https://example.signalwire.com".to_owned(),
        project_id: "p".to_owned(),
        api_token: "PT-secret-token".to_owned(),
    });
    let text = format!("{config:?}");
    assert!(!text.contains("sk-secret-key-123"), "{text}");
    assert!(!text.contains("PT-secret-token"), "{text}");
    assert!(text.contains("<redacted>"));
}

#[test]
fn the_last_words_reach_the_record_when_the_caller_hangs_up_mid_turn() {
    let mut h = Harness::new(live_config());
    h.started();
    for (ms, delta) in [(200, "Let me check."), (300, "Your order shipped.")] {
        h.model(
            ms,
            json!({"type":"session.output_transcript.delta","event_id":"e","delta":delta,"start_ms":ms,"end_ms":ms+100}),
        );
    }
    h.phone(
        500,
        r#"{"event":"stop","streamSid":"MZ1","stop":{"callSid":"CA1"}}"#,
    );
    h.model(
        600,
        json!({"type":"session.closed","event_id":"e","reason":"close_requested","session":{"id":"live_1"},"usage":{"seconds":0.6}}),
    );
    let transcript = h.events.iter().find_map(|e| match e {
        Event::Transcript { text, .. } => Some(text.clone()),
        _ => None,
    });
    assert_eq!(
        transcript.as_deref(),
        Some("Let me check. Your order shipped.")
    );
    assert!(matches!(h.events.last(), Some(Event::CallEnded { .. })));
}
