use barbara_tests::*;

/// A μ-law phone leg and an answer that keeps PCMU: RTP carries the caller's bytes unchanged.
#[test]
fn webrtc_pcmu_passthrough_when_offered() {
    let config = over_webrtc(scenario(
        22,
        1_500,
        vec![say("Okay.", 1_000)],
        vec![utterance(secs(3), ms(1_000))],
        secs(8),
    ));
    let sim = run_deterministic(config, secs(20));

    assert_eq!(transports(&sim), vec!["realtime/webrtc"]);
    let webrtc = sim.openai_webrtc();
    let call = &webrtc.calls[0];
    assert_eq!(
        format!("{:?}", call.codec_in),
        "Some(Pcmu)",
        "the bridge should send PCMU to a PCMU phone leg"
    );
    // The fake decoded what it got as μ-law and heard the caller.
    assert_eq!(call.realtime.speech_started.len(), 1);
    assert!(call.rtp_in > 200, "{} packets", call.rtp_in);
    assert!(sim.caller().heard_speech_ms() >= 2_300);
}
