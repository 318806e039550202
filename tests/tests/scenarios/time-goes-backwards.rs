use barbara_tests::*;
use serde_json::json;

/// The runtime's clock jumps back two seconds, then forward an hour. The core clamps the first,
/// fires what is due on the second, and the call goes on.
#[test]
fn time_goes_backwards() {
    let mut config = scenario(
        14,
        2_000,
        vec![
            say_and_call("Checking.", 500, &[("lookup", json!({}))]),
            say("Done.", 1_000),
        ],
        vec![utterance(secs(3), ms(800))],
        secs(12),
    );
    config.call.tools.push(tool_spec("lookup", secs(8)));
    config.tools.push(ScriptedTool {
        name: "lookup".to_owned(),
        behaviour: ToolBehaviour::Never,
    });
    config.call_clock_jumps = vec![(ms(2_500), -2_000), (secs(5), 3_600_000)];
    // To the core the hour is real: it would replace the session as it nears OpenAI's cap.
    config.call.limits.session_rollover = None;
    let sim = run_deterministic(config, secs(30));

    // The hour jump expires the tool's deadline at once; its output still reaches the model.
    let (at, event) = sim
        .first(|e| matches!(e, Event::ToolCallCompleted { .. }))
        .unwrap();
    let Event::ToolCallCompleted { timed_out, .. } = event else {
        unreachable!()
    };
    assert!(*timed_out);
    assert!(at >= secs(5) && at < secs(6), "tool timed out at {at:?}");
    assert_eq!(sim.openai().function_outputs.len(), 1);
    let (_, end) = sim.first(is_end).unwrap();
    assert_eq!(
        end,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
}
