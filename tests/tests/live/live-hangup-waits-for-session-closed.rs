use barbara_tests::*;

/// When the caller hangs up, the bridge sends `session.close` and ends the call only once
/// `session.closed` (with the final billed seconds) arrived.
#[test]
fn live_hangup_waits_for_session_closed() {
    let mut config = live_scenario(
        10,
        1_500,
        vec![live_turn("Sure.", 800)],
        vec![utterance(secs(3), ms(800))],
        secs(10),
    );
    config.live.close_delay = Some(ms(700));
    let sim = run_deterministic(config, secs(30));
    assert_clean_live(&sim);
    let live = sim.live();

    let closes = sent_of_type(&sim, "session.close");
    assert_eq!(closes.len(), 1);
    // The stop reaches the bridge one hop after 10 s; session.close goes out at once.
    assert_eq!(closes[0].0, secs(10) + ms(15));
    assert_eq!(live.close_requested_at, Some(closes[0].0 + ms(30)));
    assert_eq!(live.events_after_close, 0);
    let closed_at = live.closed_at.unwrap();
    assert_eq!(closed_at, live.close_requested_at.unwrap() + ms(700));
    assert_eq!(live.closed_reason.as_deref(), Some("close_requested"));

    let closed = session_closed_events(&sim);
    assert_eq!(closed.len(), 1, "{closed:?}");
    let (closed_event_at, reason, billed) = &closed[0];
    assert_eq!(reason, "close_requested");
    assert_eq!(*closed_event_at, closed_at + ms(30));
    assert_eq!(*billed, Some(10.0));
    let (end, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
    assert!(
        end >= *closed_event_at,
        "ended at {end:?} before session.closed"
    );
    assert!(end < closed_at + ms(100), "ended at {end:?}");
    assert!(!live.closed_without_session_close);
}

/// A server that never answers `session.close` holds the call's end no longer than
/// `live.close_timeout`.
#[test]
fn live_hangup_gives_up_waiting_after_close_timeout() {
    let mut config = live_scenario(11, 1_500, vec![], vec![], secs(6));
    config.live.close_delay = None;
    config.call.live.close_timeout = secs(2);
    let sim = run_deterministic(config, secs(30));
    assert_clean_live(&sim);
    let live = sim.live();

    let requested = live.close_requested_at.unwrap();
    assert_eq!(live.closed_reason, None);
    assert!(session_closed_events(&sim).is_empty());
    let (end, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
    let sent = requested - ms(30);
    assert_eq!(end, sent + secs(2), "ended at {end:?}");
    assert!(live.closed_by_client);
}
