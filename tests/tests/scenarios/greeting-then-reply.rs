use barbara_tests::*;

#[test]
fn greeting_then_reply() {
    let config = scenario(
        1,
        2_000,
        vec![say("Sure, let me help with your order.", 2_500)],
        vec![utterance(secs(4), ms(1_500))],
        secs(12),
    );
    let sim = run_deterministic(config, secs(30));

    let ready = time_of(&sim, "model ready", |e| {
        matches!(e, Event::ModelReady { .. })
    });
    let first_audio = time_of(&sim, "first audio", |e| {
        matches!(e, Event::FirstAudioToCaller)
    });
    assert!(first_audio > ready);
    assert!(
        first_audio < ms(1_000),
        "first audio only at {first_audio:?}"
    );

    // The caller heard the whole greeting and the whole reply, and nothing was cut.
    let heard = sim.caller().heard_speech_ms();
    assert!(heard >= 4_300, "heard only {heard} ms of speech");
    assert!(sim.all(|e| matches!(e, Event::BargeIn { .. })).is_empty());
    assert!(sim.caller().clears.is_empty());

    // The reply came from the server's own turn detection, not a second response.create.
    let responses = &sim.openai().responses;
    assert_eq!(responses.len(), 2, "{responses:?}");
    assert_eq!(sim.openai().response_creates, 1);
    assert!(
        sim.openai().errors_sent.is_empty(),
        "{:?}",
        sim.openai().errors_sent
    );
    assert!(
        sim.caller().violations.is_empty(),
        "{:?}",
        sim.caller().violations
    );

    let transcripts: Vec<(Role, String)> = sim
        .all(|e| matches!(e, Event::Transcript { .. }))
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::Transcript { role, text } => Some((*role, text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        transcripts,
        vec![
            (
                Role::Assistant,
                "Hello, this is Barbara. How can I help?".to_owned()
            ),
            (Role::Caller, "I would like to check my order.".to_owned()),
            (
                Role::Assistant,
                "Sure, let me help with your order.".to_owned()
            ),
        ]
    );
    let (end, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
    assert!(
        end >= secs(12) && end < secs(12) + ms(100),
        "ended at {end:?}"
    );
}
