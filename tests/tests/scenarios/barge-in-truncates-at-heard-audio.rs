use barbara_tests::*;

#[test]
fn barge_in_truncates_at_heard_audio() {
    let config = scenario(
        2,
        6_000,
        vec![say("Okay.", 800)],
        vec![utterance(ms(2_500), ms(1_000))],
        secs(8),
    );
    let sim = run_deterministic(config, secs(20));

    let (at, event) = sim.first(|e| matches!(e, Event::BargeIn { .. })).unwrap();
    let Event::BargeIn {
        item_id: Some(item),
        heard_ms,
    } = event
    else {
        panic!("{event:?}")
    };
    // The caller had heard roughly 2 s of the greeting when it started speaking.
    assert!((1_400..=2_400).contains(heard_ms), "heard {heard_ms} ms");

    let truncates = &sim.openai().truncates;
    assert_eq!(truncates.len(), 1, "{truncates:?}");
    assert_eq!(&truncates[0].item_id, item);
    assert_eq!(truncates[0].audio_end_ms, u64::from(*heard_ms));
    assert!(truncates[0].accepted);

    // What the caller actually heard of the greeting is at least what we told the model.
    let heard_before_cut = heard_speech_between(&sim, ms(0), at + ms(1));
    assert!(
        heard_before_cut >= *heard_ms,
        "{heard_before_cut} < {heard_ms}"
    );

    // After the clear reaches the caller, no more greeting is heard until the reply starts.
    assert_eq!(sim.caller().clears.len(), 1);
    let cleared = sim.caller().clears[0];
    let reply_start = sim.openai().responses[1].created_at;
    let leaked = heard_speech_between(&sim, cleared + ms(20), reply_start);
    assert_eq!(leaked, 0, "the caller heard {leaked} ms of cut audio");
    assert!(
        sim.caller().violations.is_empty(),
        "{:?}",
        sim.caller().violations
    );
}
