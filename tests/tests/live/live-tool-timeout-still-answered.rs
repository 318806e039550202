use barbara_tests::*;
use serde_json::json;

/// A tool that misses its deadline still gets exactly one output (an error) so the backend can
/// go on; its late result is dropped.
#[test]
fn live_tool_timeout_still_answered() {
    let mut config = live_scenario(
        6,
        1_000,
        vec![live_turn_calling(
            "One moment.",
            600,
            &[("slow_lookup", json!({}))],
            "Sorry, I could not reach the system.",
            1_800,
        )],
        vec![utterance(secs(2), ms(800))],
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
    assert_clean_live(&sim);
    let live = sim.live();

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

    // The backend got one output (the error) and one response.create, at the deadline.
    assert_eq!(live.function_outputs.len(), 1);
    assert_eq!(live.function_outputs[0].1, call.id.0);
    assert!(live.function_outputs[0].2.contains("error"));
    assert_eq!(live.function_outputs[0].0, completed_at + ms(30));
    assert_eq!(live.response_creates, vec![completed_at + ms(30)]);

    // The late result is recognised and dropped.
    let ignored = time_of(&sim, "ignored late result", |e| {
        matches!(e, Event::ToolResultIgnored { .. })
    });
    assert_eq!(ignored, *asked + secs(5));

    // And the voice spoke the backend's apology.
    let follow_up = live
        .turns
        .iter()
        .find(|t| t.trigger == TurnTrigger::FollowUp);
    assert_eq!(follow_up.unwrap().speech_ms_sent, 1_800);
    assert!(sim.tool_calls_without_output().is_empty());
}
