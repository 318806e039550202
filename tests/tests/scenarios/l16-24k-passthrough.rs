use barbara_tests::*;

#[test]
fn l16_24k_passthrough() {
    let config = l16_call(12, 24_000, 1_000);
    let sim = run_deterministic(config, secs(20));

    let session = &sim.openai().session_updates[0];
    assert_eq!(
        session["audio"]["input"]["format"],
        serde_json::json!({"type": "audio/pcm", "rate": 24000})
    );
    assert_eq!(
        session["audio"]["output"]["format"],
        serde_json::json!({"type": "audio/pcm", "rate": 24000})
    );
    // Byte for byte what the caller sent, minus what was sent before the session was ready
    // and held: held audio is delivered too, so the streams are equal from the start.
    let sent = &sim.caller().sent_audio;
    let received = &sim.openai().input_audio;
    assert!(!received.is_empty());
    assert_eq!(
        &sent[..received.len()],
        &received[..],
        "caller audio was altered on the way"
    );
    assert!(
        sent.len() - received.len() <= 960 * 4,
        "{} bytes never arrived",
        sent.len() - received.len()
    );
    // And the model's audio reaches the caller intact (loud, 20 ms frames of 960 bytes).
    assert!(sim.caller().heard_speech_ms() >= 3_100);
    assert!(
        sim.caller().violations.is_empty(),
        "{:?}",
        sim.caller().violations
    );
}
