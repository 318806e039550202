use barbara_tests::*;
use serde_json::json;

#[test]
fn live_tool_call_via_responses_delegation() {
    let mut config = live_scenario(
        4,
        1_500,
        vec![live_turn_calling(
            "Let me check that order.",
            1_200,
            &[("lookup_order", json!({"order_id": "4417"}))],
            "Your order shipped and arrives Thursday.",
            2_000,
        )],
        vec![utterance(secs(3), ms(1_200))],
        secs(14),
    );
    config.call.tools.push(tool_spec("lookup_order", secs(5)));
    config.tools.push(ScriptedTool {
        name: "lookup_order".to_owned(),
        behaviour: ToolBehaviour::Reply {
            delay: ms(400),
            output: r#"{"status":"shipped","eta":"Thursday"}"#.to_owned(),
            action: ToolAction::None,
        },
    });
    let sim = run_deterministic(config, secs(30));
    assert_clean_live(&sim);
    let live = sim.live();

    // The tool is declared on the Responses backend, not on the voice.
    let start = live.session_start.as_ref().unwrap();
    let responses = &start["delegation"]["responses"];
    assert_eq!(
        responses["model"],
        LiveConfig::default().delegation_model.as_str()
    );
    let tools = responses["tools"].as_array().unwrap();
    let lookup = tools.iter().find(|t| t["name"] == "lookup_order").unwrap();
    assert_eq!(lookup["type"], "function");
    assert_eq!(
        lookup["parameters"],
        json!({"type": "object", "properties": {}})
    );
    assert!(start.get("tools").is_none());

    // The backend's call reached the application with its arguments.
    assert_eq!(live.delegations.len(), 1);
    let delegation = &live.delegations[0];
    let (call_id, name) = delegation.calls[0].clone();
    assert_eq!(name, "lookup_order");
    let (started_at, started) = sim
        .first(|e| matches!(e, Event::ToolCallStarted { .. }))
        .unwrap();
    let Event::ToolCallStarted { id, arguments, .. } = started else {
        unreachable!()
    };
    assert_eq!(id, &call_id);
    assert_eq!(arguments, &json!({"order_id": "4417"}));
    assert_eq!(started_at, delegation.created_at + ms(30));

    // One output for the call, then one response.create, after the backend's response ended.
    assert_eq!(live.function_outputs.len(), 1);
    let (output_at, output_call, output) = &live.function_outputs[0];
    assert_eq!(output_call, &call_id);
    assert!(output.contains("shipped"), "{output}");
    assert_eq!(*output_at, started_at + ms(400) + ms(30));
    assert_eq!(live.response_creates.len(), 1);
    let create_at = live.response_creates[0];
    assert!(create_at >= *output_at && create_at >= delegation.completed_at.unwrap());
    assert_eq!(delegation.continued_at, Some(create_at));
    let item = &sent_of_type(&sim, "response.item.create")[0].1;
    assert_eq!(item["item"]["type"], "function_call_output");
    assert_eq!(item["item"]["call_id"], call_id.as_str());
    let (completed_at, completed) = sim
        .first(|e| matches!(e, Event::ToolCallCompleted { .. }))
        .unwrap();
    let Event::ToolCallCompleted { timed_out, .. } = completed else {
        unreachable!()
    };
    assert!(!timed_out);
    assert_eq!(completed_at + ms(30), *output_at);

    // The voice spoke the backend's answer, and the caller heard it.
    let follow_up = live
        .turns
        .iter()
        .find(|t| t.trigger == TurnTrigger::FollowUp)
        .unwrap();
    assert_eq!(follow_up.speech_ms_sent, 2_000);
    assert_eq!(
        follow_up.delegation_id.as_deref(),
        Some(delegation.id.as_str())
    );
    let from = follow_up.first_chunk_at.unwrap();
    let heard = heard_speech_between(&sim, from, from + secs(3));
    assert!(heard >= 1_950, "heard {heard} ms of the answer");
    assert!(
        transcripts(&sim)
            .iter()
            .any(|(role, text)| *role == Role::Assistant
                && text.contains("Your order shipped and arrives Thursday.")),
        "{:?}",
        transcripts(&sim)
    );
    assert!(sim.tool_calls_without_output().is_empty());
}
