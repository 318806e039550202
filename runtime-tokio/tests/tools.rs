//! Tools and call control over loopback sockets: a tool webhook served by a local HTTP server,
//! and transfer and hang-up against a fake SignalWire REST API.

mod common;

use std::time::Duration;

use barbara_tokio::fakes::{self, FakeHttp, SeenRequest};
use base64::Engine as _;
use common::{CALL_SID, Harness, caller, config_file, post_form, reply, script_of};
use serde_json::json;

const PROJECT: &str = "PJ0123";
const REST_TOKEN: &str = "PT-rest-token";

/// SignalWire REST settings pointing at `rest`.
fn signalwire(rest: &FakeHttp) -> [(&'static str, String); 3] {
    [
        ("SIGNALWIRE_SPACE_URL", rest.url()),
        ("SIGNALWIRE_PROJECT_ID", PROJECT.to_owned()),
        ("SIGNALWIRE_API_TOKEN", REST_TOKEN.to_owned()),
    ]
}

fn vars<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The REST call update SignalWire got: its path, Basic auth and form are checked.
fn assert_call_update(request: &SeenRequest) -> Vec<(String, String)> {
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.uri,
        format!("/api/laml/2010-04-01/Accounts/{PROJECT}/Calls/{CALL_SID}.json")
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{PROJECT}:{REST_TOKEN}"));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    request.form()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_webhook_gets_the_call_and_its_answer_reaches_the_model() {
    let webhook = FakeHttp::start(|_| {
        (
            200,
            r#"{"output":{"status":"shipped","eta":"Friday"},"action":null}"#.to_owned(),
        )
    })
    .await
    .unwrap();
    let toml = format!(
        "[[tools]]\nname = \"lookup_order\"\ndescription = \"Look up an order.\"\n\
         webhook = \"{}/tools/lookup_order\"\ntimeout_ms = 3000\n",
        webhook.url()
    );
    let config = config_file("webhook", &toml);
    let arguments = json!({"order_id": "A1234"});
    let script = script_of(vec![
        reply(
            "Let me look that up.",
            800,
            &[("lookup_order", arguments.clone())],
        ),
        reply("Your order arrives on Friday.", 800, &[]),
    ]);
    let (h, openai) =
        Harness::websocket("webhook", &[("BARBARA_CONFIG", config.as_str())], script).await;
    let token = h.token().await;
    let report = fakes::call(
        &h.stream_url(),
        Some(&token),
        caller(&[], 4_000),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    h.wait_idle().await;

    let requests = webhook.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.uri.as_str()),
        ("POST", "/tools/lookup_order")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json().expect("a JSON body");
    let call_id = body["call_id"].as_str().expect("the call id").to_owned();
    assert!(call_id.starts_with("call_"), "{body}");
    assert_eq!(body["call_sid"], CALL_SID);
    assert_eq!(body["tool"], "lookup_order");
    assert_eq!(body["arguments"], arguments);
    let key = format!("{CALL_SID}:{call_id}");
    assert_eq!(body["idempotency_key"], key.as_str());
    assert_eq!(request.header("idempotency-key"), Some(key.as_str()));

    let session = &openai.closed_sessions(1).await[0];
    assert_eq!(session.function_outputs.len(), 1, "{session:?}");
    let (_, output_id, output) = &session.function_outputs[0];
    assert_eq!(output_id, &call_id);
    let output: serde_json::Value = serde_json::from_str(output).unwrap();
    assert_eq!(output, json!({"status": "shipped", "eta": "Friday"}));
    assert_eq!(
        session.responses.len(),
        2,
        "the model answered with the output"
    );
    assert!(
        report.heard_speech_ms() >= 1_200,
        "{}",
        report.heard_speech_ms()
    );
    assert!(h.has_event("tool_call_completed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_updates_the_call_through_signalwire_rest_to_our_dial_cxml() {
    let rest = FakeHttp::start(|_| (200, r#"{"status":"in-progress"}"#.to_owned()))
        .await
        .unwrap();
    let script = script_of(vec![reply(
        "Let me put you through to a person.",
        1_000,
        &[("transfer_call", json!({"to": "+15551230100"}))],
    )]);
    let settings = signalwire(&rest);
    let (h, _openai) = Harness::websocket("transfer", &vars(&settings), script).await;
    let token = h.token().await;
    let report = fakes::call(
        &h.stream_url(),
        Some(&token),
        caller(&[], 20_000),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    h.wait_idle().await;

    // The goodbye played out, then SignalWire was told to fetch our transfer cXML.
    assert!(
        report.heard_speech_ms() >= 800,
        "{}",
        report.heard_speech_ms()
    );
    let closed = report.closed_at.expect("the bridge ended the stream");
    assert!(closed < Duration::from_secs(10), "{closed:?}");
    let requests = rest.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let form = assert_call_update(&requests[0]);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let url = field("Url").expect("a Url");
    assert_eq!(url, h.url("/transfer?to=%2B15551230100"));
    assert_eq!(field("Method").as_deref(), Some("POST"));
    let (status, cxml) = post_form(&url, &format!("CallSid={CALL_SID}"), &[]).await;
    assert_eq!(status, 200);
    assert!(
        cxml.contains("<Response><Dial>+15551230100</Dial></Response>"),
        "{cxml}"
    );

    let ended = h.events().into_iter().find(|e| e["event"] == "call_ended");
    assert_eq!(
        ended.unwrap()["reason"],
        json!({"reason": "transferred", "detail": "+15551230100"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_call_hangs_up_through_signalwire_rest_with_status_completed() {
    let rest = FakeHttp::start(|_| (200, r#"{"status":"completed"}"#.to_owned()))
        .await
        .unwrap();
    let script = script_of(vec![reply(
        "Thanks for calling, goodbye!",
        1_000,
        &[("end_call", json!({"reason": "caller is done"}))],
    )]);
    let settings = signalwire(&rest);
    let (h, _openai) = Harness::websocket("hangup", &vars(&settings), script).await;
    let token = h.token().await;
    let report = fakes::call(
        &h.stream_url(),
        Some(&token),
        caller(&[], 20_000),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    h.wait_idle().await;

    assert!(
        report.heard_speech_ms() >= 800,
        "{}",
        report.heard_speech_ms()
    );
    assert!(report.closed_at.expect("the bridge ended the stream") < Duration::from_secs(10));
    let requests = rest.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let form = assert_call_update(&requests[0]);
    assert_eq!(form, [("Status".to_owned(), "completed".to_owned())]);
    assert!(h.has_event("hangup_requested"));
    let ended = h.events().into_iter().find(|e| e["event"] == "call_ended");
    assert_eq!(ended.unwrap()["reason"]["reason"], "assistant_hung_up");
}
