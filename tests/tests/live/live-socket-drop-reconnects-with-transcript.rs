use std::time::Duration;

use barbara_tests::*;

/// The Live socket drops without `session.closed`. A new connection is a new session, so the
/// bridge opens one after a short back-off and starts it with the transcript so far as `input`;
/// the caller's next question is answered on it.
#[test]
fn live_socket_drop_reconnects_with_transcript() {
    let mut config = live_scenario(
        14,
        2_000,
        vec![
            live_turn("Sure, order 4417 shipped.", 1_500),
            live_turn("You're welcome.", 1_000),
        ],
        vec![utterance(secs(3), secs(1)), utterance(secs(10), secs(1))],
        secs(16),
    );
    config.live.caller_transcripts =
        vec!["Where is order 4417?".to_owned(), "Thank you.".to_owned()];
    config.live.drop_socket_at = Some(secs(7));
    let sim = run_deterministic(config, secs(30));

    let reconnecting = sim.all(|e| matches!(e, Event::ModelReconnecting { .. }));
    assert_eq!(reconnecting.len(), 1, "{}", sim.trace_lines().join("\n"));
    let (dropped_at, event) = reconnecting[0];
    assert_eq!(
        event,
        &Event::ModelReconnecting {
            attempt: 1,
            after: ms(250)
        }
    );
    let ready: Vec<Duration> = sim
        .all(|e| matches!(e, Event::ModelReady { .. }))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(ready.len(), 2);
    assert!(
        ready[1] - dropped_at < ms(700),
        "gap {:?}",
        ready[1] - dropped_at
    );

    // The new session started with the conversation so far.
    assert_eq!(sim.earlier_live().len(), 1);
    let start = sim.live().session_start.clone().expect("session.start");
    let input = start["input"].as_array().cloned().unwrap_or_default();
    let text = serde_json::Value::Array(input.clone()).to_string();
    assert!(input.len() >= 3, "{text}");
    assert_eq!(input[0]["role"], "assistant");
    assert!(text.contains("How can I help?"), "{text}");
    assert!(text.contains("Where is order 4417?"), "{text}");
    assert!(text.contains("order 4417 shipped"), "{text}");
    assert!(
        sim.live().violations.is_empty(),
        "{:?}",
        sim.live().violations
    );

    // The second question was answered on the new session and the caller heard it.
    let heard_after = heard_speech_between(&sim, secs(11), secs(16));
    assert!(
        heard_after >= 700,
        "heard {heard_after} ms after the reconnect"
    );
    assert_eq!(
        sim.first(is_end).unwrap().1,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
}
