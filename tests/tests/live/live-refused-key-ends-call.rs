use barbara_tests::*;

/// A key the Live API refuses (HTTP 401 on the upgrade) ends the call at once: no session, no
/// audio, no hanging on.
#[test]
fn live_refused_key_ends_call() {
    let mut config = live_scenario(
        13,
        1_500,
        vec![],
        vec![utterance(secs(1), secs(1))],
        secs(10),
    );
    config.live.refuse_key = true;
    let sim = run_deterministic(config, secs(20));
    let live = sim.live();

    assert!(live.url.is_none(), "the handshake was refused");
    assert!(live.session_start.is_none());
    assert!(
        sim.first(|e| matches!(e, Event::ModelReady { .. }))
            .is_none()
    );
    let (end, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::ModelDisconnected
        }
    );
    // Stream start (15 ms), then the handshake there and back (90 ms).
    assert!(end <= ms(150), "ended at {end:?}");
    assert_eq!(sim.caller().heard_speech_ms(), 0);
    assert!(sim.caller().closed_at.is_some());
    assert!(
        sim.caller().violations.is_empty(),
        "{:?}",
        sim.caller().violations
    );
}
