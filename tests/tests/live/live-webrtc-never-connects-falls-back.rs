use barbara_tests::*;
use serde_json::json;

/// The Live session is created but ICE never completes: after the connect limit the call moves
/// to a new Live WebSocket session, and the caller's held audio and the greeting follow it.
#[test]
fn live_webrtc_never_connects_falls_back() {
    let mut config = live_over_webrtc(live_scenario(
        36,
        1_500,
        vec![live_turn("Sure, one moment.", 1_000)],
        vec![utterance(secs(5), ms(800))],
        secs(11),
    ));
    config.webrtc.never_connect = true;
    let sim = run_deterministic_webrtc(config, secs(25));
    assert_clean_live_webrtc(&sim);

    // The session was created (201), but nothing ever came back over UDP.
    let webrtc = sim.openai_webrtc();
    assert_eq!(webrtc.calls.len(), 1);
    assert_eq!(webrtc.requests[0].status, 201);
    let call = &webrtc.calls[0];
    assert_eq!(call.connected_at, None);
    assert_eq!(call.channel, None);
    assert!(webrtc.udp_ignored > 0);
    let brain = call.live.as_ref().unwrap();
    assert_eq!(brain.started_at, None, "no channel, no session.started");

    // The connect limit (3 s from the start of WebRTC set-up), then the WebSocket.
    let fallbacks = fallback_events(&sim);
    assert_eq!(fallbacks.len(), 1, "{}", sim.trace_lines().join("\n"));
    let (at, from, to, reason) = &fallbacks[0];
    assert_eq!((*from, *to), ("live/webrtc", "live/websocket"));
    assert!(reason.contains("not up within 3s"), "{reason}");
    let webrtc_started = sim.http_requests()[0].0;
    assert_eq!(*at, webrtc_started + secs(3));
    assert_eq!(transports(&sim), ["live/websocket"]);

    // A new session with nothing to remember yet: no `input`; then the greeting.
    let live = sim.live();
    let start = live.session_start.as_ref().unwrap();
    assert_eq!(
        start["audio"]["format"],
        json!({"type": "audio/pcmu", "rate": 8000})
    );
    assert!(start.get("input").is_none(), "{start}");
    assert_eq!(
        live.instructions(),
        [LiveConfig::default().greeting.as_str()]
    );
    let started = live.started_at.unwrap();
    assert!(
        started < *at + ms(300),
        "WebSocket session only at {started:?}"
    );
    // Held caller audio (bounded) reached the model, then the call went on.
    assert!(live.input_audio_ms > 9_000.0, "{}", live.input_audio_ms);
    let triggers: Vec<TurnTrigger> = live.turns.iter().map(|t| t.trigger).collect();
    assert_eq!(triggers, [TurnTrigger::Greeting, TurnTrigger::CallerTurn]);
    let heard = sim.caller().heard_speech_ms();
    assert!((2_400..=2_500).contains(&heard), "heard {heard} ms");
    let (_, end) = sim.first(is_end).unwrap();
    assert_eq!(
        end,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
}
