use barbara_tests::*;

/// Seventy minutes of conversation: near the 60-minute cap the bridge replaces the session
/// between two turns, gives the new one the conversation, and the call goes on; nothing the
/// caller said or heard is lost.
#[test]
fn hour_long_call_rolls_over_before_the_cap() {
    let utterances = (0..68u64)
        .map(|minute| utterance(secs(30 + minute * 60), secs(4)))
        .collect();
    let replies = (0..68).map(|_| say("Mm-hm, go on.", 3_000)).collect();
    let mut config = scenario(17, 2_000, replies, utterances, secs(70 * 60));
    config.call.limits.session_rollover = Some(secs(55 * 60));
    let mut sim = Sim::new(origin(), config);
    sim.run_to_end(secs(75 * 60));

    let rollovers = sim.all(|e| matches!(e, Event::ModelSessionRollover));
    assert_eq!(rollovers.len(), 1, "{rollovers:?}");
    let (at, _) = rollovers[0];
    assert!(
        at >= secs(55 * 60) && at < secs(57 * 60),
        "rolled over at {at:?}"
    );
    assert_eq!(sim.all(|e| matches!(e, Event::ModelReady { .. })).len(), 2);
    assert_eq!(
        sim.first(is_end).unwrap().1,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
    // Every turn was answered: 68 replies and the greeting, across both sessions.
    assert!(sim.caller().heard_speech_ms() >= 68 * 3_000);
    assert!(sim.caller().violations.is_empty());
    // The new session got the conversation before anything else.
    let replayed = sent_of_type(&sim, "conversation.item.create")
        .into_iter()
        .filter(|(t, _)| *t >= at)
        .count();
    assert!(replayed >= 20, "only {replayed} items replayed");
}
