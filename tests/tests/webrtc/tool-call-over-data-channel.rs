use barbara_tests::*;
use serde_json::json;

#[test]
fn tool_call_over_data_channel() {
    let mut config = over_webrtc(scenario(
        29,
        1_200,
        vec![
            say_and_call("Checking.", 600, &[("lookup_order", json!({"id": "A17"}))]),
            say("It ships tomorrow.", 1_500),
        ],
        vec![utterance(secs(3), ms(900))],
        secs(12),
    ));
    config.call.tools.push(tool_spec("lookup_order", secs(5)));
    config.tools.push(ScriptedTool {
        name: "lookup_order".to_owned(),
        behaviour: ToolBehaviour::Reply {
            delay: ms(400),
            output: r#"{"eta":"tomorrow"}"#.to_owned(),
            action: ToolAction::None,
        },
    });
    let sim = run_deterministic(config, secs(30));

    assert_eq!(transports(&sim), vec!["realtime/webrtc"]);
    let webrtc = sim.openai_webrtc();
    let rt = &webrtc.calls[0].realtime;
    assert_eq!(rt.function_outputs.len(), 1);
    assert_eq!(rt.function_outputs[0].2, r#"{"eta":"tomorrow"}"#);
    assert_eq!(rt.responses.len(), 3);
    assert!(rt.errors_sent.is_empty(), "{:?}", rt.errors_sent);
    assert!(sim.caller().heard_speech_ms() >= 3_000);
}
