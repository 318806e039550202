use barbara_tests::*;

/// Sixty minutes of conversation on the virtual clock with the rollover turned off: the fake
/// ends the session at its 60-minute cap with `session_expired`, which ends the call cleanly.
#[test]
fn hour_long_call_hits_session_limit() {
    let utterances = (0..55u64)
        .map(|minute| utterance(secs(30 + minute * 60), secs(4)))
        .collect();
    let replies = (0..55).map(|_| say("Mm-hm, go on.", 3_000)).collect();
    let mut config = scenario(16, 2_000, replies, utterances, secs(65 * 60));
    config.call.limits.session_rollover = None;
    let mut sim = Sim::new(origin(), config);
    sim.run_to_end(secs(70 * 60));

    let (end, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::ModelFatalError("session_expired".to_owned())
        }
    );
    assert!(
        end >= secs(60 * 60) && end < secs(60 * 60 + 1),
        "ended at {end:?}"
    );
    assert_eq!(sim.openai().responses.len(), 56);
    assert!(sim.caller().heard_speech_ms() >= 55 * 3_000);
    assert!(sim.caller().violations.is_empty());
}
