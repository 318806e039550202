use barbara_tests::*;

#[test]
fn caller_hangs_up_mid_response() {
    let config = scenario(9, 5_000, vec![], vec![], secs(2));
    let sim = run_deterministic(config, secs(10));

    let (end, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
    assert!(end < secs(2) + ms(50), "ended at {end:?}");
    // The OpenAI session was closed, and nothing reached the caller after its stop.
    assert!(sim.openai().closed_by_client);
    assert_eq!(sim.caller().received_after_close, 0);
    assert!(
        sim.caller().violations.is_empty(),
        "{:?}",
        sim.caller().violations
    );
}
