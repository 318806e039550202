use barbara_tests::*;

/// A key pressed while the model talks cuts it off: over WebRTC the bridge sends
/// `response.cancel` (if the response still runs) and `output_audio_buffer.clear`, flushes its
/// own buffer and clears SignalWire's queue; the digits then reach the model.
#[test]
fn dtmf_over_model_speech_interrupts() {
    let mut config = over_webrtc(scenario(
        31,
        6_000,
        vec![say("You pressed two.", 1_000)],
        vec![],
        secs(10),
    ));
    config.caller.dtmf = vec![(ms(2_500), '2')];
    let sim = run_deterministic(config, secs(20));

    assert_eq!(sim.caller().clears.len(), 1);
    let webrtc = sim.openai_webrtc();
    let rt = &webrtc.calls[0].realtime;
    let clears = rt
        .received_types
        .iter()
        .filter(|t| *t == "output_audio_buffer.clear")
        .count();
    assert_eq!(clears, 1, "{:?}", rt.received_types);
    assert!(
        rt.output_buffer
            .iter()
            .any(|r| format!("{:?}", r.event) == "ClearedByClient"),
        "{:?}",
        rt.output_buffer
    );
    assert_eq!(rt.user_texts.len(), 1);
    assert!(rt.user_texts[0].1.contains('2'));
    // The greeting stopped; the answer to the key press was heard.
    let heard = sim.caller().heard_speech_ms();
    assert!((2_500..4_200).contains(&heard), "heard {heard} ms");
}
