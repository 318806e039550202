use barbara_tests::*;

#[test]
fn socket_closes_without_stop() {
    let mut config = scenario(10, 5_000, vec![], vec![], secs(3));
    config.caller.hangup = Some((secs(3), HangupStyle::CloseWithoutStop));
    let sim = run_deterministic(config, secs(10));

    let (end, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::PhoneSocketClosed
        }
    );
    assert!(end < secs(3) + ms(50));
    assert!(sim.openai().closed_by_client);
    assert!(!sim.caller().sent_stop);
}
