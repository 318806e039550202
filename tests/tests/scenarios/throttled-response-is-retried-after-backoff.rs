use std::time::Duration;

use barbara_tests::*;

/// OpenAI throttles the account: the greeting fails twice with `inference_rate_limit_exceeded`.
/// The bridge keeps the session, asks again after 1 s and then 2 s, and the caller hears the
/// greeting on the third try.
#[test]
fn throttled_response_is_retried_after_backoff() {
    let mut config = scenario(21, 1_500, vec![], vec![], secs(10));
    config.openai.rate_limited = 2;
    let sim = run_deterministic(config, secs(20));

    let throttled: Vec<Duration> = sim
        .all(|e| {
            matches!(e, Event::ModelError { code: Some(code), fatal: false, .. }
                if code == "inference_rate_limit_exceeded")
        })
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(throttled.len(), 2, "{}", sim.trace_lines().join("\n"));
    let creates: Vec<Duration> = sent_of_type(&sim, "response.create")
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(creates.len(), 3, "{creates:?}");
    let first_gap = creates[1] - throttled[0];
    let second_gap = creates[2] - throttled[1];
    assert!(
        first_gap >= ms(1_000) && first_gap < ms(1_100),
        "{first_gap:?}"
    );
    assert!(
        second_gap >= ms(2_000) && second_gap < ms(2_100),
        "{second_gap:?}"
    );
    assert_eq!(sim.openai().responses.len(), 3);
    assert!(sim.caller().heard_speech_ms() >= 1_400);
    assert_eq!(
        sim.first(is_end).unwrap().1,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
}
