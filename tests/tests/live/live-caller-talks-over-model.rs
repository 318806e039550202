use barbara_tests::*;

/// The model decides itself to stop when the caller talks over it; because the bridge forwards
/// each delta at once (no deep buffer), the caller stops hearing it almost as soon as the fake
/// goes quiet, and SignalWire's queue and the bridge's marks never pile up.
#[test]
fn live_caller_talks_over_model() {
    let config = live_scenario(
        3,
        8_000,
        vec![live_turn("Of course, go ahead.", 1_500)],
        vec![utterance(secs(3), ms(1_500))],
        secs(12),
    );
    let sim = run_deterministic(config.clone(), secs(30));
    assert_clean_live(&sim);
    let live = sim.live();

    // The fake heard the caller and fell silent within one chunk.
    assert_eq!(live.interruptions.len(), 1, "{:?}", live.interruptions);
    let interrupted = live.interruptions[0];
    assert!(
        interrupted > secs(3) && interrupted < secs(3) + ms(200),
        "interrupted at {interrupted:?}"
    );
    assert_eq!(live.turns[0].interrupted_at, Some(interrupted));
    assert!(live.turns[0].speech_ms_sent < 3_000);
    let quiet = live.quiet_after(interrupted).unwrap();
    assert!(quiet <= interrupted + ms(100), "quiet at {quiet:?}");

    // The caller stops hearing model speech within 100 ms of the fake going quiet.
    let last_speech = sim
        .caller()
        .heard
        .iter()
        .filter(|f| f.rms > 300.0 && f.at > interrupted && f.at < interrupted + secs(2))
        .map(|f| f.at)
        .max()
        .unwrap();
    assert!(
        last_speech <= quiet + ms(100),
        "caller heard speech until {last_speech:?}, the fake was quiet at {quiet:?}"
    );
    // No clear was needed: there was nothing queued to throw away.
    assert!(sim.caller().clears.is_empty());

    // Then the model answered the caller, and the caller heard the answer.
    assert_eq!(live.turns.len(), 2);
    assert_eq!(live.turns[1].trigger, TurnTrigger::CallerTurn);
    let answered = live.turns[1].first_chunk_at.unwrap();
    let answer_heard = heard_speech_between(&sim, answered, answered + secs(3));
    assert!(
        answer_heard >= 1_450,
        "heard {answer_heard} ms of the answer"
    );

    // Through the whole call SignalWire held at most a chunk or two and marks stayed few.
    let (sampled, backlog, marks) = run_sampling_backlog(config, secs(30));
    assert_eq!(sampled.trace_lines(), sim.trace_lines());
    assert!(backlog <= 250.0, "up to {backlog} ms waited for the caller");
    assert!(marks <= 4, "{marks} marks pending");
}
