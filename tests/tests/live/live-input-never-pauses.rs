use barbara_tests::*;

/// The Live API wants input audio all the time, silence included: while SignalWire sends no
/// media (here for the first three seconds), the bridge feeds silence in the session format.
#[test]
fn live_input_never_pauses() {
    let mut config = live_scenario(
        15,
        1_000,
        vec![],
        vec![utterance(secs(5), secs(1))],
        secs(9),
    );
    config.caller.media_start_delay = secs(3);
    config.live.record_input_audio = true;
    let sim = run_deterministic(config, secs(20));
    assert_clean_live(&sim);
    let live = sim.live();

    let started = live.started_at.unwrap();
    let first = live.first_input_at.unwrap();
    assert!(first <= started + ms(200), "first input at {first:?}");
    assert!(live.input_gaps.is_empty(), "{:?}", live.input_gaps);
    // Input time keeps up with wall time from session.started to the close.
    let wall = (live.close_requested_at.unwrap() - started).as_secs_f64() * 1000.0;
    let input = live.input_audio_ms;
    assert!(
        (input - wall).abs() < 200.0,
        "{input} ms of input in {wall} ms"
    );
    // What filled the pause was μ-law silence, and the caller's utterance still got through.
    let pause = &live.input_audio[..8 * 2_500];
    assert!(
        pause.iter().all(|&b| b == 0xFF),
        "the pause was not silence"
    );
    assert_eq!(live.caller_speech_started.len(), 1);
    assert_eq!(live.turns.len(), 2, "the model answered the utterance");
}
