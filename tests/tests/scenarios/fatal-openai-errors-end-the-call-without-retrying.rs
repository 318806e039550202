use barbara_tests::*;

/// `invalid_api_key` and `insufficient_quota` mean no session will work: the call ends at once,
/// cleanly (the caller's stream is closed), with the code as the reason, and nothing is retried.
#[test]
fn fatal_openai_errors_end_the_call_without_retrying() {
    for (seed, code) in [(31, "invalid_api_key"), (32, "insufficient_quota")] {
        let mut config = scenario(
            seed,
            1_500,
            vec![say("Sure.", 1_000)],
            vec![utterance(secs(3), ms(800))],
            secs(12),
        );
        config.openai.inject_errors =
            vec![(secs(5), code.to_owned(), "invalid_request_error".to_owned())];
        let sim = run_deterministic(config, secs(30));

        let (end, event) = sim.first(is_end).unwrap();
        assert_eq!(
            event,
            &Event::CallEnded {
                reason: EndReason::ModelFatalError(code.to_owned())
            },
            "{code}"
        );
        assert!(
            end > secs(5) && end < secs(5) + ms(200),
            "{code}: ended at {end:?}"
        );
        assert!(
            sim.all(|e| matches!(e, Event::ModelReconnecting { .. }))
                .is_empty()
        );
        assert!(sim.earlier_openai().is_empty(), "{code}: no second session");
        assert!(sim.caller().closed_at.is_some());
        assert!(
            sim.caller().violations.is_empty(),
            "{:?}",
            sim.caller().violations
        );
    }
}

/// A throttling `error` event is not fatal: the call goes on.
#[test]
fn rate_limit_error_event_is_not_fatal() {
    let mut config = scenario(
        33,
        1_500,
        vec![say("Sure.", 1_000)],
        vec![utterance(secs(3), ms(800))],
        secs(8),
    );
    config.openai.inject_errors = vec![(
        ms(2_500),
        "inference_rate_limit_exceeded".to_owned(),
        "rate_limit_error".to_owned(),
    )];
    let sim = run_deterministic(config, secs(30));
    assert!(
        sim.first(|e| matches!(e, Event::ModelError { fatal: false, .. }))
            .is_some()
    );
    assert_eq!(
        sim.first(is_end).unwrap().1,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
    assert!(sim.caller().heard_speech_ms() >= 2_300);
}
