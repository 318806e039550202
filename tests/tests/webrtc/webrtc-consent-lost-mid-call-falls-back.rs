use barbara_tests::*;

/// OpenAI's side goes silent mid-call: after the liveness limit the bridge moves the call to the
/// WebSocket, gives the new session the conversation so far, and the call goes on.
#[test]
fn webrtc_consent_lost_mid_call_falls_back() {
    let mut config = over_webrtc(scenario(
        26,
        1_500,
        vec![
            say("Your order ships Friday.", 1_500),
            say("You're welcome.", 1_000),
        ],
        vec![utterance(secs(3), ms(1_000)), utterance(secs(12), ms(800))],
        secs(18),
    ));
    config.webrtc.drop_after = Some(secs(6));
    let sim = run_deterministic(config, secs(30));

    assert_eq!(
        transports(&sim),
        vec!["realtime/webrtc", "realtime/websocket"]
    );
    let fallbacks = fallbacks(&sim);
    assert_eq!(fallbacks.len(), 1);
    assert!(fallbacks[0].1.contains("no packets"), "{fallbacks:?}");
    // The new session got the history before anything else was asked of it.
    let items: Vec<serde_json::Value> = sent_of_type(&sim, "conversation.item.create")
        .into_iter()
        .map(|(_, v)| v["item"].clone())
        .collect();
    assert!(
        items.iter().any(|i| i["role"] == "assistant"
            && i["content"][0]["text"] == "Hello, this is Barbara. How can I help?"),
        "{items:?}"
    );
    assert!(items.iter().any(|i| i["role"] == "user"), "{items:?}");
    // And the caller's second question was answered over the WebSocket.
    assert_eq!(
        sim.openai().responses.len(),
        1,
        "{:?}",
        sim.openai().responses
    );
    let (_, end) = sim.first(is_end).unwrap();
    assert_eq!(
        end,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
}
