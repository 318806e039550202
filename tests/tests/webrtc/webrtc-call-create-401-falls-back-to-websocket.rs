use barbara_tests::*;

#[test]
fn webrtc_call_create_401_falls_back_to_websocket() {
    let mut config = over_webrtc(scenario(
        24,
        1_500,
        vec![say("Hi again.", 1_000)],
        vec![utterance(secs(3), ms(800))],
        secs(8),
    ));
    config.webrtc.refuse_with = Some(401);
    let sim = run_deterministic(config, secs(20));

    let fallbacks = fallbacks(&sim);
    assert_eq!(fallbacks.len(), 1);
    assert!(fallbacks[0].1.contains("401"), "{fallbacks:?}");
    assert_eq!(transports(&sim), vec!["realtime/websocket"]);
    // The caller's audio waited and the call went on over the WebSocket.
    assert!(sim.caller().heard_speech_ms() >= 2_300);
    assert_eq!(sim.openai().responses.len(), 2);
    assert!(
        sim.openai().input_audio_ms > 7_000.0,
        "{}",
        sim.openai().input_audio_ms
    );
}
