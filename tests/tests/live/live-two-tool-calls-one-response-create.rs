use barbara_tests::*;
use serde_json::json;

/// Two calls in one backend response: each gets its own output, and one `response.create`
/// follows the slower one.
#[test]
fn live_two_tool_calls_one_response_create() {
    let mut config = live_scenario(
        5,
        1_000,
        vec![live_turn_calling(
            "Checking both.",
            800,
            &[("alpha", json!({"x": 1})), ("beta", json!({"y": 2}))],
            "Both are done.",
            1_200,
        )],
        vec![utterance(secs(2), ms(800))],
        secs(12),
    );
    for (name, delay) in [("alpha", 300), ("beta", 1_500)] {
        config.call.tools.push(tool_spec(name, secs(5)));
        config.tools.push(ScriptedTool {
            name: name.to_owned(),
            behaviour: ToolBehaviour::Reply {
                delay: ms(delay),
                output: format!("{{\"{name}\":true}}"),
                action: ToolAction::None,
            },
        });
    }
    let sim = run_deterministic(config, secs(30));
    assert_clean_live(&sim);
    let live = sim.live();

    assert_eq!(live.delegations.len(), 1);
    let calls = &live.delegations[0].calls;
    let names: Vec<&str> = calls.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    // Both calls started at once and each got exactly one output, in the order they finished.
    let started = sim.all(|e| matches!(e, Event::ToolCallStarted { .. }));
    assert_eq!(started.len(), 2);
    assert_eq!(started[0].0, started[1].0);
    let outputs: Vec<&str> = live
        .function_outputs
        .iter()
        .map(|(_, id, _)| id.as_str())
        .collect();
    assert_eq!(outputs, [calls[0].0.as_str(), calls[1].0.as_str()]);
    let (alpha_at, beta_at) = (live.function_outputs[0].0, live.function_outputs[1].0);
    assert_eq!(beta_at - alpha_at, ms(1_200));

    // One response.create, sent with (right after) the last output.
    assert_eq!(live.response_creates, vec![beta_at]);
    assert_eq!(sent_of_type(&sim, "response.create").len(), 1);
    let follow_up = live
        .turns
        .iter()
        .find(|t| t.trigger == TurnTrigger::FollowUp);
    assert_eq!(follow_up.unwrap().speech_ms_sent, 1_200);
    assert!(sim.tool_calls_without_output().is_empty());
}
