use barbara_tests::*;

fn call_lost_mid_answer() -> SimConfig {
    let mut config = over_webrtc(scenario(
        27,
        1_500,
        vec![
            say(
                "Sure, order 4417 shipped on Monday and should arrive on Friday.",
                4_000,
            ),
            say("You're welcome.", 1_000),
        ],
        vec![utterance(secs(3), ms(1_000)), utterance(secs(14), ms(800))],
        secs(20),
    ));
    // The answer starts soon after the caller stops at 4 s and runs 4 s: the path goes silent
    // in the middle of it.
    config.webrtc.drop_after = Some(secs(6));
    config
}

/// The WebRTC path is lost while the model's line is still playing. The WebSocket session that
/// takes over is given the conversation so far with that line marked as cut off (as Live does),
/// not passed on as if the caller had heard it all; whole lines stay unmarked. (Over WebRTC
/// OpenAI sends the transcript ahead of the paced audio, so the text is the whole line.)
#[test]
fn realtime_line_cut_by_a_lost_path_is_marked_cut_off() {
    let sim = run_deterministic(call_lost_mid_answer(), secs(30));
    assert_eq!(
        transports(&sim),
        vec!["realtime/webrtc", "realtime/websocket"]
    );
    let items: Vec<serde_json::Value> = sent_of_type(&sim, "conversation.item.create")
        .into_iter()
        .map(|(_, v)| v["item"].clone())
        .collect();
    let lines: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            let role = i["role"].as_str().unwrap_or("").to_owned();
            let text = i["content"][0]["text"].as_str().unwrap_or("").to_owned();
            (role, text)
        })
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[0],
        (
            "assistant".to_owned(),
            "Hello, this is Barbara. How can I help?".to_owned()
        )
    );
    assert_eq!(lines[1].0, "user", "{lines:?}");
    let (role, cut) = &lines[2];
    assert_eq!(role, "assistant");
    assert!(cut.starts_with("Sure, order 4417"), "{lines:?}");
    assert!(
        cut.ends_with(" [cut off: the connection dropped]"),
        "{lines:?}"
    );
    // The caller's second question was answered over the WebSocket.
    assert_eq!(
        sim.openai().responses.len(),
        1,
        "{:?}",
        sim.openai().responses
    );
}
