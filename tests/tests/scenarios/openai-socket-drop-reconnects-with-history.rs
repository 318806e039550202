use std::time::Duration;

use barbara_tests::*;

/// The OpenAI WebSocket drops without a close frame in the middle of the call: the bridge
/// reconnects after a short back-off, gives the new session the conversation so far, and the
/// caller's next turn is answered as if nothing happened.
#[test]
fn openai_socket_drop_reconnects_with_history() {
    let mut config = scenario(
        11,
        1_500,
        vec![
            say("Your order shipped.", 1_500),
            say("Anything else?", 1_000),
        ],
        vec![utterance(secs(3), ms(1_200)), utterance(secs(9), ms(1_000))],
        secs(14),
    );
    config.openai.caller_transcripts = vec![
        "Where is my order?".to_owned(),
        "Thanks, that's all.".to_owned(),
    ];
    // The first connection opens at about 60 ms; it drops 7 s later, between the two turns.
    config.openai.drop_socket_at = Some(secs(7));
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
    let gap = ready[1] - dropped_at;
    assert!(gap < ms(600), "the model was gone for {gap:?}");

    // The new session got the conversation: the greeting, the caller's turn and the answer.
    let replayed: Vec<serde_json::Value> = sent_of_type(&sim, "conversation.item.create")
        .into_iter()
        .filter(|(at, _)| *at > dropped_at)
        .map(|(_, v)| v["item"].clone())
        .collect();
    let texts: Vec<String> = replayed.iter().map(|item| item.to_string()).collect();
    assert!(replayed.len() >= 3, "{texts:?}");
    assert!(texts[0].contains("How can I help?"), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("Where is my order?")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("Your order shipped.")),
        "{texts:?}"
    );

    // The second turn was answered on the new session, and the caller heard it.
    let heard_after = heard_speech_between(&sim, secs(10), secs(14));
    assert!(
        heard_after >= 800,
        "heard {heard_after} ms after the reconnect"
    );
    assert_eq!(
        sim.first(is_end).unwrap().1,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
    assert!(sim.tool_calls_without_output().is_empty());
}

/// A session that never came up is not retried: the call ends.
#[test]
fn refused_handshake_is_not_retried() {
    let mut config = scenario(12, 1_000, vec![], vec![], secs(10));
    config.openai.reject_handshake = Some(401);
    let sim = run_deterministic(config, secs(30));
    assert!(
        sim.all(|e| matches!(e, Event::ModelReconnecting { .. }))
            .is_empty()
    );
    let (at, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::ModelDisconnected
        }
    );
    assert!(at < secs(1), "ended at {at:?}");
}
