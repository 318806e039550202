use barbara_tests::*;

#[test]
fn ice_never_completes_falls_back_to_websocket() {
    let mut config = over_webrtc(scenario(25, 1_500, vec![], vec![], secs(9)));
    config.webrtc.never_connect = true;
    let sim = run_deterministic(config, secs(20));

    let fallbacks = fallbacks(&sim);
    assert_eq!(fallbacks.len(), 1, "{}", sim.trace_lines().join("\n"));
    // The connect deadline is 3 s from the start of WebRTC set-up.
    assert!(
        fallbacks[0].0 >= secs(3) && fallbacks[0].0 < ms(3_200),
        "{fallbacks:?}"
    );
    assert_eq!(transports(&sim), vec!["realtime/websocket"]);
    assert!(sim.caller().heard_speech_ms() >= 1_400);
    // Held caller audio (bounded) reached the model once the WebSocket was ready.
    assert!(
        sim.openai().input_audio_ms > 7_500.0,
        "{}",
        sim.openai().input_audio_ms
    );
}
