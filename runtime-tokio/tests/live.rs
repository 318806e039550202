//! A whole call on the Live backend over loopback: the real server against a fake Live server
//! (`FakeLive` behind a real WebSocket, on real time), a fake SignalWire caller and a tool
//! webhook; then the record replays.

mod common;

use std::time::Duration;

use barbara_core::sim::fake_live::{LiveScript, LiveTurn, TurnTrigger};
use barbara_core::{DEFAULT_LIVE_DELEGATION_MODEL, DEFAULT_LIVE_MODEL};
use barbara_tokio::fakes::{self, FakeHttp, FakeOpenAi};
use common::{Harness, caller, config_file};
use serde_json::{Value, json};

fn turn(text: &str, audio_ms: u32) -> LiveTurn {
    LiveTurn {
        text: text.to_owned(),
        audio_ms,
        tool_calls: Vec::new(),
        ..LiveTurn::default()
    }
}

/// Greets, then answers the caller's question by asking its backend to call `lookup_order`,
/// and speaks the backend's answer.
fn script() -> LiveScript {
    LiveScript {
        turns: vec![
            turn("Thanks for calling Acme, how can I help?", 1_000),
            LiveTurn {
                tool_calls: vec![("lookup_order".to_owned(), json!({"order_id": "A1234"}))],
                follow_up: "Your order arrives on Friday.".to_owned(),
                follow_up_ms: 1_000,
                ..turn("Let me check.", 600)
            },
        ],
        caller_transcripts: vec!["Where is my order A1234?".to_owned()],
        usage_interval: Duration::from_secs(2),
        ..LiveScript::default()
    }
}

/// The record's events named `name`, with their positions among the events.
fn positions(events: &[Value], name: &str) -> Vec<(usize, Value)> {
    let named = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["event"] == name);
    named.map(|(i, e)| (i, e.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_live_call_delegates_a_tool_closes_its_session_and_replays() {
    let webhook = FakeHttp::start(|_| {
        (
            200,
            r#"{"output":{"status":"shipped","eta":"Friday"}}"#.to_owned(),
        )
    })
    .await
    .unwrap();
    // The default stays Realtime; the called number is on Live.
    let toml = format!(
        "[numbers.\"+15551230002\"]\nbackend = \"live\"\n\n\
         [[tools]]\nname = \"lookup_order\"\ndescription = \"Look up an order.\"\n\
         webhook = \"{}/tools/lookup_order\"\ntimeout_ms = 3000\n",
        webhook.url()
    );
    let config = config_file("live", &toml);
    let openai = FakeOpenAi::start_live(script()).await.unwrap();
    let h = Harness::start(
        "live",
        &openai.base_url(),
        &[("BARBARA_CONFIG", config.as_str())],
    )
    .await;
    let token = h.token().await;
    let report = fakes::call(
        &h.stream_url(),
        Some(&token),
        caller(&[(1_800, 800)], 8_000),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    h.wait_idle().await;
    let live = openai.closed_live_sessions(1).await.remove(0);
    assert!(live.violations.is_empty(), "{:#?}", live.violations);
    assert!(live.errors_sent.is_empty(), "{:?}", live.errors_sent);
    assert!(report.violations.is_empty(), "{:?}", report.violations);

    // The session is Live over the WebSocket, as the called number asked.
    let events = h.events();
    let ready = positions(&events, "model_ready");
    assert_eq!(ready.len(), 1, "{events:?}");
    assert_eq!(ready[0].1["transport"], "live/websocket");
    assert!(live.url.as_deref().unwrap().ends_with("/v1/live/sessions"));
    let meta = &h.record()[0];
    assert_eq!(
        (
            &meta["backend"],
            &meta["backend_default"],
            &meta["backend_for_number"]
        ),
        (&json!("live"), &json!("realtime"), &json!("live"))
    );
    assert_eq!(meta["model"], DEFAULT_LIVE_MODEL);
    assert_eq!(meta["delegation_model"], DEFAULT_LIVE_DELEGATION_MODEL);

    // The backend's call reached the webhook once ...
    let requests = webhook.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        (requests[0].method.as_str(), requests[0].uri.as_str()),
        ("POST", "/tools/lookup_order")
    );
    let body = requests[0].json().expect("a JSON body");
    assert_eq!(body["tool"], "lookup_order");
    assert_eq!(body["arguments"], json!({"order_id": "A1234"}));
    let call_id = body["call_id"].as_str().unwrap();
    assert_eq!(live.delegations.len(), 1, "{:?}", live.delegations);
    assert_eq!(
        live.delegations[0].calls,
        [(call_id.to_owned(), "lookup_order".to_owned())]
    );
    // ... and its output reached the fake Live as one response.item.create, then one
    // response.create.
    assert_eq!(live.function_outputs.len(), 1);
    let (_, output_id, output) = &live.function_outputs[0];
    assert_eq!(output_id, call_id);
    let output: Value = serde_json::from_str(output).unwrap();
    assert_eq!(output, json!({"status": "shipped", "eta": "Friday"}));
    let received = |ty: &str| live.received_types.iter().filter(|t| *t == ty).count();
    assert_eq!(
        received("response.item.create"),
        1,
        "{:?}",
        live.received_types
    );
    assert_eq!(received("response.create"), 1, "{:?}", live.received_types);
    let position = |ty: &str| live.received_types.iter().position(|t| t == ty);
    assert!(position("response.item.create") < position("response.create"));
    assert!(live.delegations[0].continued_at.is_some());

    // The caller heard the greeting, the turn and the backend's answer.
    let follow_up = live
        .turns
        .iter()
        .find(|t| t.trigger == TurnTrigger::FollowUp);
    assert_eq!(follow_up.map(|t| t.speech_ms_sent), Some(1_000), "{live:?}");
    assert!(
        report.heard_speech_ms() >= 2_400,
        "the caller heard {} ms",
        report.heard_speech_ms()
    );

    // The caller hung up: session.close, then session.closed, then the call ended.
    assert_eq!(
        live.received_types.last().map(String::as_str),
        Some("session.close")
    );
    assert_eq!(live.closed_reason.as_deref(), Some("close_requested"));
    assert!(live.close_requested_at.unwrap() <= live.closed_at.unwrap());
    assert!(!live.closed_without_session_close);
    let closed = positions(&events, "model_session_closed");
    let ended = positions(&events, "call_ended");
    assert_eq!((closed.len(), ended.len()), (1, 1), "{events:?}");
    assert_eq!(closed[0].1["reason"], "close_requested");
    let billed = closed[0].1["billed_seconds"].as_f64().unwrap();
    assert!(billed >= 7.0, "{billed}");
    assert!(closed[0].0 < ended[0].0);
    assert_eq!(ended[0].0, events.len() - 1);
    assert_eq!(ended[0].1["reason"]["reason"], "caller_stopped");

    let metrics = h.get("/metrics").await;
    for line in [
        "barbara_calls_total{transport=\"live/websocket\"} 1",
        "barbara_live_sessions_closed_total{reason=\"close_requested\"} 1",
        &format!("barbara_live_billed_seconds_total {billed}"),
        "barbara_active_calls{transport=\"live/websocket\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }

    // The record replays without divergence, and shows the Live call.
    let run = |command: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_barbara"))
            .arg(command)
            .arg(h.record_path())
            .env_clear()
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        (output.status.code(), stdout)
    };
    let (code, stdout) = run("replay");
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("matches"), "{stdout}");
    let (code, stdout) = run("show");
    assert_eq!(code, Some(0), "{stdout}");
    for expected in [
        "ran on live/websocket",
        "(from the Responses backend)",
        "session.closed (close_requested)",
        "Your order arrives on Friday.",
    ] {
        assert!(stdout.contains(expected), "{expected} in {stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_session_whose_socket_drops_goes_on_without_greeting_again() {
    // The socket drops once the model has greeted and answered the first question; the
    // reconnected session gets the conversation as input and answers the second question.
    let script = LiveScript {
        turns: vec![
            turn("Thanks for calling Acme, how can I help?", 1_000),
            turn("We open at nine.", 800),
            turn("We close at five.", 800),
        ],
        caller_transcripts: vec![
            "When do you open?".to_owned(),
            "When do you close?".to_owned(),
        ],
        drop_socket_at: Some(Duration::from_millis(4_500)),
        ..LiveScript::default()
    };
    let config = config_file(
        "live-reconnect",
        "[numbers.\"+15551230002\"]\nbackend = \"live\"\n",
    );
    let openai = FakeOpenAi::start_live(script).await.unwrap();
    let h = Harness::start(
        "live-reconnect",
        &openai.base_url(),
        &[("BARBARA_CONFIG", config.as_str())],
    )
    .await;
    let token = h.token().await;
    let report = fakes::call(
        &h.stream_url(),
        Some(&token),
        caller(&[(1_800, 800), (6_500, 800)], 10_500),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    h.wait_idle().await;
    let sessions = openai.closed_live_sessions(2).await;
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    for session in &sessions {
        assert!(session.violations.is_empty(), "{:#?}", session.violations);
        assert!(session.errors_sent.is_empty(), "{:?}", session.errors_sent);
    }
    assert!(report.violations.is_empty(), "{:?}", report.violations);

    // One drop, one reconnection: the first connection's scripted drop is not played again.
    let events = h.events();
    assert_eq!(
        positions(&events, "model_reconnecting").len(),
        1,
        "{events:?}"
    );
    let resumed = &sessions[1];
    let input = &resumed.session_start.as_ref().unwrap()["input"];
    assert!(
        input.to_string().contains("Thanks for calling Acme"),
        "{input}"
    );
    // The resumed session answered the second question and never greeted.
    let spoken: Vec<(TurnTrigger, &str)> = resumed
        .turns
        .iter()
        .map(|t| (t.trigger, t.text.as_str()))
        .collect();
    assert_eq!(
        spoken,
        [(TurnTrigger::CallerTurn, "We close at five.")],
        "{resumed:#?}"
    );
    let greetings = positions(&events, "transcript")
        .into_iter()
        .filter(|(_, e)| e["text"] == "Thanks for calling Acme, how can I help?")
        .count();
    assert_eq!(greetings, 1, "{events:?}");
}
