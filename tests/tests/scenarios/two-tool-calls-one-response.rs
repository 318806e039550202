use barbara_tests::*;
use serde_json::json;

#[test]
fn two_tool_calls_one_response() {
    let mut config = scenario(
        5,
        1_200,
        vec![
            say_and_call(
                "Checking both.",
                800,
                &[
                    ("weather", json!({"city": "Oslo"})),
                    ("calendar", json!({"day": "today"})),
                ],
            ),
            say("Sunny, and you are free all day.", 2_000),
        ],
        vec![utterance(ms(2_500), ms(900))],
        secs(12),
    );
    for (name, delay) in [("weather", 300), ("calendar", 900)] {
        config.call.tools.push(tool_spec(name, secs(5)));
        config.tools.push(ScriptedTool {
            name: name.to_owned(),
            behaviour: ToolBehaviour::Reply {
                delay: ms(delay),
                output: format!(r#"{{"{name}":"ok"}}"#),
                action: ToolAction::None,
            },
        });
    }
    let sim = run_deterministic(config, secs(30));

    assert_eq!(sim.tool_calls().len(), 2);
    let outputs = sent_of_type(&sim, "conversation.item.create")
        .into_iter()
        .filter(|(_, v)| v["item"]["type"] == "function_call_output")
        .collect::<Vec<_>>();
    assert_eq!(outputs.len(), 2);
    let last_output = outputs.iter().map(|(t, _)| *t).max().unwrap();
    let first_call = sim.tool_calls()[0].0;
    let creates_after: Vec<_> = sent_of_type(&sim, "response.create")
        .into_iter()
        .filter(|(t, _)| *t >= first_call)
        .collect();
    assert_eq!(
        creates_after.len(),
        1,
        "one response.create for both outputs"
    );
    assert!(creates_after[0].0 >= last_output);
    assert!(
        sim.openai().errors_sent.is_empty(),
        "{:?}",
        sim.openai().errors_sent
    );
    assert!(sim.caller().heard_speech_ms() >= 3_800);
}
