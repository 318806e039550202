use barbara_tests::*;
use serde_json::json;

/// The caller keeps talking while a tool runs, so the server's own turn detection starts a
/// response; the tool's output goes in at once but `response.create` waits for that response.
#[test]
fn tool_call_while_response_active() {
    let mut config = scenario(
        4,
        1_500,
        vec![
            say_and_call(
                "Let me look that up.",
                1_000,
                &[("lookup_order", json!({"id": "A17"}))],
            ),
            say("Still checking, one moment.", 2_500),
            say("Your order A17 ships tomorrow.", 2_000),
        ],
        vec![utterance(secs(3), ms(1_000)), utterance(ms(5_600), ms(400))],
        secs(16),
    );
    config.call.tools.push(tool_spec("lookup_order", secs(10)));
    config.tools.push(ScriptedTool {
        name: "lookup_order".to_owned(),
        behaviour: ToolBehaviour::Reply {
            delay: ms(1_800),
            output: r#"{"status":"ships tomorrow"}"#.to_owned(),
            action: ToolAction::None,
        },
    });
    let sim = run_deterministic(config, secs(30));

    let (asked, call) = &sim.tool_calls()[0];
    assert_eq!(call.name, "lookup_order");
    assert_eq!(call.arguments, json!({"id": "A17"}));
    let completed = time_of(&sim, "tool completed", |e| {
        matches!(e, Event::ToolCallCompleted { .. })
    });
    assert!(completed >= *asked + ms(1_800));

    let openai = sim.openai();
    assert!(
        openai
            .errors_sent
            .iter()
            .all(|(_, code)| code != "conversation_already_has_active_response"),
        "{:?}",
        openai.errors_sent
    );
    assert_eq!(openai.function_outputs.len(), 1);
    // When the output arrived, the server's own response to the caller was running.
    let output_at = openai.function_outputs[0].0;
    let vad_response = openai
        .responses
        .iter()
        .find(|r| r.created_at < output_at && r.done_at.is_none_or(|d| d > output_at))
        .expect("a response was active when the tool output arrived");
    // The follow-up was asked for only after that response was done.
    let creates = sent_of_type(&sim, "response.create");
    let follow_up = creates.last().unwrap().0;
    assert!(
        follow_up >= vad_response.done_at.unwrap(),
        "create at {follow_up:?}"
    );
    assert!(follow_up > output_at);
}
