use barbara_tests::*;
use serde_json::json;

#[test]
fn live_greeting_then_reply() {
    let config = live_scenario(
        1,
        2_000,
        vec![live_turn("Sure, let me help with your order.", 2_500)],
        vec![utterance(secs(4), ms(1_500))],
        secs(12),
    );
    let sim = run_deterministic(config, secs(30));
    assert_clean_live(&sim);
    let live = sim.live();

    // One Live session over WebSocket, the phone's μ-law passed straight through.
    assert_eq!(transports(&sim), ["live/websocket"]);
    assert_eq!(
        live.url.as_deref(),
        Some("wss://api.openai.com/v1/live/sessions")
    );
    let start = live.session_start.as_ref().unwrap();
    assert_eq!(start["model"], "gpt-live-1");
    assert_eq!(
        start["audio"]["format"],
        json!({"type": "audio/pcmu", "rate": 8000})
    );
    assert_eq!(start["delegation"]["type"], "responses");
    assert_eq!(
        sim.openai().session_updates.len(),
        0,
        "Realtime was not used"
    );

    // The greeting is one instruction, right after session.started (one round trip later).
    let started = live.started_at.unwrap();
    assert_eq!(
        live.instructions(),
        [LiveConfig::default().greeting.as_str()]
    );
    let greeted = live.appends[0].at;
    assert!(
        greeted <= started + ms(70),
        "greeting at {greeted:?}, started {started:?}"
    );
    assert_eq!(live.appends[0].delegation_id, None);
    // Caller audio flows from session.started on, without pauses.
    let first_input = live.first_input_at.unwrap();
    assert!(
        first_input <= started + ms(70),
        "first input at {first_input:?}"
    );
    assert!(live.input_gaps.is_empty(), "{:?}", live.input_gaps);

    // The model spoke its greeting, then answered the caller after they went quiet.
    let triggers: Vec<TurnTrigger> = live.turns.iter().map(|t| t.trigger).collect();
    assert_eq!(triggers, [TurnTrigger::Greeting, TurnTrigger::CallerTurn]);
    assert!(live.interruptions.is_empty());
    assert_eq!(live.speech_ms_sent(), 4_500);
    let first_audio = time_of(&sim, "first audio", |e| {
        matches!(e, Event::FirstAudioToCaller)
    });
    assert!(first_audio < ms(800), "first audio only at {first_audio:?}");
    // Every delta is forwarded at once: the first one reaches SignalWire one hop after the fake
    // sent it.
    let first_chunk = live.turns[0].first_chunk_at.unwrap();
    assert_eq!(first_audio, first_chunk + ms(30));

    // The caller heard both turns whole, and nothing was cleared.
    let heard = sim.caller().heard_speech_ms();
    assert!(
        (4_400..=4_500).contains(&heard),
        "heard {heard} ms of speech"
    );
    assert!(sim.caller().clears.is_empty());
    let reply_heard = heard_speech_between(&sim, secs(6), secs(10));
    assert!(reply_heard >= 2_450, "heard {reply_heard} ms of the reply");

    assert_eq!(
        transcripts(&sim),
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

    // The caller's stop closes the session politely before the call ends.
    let (end, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
    assert!(
        end >= secs(12) && end < secs(12) + ms(400),
        "ended at {end:?}"
    );
    assert_eq!(live.closed_reason.as_deref(), Some("close_requested"));
    assert!(!live.closed_without_session_close);
}
