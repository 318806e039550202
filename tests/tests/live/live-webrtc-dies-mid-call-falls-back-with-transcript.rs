use barbara_tests::*;
use serde_json::json;

/// OpenAI's side of the WebRTC session goes silent mid-call: after the liveness limit the
/// bridge starts a new Live session on the WebSocket with the conversation so far as `input`,
/// and the call goes on there.
#[test]
fn live_webrtc_dies_mid_call_falls_back_with_transcript() {
    let mut config = live_scenario(
        37,
        1_500,
        vec![
            live_turn("Your order ships Friday.", 1_500),
            live_turn("You're welcome.", 1_000),
        ],
        vec![utterance(secs(3), ms(1_000)), utterance(secs(13), ms(800))],
        secs(19),
    );
    config.live.caller_transcripts = vec![
        "When does my order ship?".to_owned(),
        "Thank you.".to_owned(),
    ];
    let mut config = live_over_webrtc(config);
    config.webrtc.drop_after = Some(secs(7));
    let sim = run_deterministic_webrtc(config, secs(30));
    assert_clean_live_webrtc(&sim);

    // The first session: greeting and one answer, then silence from OpenAI.
    let webrtc = sim.openai_webrtc();
    assert_eq!(webrtc.calls.len(), 1);
    let call = &webrtc.calls[0];
    let dropped = call.dropped_at.unwrap();
    assert_eq!(dropped, call.connected_at.unwrap() + secs(7));
    let first = call.live.as_ref().unwrap();
    assert_eq!(first.transport_lost_at, Some(dropped));
    let triggers: Vec<TurnTrigger> = first.turns.iter().map(|t| t.trigger).collect();
    assert_eq!(triggers, [TurnTrigger::Greeting, TurnTrigger::CallerTurn]);

    // No packet for the liveness limit (3 s): the bridge moves to the WebSocket.
    assert_eq!(transports(&sim), ["live/webrtc", "live/websocket"]);
    let fallbacks = fallback_events(&sim);
    assert_eq!(fallbacks.len(), 1, "{}", sim.trace_lines().join("\n"));
    let (at, from, to, reason) = &fallbacks[0];
    assert_eq!((*from, *to), ("live/webrtc", "live/websocket"));
    assert!(reason.contains("no packets"), "{reason}");
    assert!(
        *at >= dropped + secs(3) && *at <= dropped + secs(3) + ms(40),
        "fallback at {at:?}, dropped at {dropped:?}"
    );

    // The new session starts with the conversation so far, and is not greeted again.
    let live = sim.live();
    let start = live.session_start.as_ref().unwrap();
    assert_eq!(
        start["audio"]["format"],
        json!({"type": "audio/pcmu", "rate": 8000})
    );
    let said = |role: &str, kind: &str, text: &str| json!({"type": "message", "role": role, "content": [{"type": kind, "text": text}]});
    assert_eq!(
        start["input"],
        json!([
            said(
                "assistant",
                "output_text",
                "Hello, this is Barbara. How can I help?"
            ),
            said("user", "input_text", "When does my order ship?"),
            said("assistant", "output_text", "Your order ships Friday."),
        ])
    );
    assert!(live.instructions().is_empty(), "{:?}", live.appends);
    let started = live.started_at.unwrap();
    assert!(
        started < *at + ms(300),
        "WebSocket session only at {started:?}"
    );
    assert!(live.input_gaps.is_empty(), "{:?}", live.input_gaps);

    // The call goes on: the caller's thanks is answered over the WebSocket.
    assert_eq!(live.turns.len(), 1);
    assert_eq!(live.turns[0].trigger, TurnTrigger::CallerTurn);
    assert_eq!(live.turns[0].text, "You're welcome.");
    assert_eq!(live.turns[0].speech_ms_sent, 1_000);
    let heard = sim.caller().heard_speech_ms();
    assert!((3_900..=4_100).contains(&heard), "heard {heard} ms");
    assert_eq!(
        transcripts(&sim)[3..],
        [
            (Role::Caller, "Thank you.".to_owned()),
            (Role::Assistant, "You're welcome.".to_owned()),
        ]
    );
    assert_eq!(live.closed_reason.as_deref(), Some("close_requested"));
    let (_, end) = sim.first(is_end).unwrap();
    assert_eq!(
        end,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
}
