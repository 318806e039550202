use barbara_tests::*;
use serde_json::json;

#[test]
fn send_dtmf_tool_plays_digits() {
    let config = scenario(
        15,
        800,
        vec![
            say_and_call(
                "Pressing one, two, pound.",
                700,
                &[("send_dtmf", json!({"digits": "12#"}))],
            ),
            say("Done.", 600),
            say_and_call("", 0, &[("send_dtmf", json!({"digits": "9x"}))]),
        ],
        vec![utterance(ms(1_500), ms(600)), utterance(ms(5_000), ms(600))],
        secs(10),
    );
    let sim = run_deterministic(config, secs(20));

    let played: Vec<char> = sim.caller().dtmf_received.iter().map(|(_, d)| *d).collect();
    assert_eq!(played, vec!['1', '2', '#']);
    let outputs = &sim.openai().function_outputs;
    assert_eq!(outputs.len(), 2);
    assert!(outputs[0].2.contains("sent"), "{outputs:?}");
    // A bad digit is refused to the model, and nothing is played.
    assert!(outputs[1].2.contains("error"), "{outputs:?}");
    assert!(
        sim.caller().violations.is_empty(),
        "{:?}",
        sim.caller().violations
    );
}
