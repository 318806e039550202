use barbara_tests::*;

/// The Live server ends the session at its time limit (`session.closed` reason `expired`): the
/// call ends with that reason and the final billed time.
#[test]
fn live_session_expired_ends_call() {
    let mut config = live_scenario(
        9,
        2_000,
        vec![live_turn("Mm-hm.", 1_000)],
        vec![utterance(secs(5), secs(1))],
        secs(60),
    );
    config.live.session_max = secs(20);
    let sim = run_deterministic(config, secs(40));
    assert_clean_live(&sim);
    let live = sim.live();

    assert_eq!(live.closed_reason.as_deref(), Some("expired"));
    let closed_at = live.closed_at.unwrap();
    let (end, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::ModelSessionClosed("expired".to_owned())
        }
    );
    assert_eq!(
        end,
        closed_at + ms(30),
        "the call ends when session.closed arrives"
    );

    let closed = session_closed_events(&sim);
    assert_eq!(closed.len(), 1, "{closed:?}");
    let (at, reason, billed) = &closed[0];
    assert_eq!(reason, "expired");
    assert!(*at <= end);
    let billed = billed.unwrap();
    assert!((19.0..=20.0).contains(&billed), "billed {billed} s");
    // The bridge did not ask to close a session that was already over.
    assert_eq!(live.close_requested_at, None);
    assert!(sim.caller().closed_at.is_some_and(|t| t <= end + ms(100)));
}
