use barbara_core::SignalWireRest;
use barbara_core::sim::driver::TOOL_WEBHOOK_BASE;
use barbara_tests::*;
use serde_json::json;

/// A webhook tool answers through HTTP; then the model transfers the caller, which goes to
/// SignalWire's REST API once the "transferring you" line has been heard.
#[test]
fn webhook_tool_then_transfer() {
    let mut config = scenario(
        17,
        1_000,
        vec![
            say_and_call(
                "Let me check.",
                600,
                &[("lookup", json!({"account": "77"}))],
            ),
            say_and_call(
                "I'll put you through to billing now.",
                1_500,
                &[("transfer_call", json!({"to": "+15557654321"}))],
            ),
        ],
        vec![utterance(ms(2_000), ms(800))],
        secs(30),
    );
    let mut spec = tool_spec("lookup", secs(4));
    spec.webhook = Some(format!("{TOOL_WEBHOOK_BASE}lookup"));
    config.call.tools.push(spec);
    config.tools.push(ScriptedTool {
        name: "lookup".to_owned(),
        behaviour: ToolBehaviour::Reply {
            delay: ms(250),
            output: r#"{"balance":"12.50"}"#.to_owned(),
            action: ToolAction::None,
        },
    });
    config.call.signalwire = Some(SignalWireRest {
        space_url: "https://example.signalwire.com".to_owned(),
        project_id: "p-1".to_owned(),
        api_token: "t".to_owned(),
    });
    config.call.public_url = Some("https://bridge.example.com".to_owned());
    let sim = run_deterministic(config, secs(40));

    // The webhook got the call's context, the arguments and an idempotency key.
    let (_, hook) = sim
        .http_requests()
        .iter()
        .find(|(_, r)| r.url.ends_with("lookup"))
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!(body["tool"], "lookup");
    assert_eq!(body["arguments"], json!({"account": "77"}));
    let key = body["idempotency_key"].as_str().unwrap();
    assert!(
        hook.headers
            .iter()
            .any(|(k, v)| k == "Idempotency-Key" && v == key)
    );
    assert_eq!(sim.openai().function_outputs[0].2, r#"{"balance":"12.50"}"#);
    assert!(
        sim.tool_calls().is_empty(),
        "webhook tools do not go to the application"
    );

    let (asked, rest) = sim
        .http_requests()
        .iter()
        .find(|(_, r)| r.url.contains("/Calls/"))
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&rest.body),
        "Url=https%3A%2F%2Fbridge.example.com%2Ftransfer%3Fto%3D%252B15557654321&Method=POST"
    );
    assert!(*asked >= sim.caller().last_heard_speech().unwrap());
    let (_, end) = sim.first(is_end).unwrap();
    assert_eq!(
        end,
        &Event::CallEnded {
            reason: EndReason::Transferred("+15557654321".to_owned())
        }
    );
}
