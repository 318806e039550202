use barbara_core::sim::speech::rms;
use barbara_tests::*;

fn samples(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn l16_16k_resampled() {
    let config = l16_call(13, 16_000, 1_500);
    let sim = run_deterministic(config, secs(20));

    let session = &sim.openai().session_updates[0];
    assert_eq!(
        session["audio"]["input"]["format"],
        serde_json::json!({"type": "audio/pcm", "rate": 24000})
    );
    // 16 kHz in, 24 kHz out: half as many bytes again, less the resampler's short delay.
    let sent = samples(&sim.caller().sent_audio);
    let received = samples(&sim.openai().input_audio);
    let expected = sent.len() * 3 / 2;
    assert!(
        received.len() <= expected && received.len() + 24 * 40 >= expected,
        "{} vs {expected}",
        received.len()
    );
    // The level survives resampling (within 1 dB) and the server's VAD heard the caller.
    let level_in = rms(&sent);
    let level_out = rms(&received);
    let db = 20.0 * (level_out / level_in).log10();
    assert!(db.abs() < 1.0, "level changed by {db:.2} dB");
    assert_eq!(sim.openai().speech_started.len(), 1);
    // The model's 24 kHz audio reached the 16 kHz caller at its level.
    assert!(sim.caller().heard_speech_ms() >= 3_100);
    assert!(
        sim.caller().violations.is_empty(),
        "{:?}",
        sim.caller().violations
    );
}
