use barbara_tests::*;

/// Over the WebSocket a key press over the model clears SignalWire's queue, cancels the
/// response and truncates the item at what the caller heard.
#[test]
fn dtmf_over_model_speech_truncates() {
    let mut config = scenario(
        32,
        6_000,
        vec![say("You pressed two.", 1_000)],
        vec![],
        secs(10),
    );
    config.caller.dtmf = vec![(ms(2_500), '2')];
    let sim = run_deterministic(config, secs(20));

    let (_, event) = sim.first(|e| matches!(e, Event::BargeIn { .. })).unwrap();
    let Event::BargeIn { heard_ms, .. } = event else {
        unreachable!()
    };
    assert_eq!(sim.openai().truncates.len(), 1);
    assert_eq!(sim.openai().truncates[0].audio_end_ms, u64::from(*heard_ms));
    // The response had already finished sending; only its audio was still playing.
    assert_eq!(sim.openai().cancels, 0);
    assert_eq!(sim.caller().clears.len(), 1);
    assert_eq!(sim.openai().user_texts.len(), 1);
    assert!(
        sim.openai()
            .errors_sent
            .iter()
            .all(|(_, c)| c != "conversation_already_has_active_response")
    );
}
