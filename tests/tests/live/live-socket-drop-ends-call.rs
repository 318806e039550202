use barbara_tests::*;

/// The Live socket drops without `session.closed`: the session is gone (a new connection would
/// be a new session), so the call ends promptly.
#[test]
fn live_socket_drop_ends_call() {
    let mut config = live_scenario(
        14,
        2_000,
        vec![live_turn("Sure.", 1_000)],
        vec![utterance(secs(3), secs(1))],
        secs(20),
    );
    config.live.drop_socket_at = Some(secs(6));
    let sim = run_deterministic(config, secs(30));
    assert_clean_live(&sim);
    let live = sim.live();

    assert_eq!(live.closed_reason, None);
    assert!(session_closed_events(&sim).is_empty());
    let (end, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::ModelDisconnected
        }
    );
    // The fake's clock starts at the connect (about 60 ms in); the drop takes one hop.
    assert!(end > secs(6) && end < secs(6) + ms(200), "ended at {end:?}");
    assert!(sim.caller().closed_at.is_some_and(|t| t < end + ms(100)));
    assert_eq!(
        live.close_requested_at, None,
        "no session.close into a dead socket"
    );
}
