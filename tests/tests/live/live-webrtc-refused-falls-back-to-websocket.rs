use barbara_tests::*;
use serde_json::json;

/// OpenAI refuses to create the Live session over WebRTC: the call moves to a Live WebSocket
/// session at once and goes on there, greeting included.
#[test]
fn live_webrtc_refused_falls_back_to_websocket() {
    let mut config = live_over_webrtc(live_scenario(
        35,
        1_500,
        vec![live_turn("Sure, one moment.", 1_000)],
        vec![utterance(secs(3), ms(800))],
        secs(9),
    ));
    config.webrtc.refuse_with = Some(500);
    let sim = run_deterministic_webrtc(config, secs(20));
    assert_clean_live_webrtc(&sim);

    // One refused creation, answered after one HTTP round trip, then the WebSocket.
    let webrtc = sim.openai_webrtc();
    assert!(webrtc.calls.is_empty());
    assert_eq!(webrtc.requests.len(), 1);
    assert_eq!(webrtc.requests[0].status, 500);
    let requests = sim.http_requests();
    assert_eq!(requests.len(), 1);
    let fallbacks = fallback_events(&sim);
    assert_eq!(fallbacks.len(), 1, "{}", sim.trace_lines().join("\n"));
    let (at, from, to, reason) = &fallbacks[0];
    assert_eq!((*from, *to), ("live/webrtc", "live/websocket"));
    assert!(reason.contains("500"), "{reason}");
    assert_eq!(*at, requests[0].0 + ms(80), "at the refusal");
    assert_eq!(transports(&sim), ["live/websocket"]);

    // The WebSocket session is a plain new one: phone codec as its format, no history.
    let live = sim.live();
    assert_eq!(
        live.url.as_deref(),
        Some("wss://api.openai.com/v1/live/sessions")
    );
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
    // The caller's audio waited for it and the call went on: greeting, then the reply.
    assert!(live.input_gaps.is_empty(), "{:?}", live.input_gaps);
    assert!(live.input_audio_ms > 8_000.0, "{}", live.input_audio_ms);
    let triggers: Vec<TurnTrigger> = live.turns.iter().map(|t| t.trigger).collect();
    assert_eq!(triggers, [TurnTrigger::Greeting, TurnTrigger::CallerTurn]);
    let heard = sim.caller().heard_speech_ms();
    assert!((2_400..=2_500).contains(&heard), "heard {heard} ms");
    assert_eq!(live.closed_reason.as_deref(), Some("close_requested"));
    let (_, end) = sim.first(is_end).unwrap();
    assert_eq!(
        end,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
}
