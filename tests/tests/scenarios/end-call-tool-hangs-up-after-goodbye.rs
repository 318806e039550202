use barbara_core::SignalWireRest;
use barbara_tests::*;
use serde_json::json;

#[test]
fn end_call_tool_hangs_up_after_goodbye() {
    let mut config = scenario(
        7,
        1_000,
        vec![say_and_call(
            "Thanks for calling, goodbye!",
            1_800,
            &[("end_call", json!({"reason": "done"}))],
        )],
        vec![utterance(ms(2_000), ms(700))],
        secs(30),
    );
    config.call.signalwire = Some(SignalWireRest {
        space_url: "https://example.signalwire.com".to_owned(),
        project_id: "p-123".to_owned(),
        api_token: "PTtoken".to_owned(),
    });
    let sim = run_deterministic(config, secs(40));

    let (_, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::AssistantHungUp
        }
    );
    let (asked_at, request) = &sim.http_requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.url,
        format!(
            "https://example.signalwire.com/api/laml/2010-04-01/Accounts/p-123/Calls/{}.json",
            CallerScript::default().call_sid
        )
    );
    assert_eq!(request.body, b"Status=completed");
    assert!(
        request
            .headers
            .iter()
            .any(|(k, v)| k == "Authorization" && v == "Basic cC0xMjM6UFR0b2tlbg==")
    );

    // The whole goodbye was heard before the hang-up went out.
    let goodbye_heard: u32 = sim
        .caller()
        .heard
        .iter()
        .filter(|f| f.rms > 300.0)
        .map(|f| f.ms)
        .sum();
    assert!(goodbye_heard >= 2_700, "heard {goodbye_heard} ms");
    let last_speech = sim.caller().last_heard_speech().unwrap();
    assert!(
        *asked_at >= last_speech,
        "hung up at {asked_at:?}, speech until {last_speech:?}"
    );
    assert!(*asked_at < last_speech + ms(200));
    // No new response after end_call.
    assert_eq!(sim.openai().responses.len(), 2);
}
