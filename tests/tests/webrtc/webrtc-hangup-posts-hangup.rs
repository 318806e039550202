use barbara_tests::*;
use serde_json::json;

#[test]
fn webrtc_hangup_posts_hangup() {
    let config = over_webrtc(scenario(
        30,
        1_000,
        vec![say_and_call("Goodbye!", 1_200, &[("end_call", json!({}))])],
        vec![utterance(secs(2), ms(700))],
        secs(30),
    ));
    let sim = run_deterministic(config, secs(40));

    let (_, end) = sim.first(is_end).unwrap();
    assert_eq!(
        end,
        &Event::CallEnded {
            reason: EndReason::AssistantHungUp
        }
    );
    let webrtc = sim.openai_webrtc();
    let call_id = webrtc.calls[0].call_id.clone();
    assert_eq!(webrtc.hangups.len(), 1, "{:?}", webrtc.requests);
    assert_eq!(webrtc.hangups[0].1, call_id);
    let (_, hangup) = sim
        .http_requests()
        .iter()
        .find(|(_, r)| r.url.ends_with("/hangup"))
        .unwrap();
    assert_eq!(
        hangup.url,
        format!("https://api.openai.com/v1/realtime/calls/{call_id}/hangup")
    );
    // The goodbye was heard in full before the call ended.
    assert!(sim.caller().heard_speech_ms() >= 2_000);
}
