use barbara_tests::*;

/// A μ-law phone leg on a Live session over WebRTC.
fn call(seed: u64) -> SimConfig {
    let mut config = live_scenario(
        seed,
        1_500,
        vec![live_turn("Got it.", 1_200)],
        vec![utterance(secs(3), ms(1_000))],
        secs(8),
    );
    config.caller.record_sent_audio = true;
    config.live.record_input_audio = true;
    live_over_webrtc(config)
}

/// The answer keeps PCMU, so the bridge sends it: the caller's bytes reach the Live session
/// unchanged, and the model's audio comes back to the caller.
#[test]
fn live_webrtc_pcmu_passthrough() {
    let sim = run_deterministic_webrtc(call(33), secs(20));
    assert_clean_live_webrtc(&sim);
    assert_eq!(transports(&sim), ["live/webrtc"]);
    let webrtc = sim.openai_webrtc();
    let call = &webrtc.calls[0];
    assert_eq!(format!("{:?}", call.codec_in), "Some(Pcmu)");
    assert_eq!(call.rtp_late + call.rtp_concealed + call.rtp_bad, 0);

    // Every byte the caller sent while the call was up, in order, nothing altered or added:
    // audio held before session.started is delivered too.
    let sent = &sim.caller().sent_audio;
    let received = &call.rtp_payload_in;
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
    let live = call.live.as_ref().unwrap();
    assert!(live.input_gaps.is_empty(), "{:?}", live.input_gaps);
    assert_eq!(live.caller_speech_started.len(), 1);

    // The model's speech reached the caller.
    assert_eq!(live.speech_ms_sent(), 2_700);
    let heard = sim.caller().heard_speech_ms();
    assert!((2_650..=2_800).contains(&heard), "heard {heard} ms");
}

/// A fake that answers with Opus only: the same phone leg is transcoded both ways, and the
/// call works the same.
#[test]
fn live_webrtc_opus_only_answer_transcodes() {
    let mut config = call(34);
    config.webrtc.opus_only = true;
    let sim = run_deterministic_webrtc(config, secs(20));
    assert_clean_live_webrtc(&sim);
    assert_eq!(transports(&sim), ["live/webrtc"]);
    let webrtc = sim.openai_webrtc();
    let call = &webrtc.calls[0];
    assert_eq!(format!("{:?}", call.codec), "Opus");
    assert_eq!(format!("{:?}", call.codec_in), "Some(Opus)");
    assert!(call.rtp_payload_in.is_empty(), "no G.711 on the wire");
    assert!(call.rtp_in > 300, "{} packets", call.rtp_in);
    let live = call.live.as_ref().unwrap();
    // The caller's speech survived the round trip through Opus.
    assert_eq!(live.caller_speech_started.len(), 1);
    assert!(live.input_gaps.is_empty(), "{:?}", live.input_gaps);
    assert!(live.input_audio_ms > 7_000.0, "{}", live.input_audio_ms);
    assert_eq!(live.speech_ms_sent(), 2_700);
    let heard = sim.caller().heard_speech_ms();
    assert!((2_650..=2_800).contains(&heard), "heard {heard} ms");
}
