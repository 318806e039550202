use barbara_tests::*;
use serde_json::json;

/// μ-law from SignalWire reaches the Live API byte for byte, and the model's μ-law reaches the
/// caller unchanged: `audio/pcmu` at 8 kHz both ways, no transcoding.
#[test]
fn live_pcmu_passthrough() {
    let mut config = live_scenario(
        2,
        1_500,
        vec![live_turn("Got it.", 1_200)],
        vec![utterance(secs(3), ms(1_000))],
        secs(8),
    );
    config.caller.record_sent_audio = true;
    config.live.record_input_audio = true;
    let sim = run_deterministic(config, secs(20));
    assert_clean_live(&sim);
    let live = sim.live();

    let start = live.session_start.as_ref().unwrap();
    assert_eq!(
        start["audio"]["format"],
        json!({"type": "audio/pcmu", "rate": 8000})
    );
    // Every byte the caller sent while the call was up, in order, nothing altered or added:
    // audio held before session.started is delivered too.
    let sent = &sim.caller().sent_audio;
    let received = &live.input_audio;
    assert!(received.len() >= 8 * 7_500, "only {} bytes", received.len());
    assert_eq!(
        &sent[..received.len()],
        &received[..],
        "caller audio was altered"
    );
    assert!(
        sent.len() - received.len() <= 160 * 4,
        "{} bytes never arrived",
        sent.len() - received.len()
    );
    assert_eq!(live.input_audio_bytes, received.len() as u64);
    assert!(live.input_gaps.is_empty(), "{:?}", live.input_gaps);
    // The caller's speech was heard as one utterance.
    assert_eq!(live.caller_speech_started.len(), 1);

    // The model's speech reached the caller whole and loud.
    assert_eq!(live.speech_ms_sent(), 2_700);
    let heard = sim.caller().heard_speech_ms();
    assert!((2_650..=2_700).contains(&heard), "heard {heard} ms");
}
