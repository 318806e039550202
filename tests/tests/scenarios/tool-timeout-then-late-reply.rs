use barbara_tests::*;
use serde_json::json;

#[test]
fn tool_timeout_then_late_reply() {
    let mut config = scenario(
        6,
        1_000,
        vec![
            say_and_call("One moment.", 600, &[("slow_lookup", json!({}))]),
            say("Sorry, I could not reach the system.", 2_000),
        ],
        vec![utterance(ms(2_000), ms(800))],
        secs(14),
    );
    config.call.tools.push(tool_spec("slow_lookup", secs(2)));
    config.tools.push(ScriptedTool {
        name: "slow_lookup".to_owned(),
        behaviour: ToolBehaviour::Reply {
            delay: secs(5),
            output: r#"{"late":true}"#.to_owned(),
            action: ToolAction::None,
        },
    });
    let sim = run_deterministic(config, secs(30));

    let (asked, call) = &sim.tool_calls()[0];
    let (completed_at, completed) = sim
        .first(|e| matches!(e, Event::ToolCallCompleted { .. }))
        .unwrap();
    let Event::ToolCallCompleted {
        id,
        timed_out,
        latency,
        output,
        ..
    } = completed
    else {
        unreachable!()
    };
    assert_eq!(id, &call.id.0);
    assert!(*timed_out);
    assert_eq!(*latency, secs(2));
    assert!(output.contains("error"));
    assert_eq!(completed_at, *asked + secs(2));

    // The late result is recognised and dropped: the model got exactly one output.
    let ignored = time_of(&sim, "ignored late result", |e| {
        matches!(e, Event::ToolResultIgnored { .. })
    });
    assert_eq!(ignored, *asked + secs(5));
    assert_eq!(sim.openai().function_outputs.len(), 1);
    assert!(sim.openai().function_outputs[0].2.contains("error"));
    // And the model answered after the timeout.
    assert_eq!(sim.openai().responses.len(), 3);
}
